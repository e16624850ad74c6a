"""Render bombs (issue 12): a render is bounded in time and size, and a huge template file is refused.

Nested loops that would run for hours, a template that writes megabytes, a
`*` or `**` that would build a huge value: each becomes one RenderError
naming the template, fast. The time bound is lowered to 0.2 s where a test
reaches it (render_sandbox.MAX_SECONDS); the size bounds are the real ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from journeys_support import add_contact, event, install_library, journeys, open_project, run, write_sequence
from test_render import folder, go, library, page, settings, write  # noqa: F401, F811  (fixtures)

from edumail import render_sandbox
from edumail.errors import RenderError
from edumail.render import MAX_TEMPLATE_BYTES

SILENT_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
LOUD_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'ab' * 500 }}{% endfor %}{% endfor %}"
MACRO = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_sandbox, "MAX_SECONDS", 0.2)


@pytest.mark.parametrize("body", [SILENT_LOOPS, MACRO], ids=["nested loops", "recursive macro"])
def test_a_render_that_runs_too_long_stops_with_the_template_named(folder, library, quick, body) -> None:  # noqa: ANN001, F811
    write(folder, "bombe.html", page(f"<p>{body}</p>"))
    with pytest.raises(RenderError, match=r"bombe\.html:\d+: rendering took longer than 0\.2 s"):
        go(library, "bombe")


def test_nested_loops_writing_text_stop_at_the_size_bound(folder, library) -> None:  # noqa: ANN001, F811
    write(folder, "bombe.html", page(f"<p>{LOUD_LOOPS}</p>"))
    with pytest.raises(RenderError, match=r"bombe\.html.*passes 2,000,000 characters"):
        go(library, "bombe")


@pytest.mark.parametrize(
    ("expression", "refusal"),
    [
        ("'x' * 100000000", "'\\*' would make a value"),
        ("[1] * 100000000", "'\\*' would make"),
        ("9 ** 99999", "'\\*\\*'"),
    ],
)
def test_an_operator_building_a_huge_value_is_refused_before_it_does(folder, library, expression, refusal) -> None:  # noqa: ANN001, F811
    write(folder, "bombe.html", page(f"<p>{{{{ ({expression}) | length }}}}</p>"))
    with pytest.raises(RenderError, match=rf"bombe\.html:\d+: {refusal}"):
        go(library, "bombe")


def test_ordinary_loops_and_operators_still_work(folder, library) -> None:  # noqa: ANN001, F811
    body = "{% for t in contact.tags %}{{ loop.index }}{{ t }}{% if loop.last %}.{% endif %}{% endfor %}{{ '-' * 3 }}"
    write(folder, "t.html", page(f"<p>{body}{{{{ 2 ** 10 }}}}</p>"))
    assert "1a.---1024" in go(library).html


def test_a_template_file_over_the_size_bound_is_refused_at_load(folder, library) -> None:  # noqa: ANN001, F811
    write(folder, "enorme.html", page("<p>" + "x" * MAX_TEMPLATE_BYTES + "</p>"))
    with pytest.raises(RenderError, match=r"enorme\.html: the file is 1\.0 MB, more than the 1 MB a template may have"):
        go(library, "enorme")


def test_check_and_preview_report_a_render_bomb(cli, project_dir) -> None:  # noqa: ANN001, F811
    (project_dir / "templates" / "bombe.html").write_text(page(f"<p>{LOUD_LOOPS}</p>"), encoding="utf-8")
    checked = cli("check")
    assert checked.exit_code == 1
    assert "templates/bombe.html" in checked.output and "passes 2,000,000 characters" in checked.output
    previewed = cli("preview", "bombe")
    assert previewed.exit_code == 1
    assert "templates/bombe.html" in previewed.output and "passes 2,000,000 characters" in previewed.output


def test_in_a_run_the_journey_of_a_bomb_fails_alone(project_dir: Path) -> None:
    install_library(project_dir, sequences=False)
    (project_dir / "templates" / "bombe.html").write_text(page(f"<p>{LOUD_LOOPS}</p>"), encoding="utf-8")
    write_sequence(project_dir, "piege", "trigger: {event: x}\nsteps:\n  - send: bombe\n")
    write_sequence(project_dir, "accueil", "trigger: {event: x}\nsteps:\n  - send: bienvenue\n")
    project = open_project(project_dir)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "x", "2026-12-01T09:00")
    run(project, "2026-12-01T09:05")
    project.close()
    env = {k: v for k, v in os.environ.items() if k != "EDUMAIL_NOW"}
    env.update({"EDUMAIL_PROJECT": str(project_dir), "EDUMAIL_NOW": "2026-12-01T09:06"})
    done = subprocess.run(
        [sys.executable, "-m", "edumail", "run", "--once"], env=env, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out and "templates/bombe.html" in out
    project = open_project(project_dir)
    states = {m["template"]: m["state"] for m in project.store().mails_of(ada)}
    assert states == {"bombe": "failed", "bienvenue": "sent"}
    assert {j["sequence"] for j in journeys(project, ada)} == {"piege", "accueil"}
