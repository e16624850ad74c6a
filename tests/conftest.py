"""Shared fixtures: a real project folder in tmp_path and a CLI runner.

Area-specific fixtures (the SMTP test server, the tracking app...) live in
their own modules under tests/ and are imported by the tests that use them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edumail import clock
from edumail.cli import app

SETTINGS = """\
sender:
  name: Centre de formation Exemple
  email: contact@centre.example
  reply_to: inscriptions@centre.example
timezone: Europe/Paris
locale: fr_FR
"""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the long reliability tests (CI does)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` (a simulated week, five SIGKILLs) run with --slow, as .ci/run does."""
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="long reliability run: `pytest --slow` (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's EDUMAIL_* variables."""
    for name in list(os.environ):
        if name.startswith("EDUMAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EDUMAIL_SECRET", "test-secret-key-not-for-production")
    clock.use_zone(clock.UTC)  # the last project loaded in this process sets it


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A minimal project folder: settings only (no library)."""
    root = tmp_path / "centre"
    root.mkdir()
    (root / "edumail.yaml").write_text(SETTINGS, encoding="utf-8")
    (root / "templates").mkdir()
    (root / "sequences").mkdir()
    return root


class Cli:
    """Runs `edumail ...` in-process against one project folder."""

    def __init__(self, root: Path):
        self.root = root
        self.runner = CliRunner()

    def __call__(self, *args: str, now: str | None = None, env: dict[str, str] | None = None, input: str | None = None):
        full_env = dict(env or {})
        if now:
            full_env["EDUMAIL_NOW"] = now
        return self.runner.invoke(app, ["--project", str(self.root), *args], env=full_env, input=input)


@pytest.fixture
def cli(project_dir: Path) -> Cli:
    return Cli(project_dir)
