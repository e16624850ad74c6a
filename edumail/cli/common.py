"""What every CLI module shares: consoles, the current project, argument parsing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from edumail import clock
from edumail import project as project_module
from edumail.errors import InputError
from edumail.project import Project

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class _State:
    project_dir: Path | None = None
    project: Project | None = None


state = _State()


def current_project() -> Project:
    """The project named by --project / EDUMAIL_PROJECT / the current directory."""
    if state.project is None:
        state.project = project_module.load(state.project_dir)
    return state.project


def reset() -> None:
    """Forget the loaded project (between invocations in one process, e.g. tests)."""
    if state.project is not None:
        state.project.close()
    state.project = None
    state.project_dir = None


def parse_pairs(pairs: list[str] | None, option: str = "--data") -> dict[str, Any]:
    """`key=value` arguments -> dict."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} {pair!r}: expected key=value")
        result[key.strip()] = value
    return result


def parse_at(value: str | None, project: Project, option: str = "--at") -> datetime:
    """An ISO 8601 option in the project timezone, or now."""
    if value is None:
        return clock.now()
    try:
        return clock.parse_iso(value, project.settings.tz)
    except InputError as exc:
        raise InputError(f"{option}: {exc}") from None
