"""Live edits of sequences while journeys are in flight (SPEC 12)."""

from __future__ import annotations

from pathlib import Path

import pytest
from journeys_support import (
    add_contact,
    event,
    install_library,
    journal,
    journeys,
    open_project,
    run,
    sent,
    write_sequence,
)

from edumail.project import Project
from edumail.store import Store

A = "  - id: a\n    send: bienvenue\n"
B = "  - id: b\n    wait: 2d\n    send: bienvenue\n"
C = "  - id: c\n    wait: 2d\n    send: bienvenue\n"
X = "  - id: x\n    wait: 1d\n    send: bienvenue\n"
HEAD = "purpose: service\ntrigger: {event: go}\nsteps:\n"


@pytest.fixture
def project(project_dir: Path) -> Project:
    install_library(project_dir, sequences=False)
    write_sequence(project_dir, "suite", HEAD + A + B + C)
    loaded = open_project(project_dir)
    run(loaded, "2026-12-01T08:00")
    return loaded


def _start(project: Project) -> int:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "go", "2026-12-01T09:00")
    run(project, "2026-12-01T09:05")  # a sent, waiting on b (due 12-03 09:00)
    return ada


def _edit(project: Project, text: str) -> None:
    write_sequence(project.root, "suite", HEAD + text)


def test_a_removed_step_that_journeys_wait_on_is_passed_over(project: Project) -> None:
    ada = _start(project)
    _edit(project, A + C)
    run(project, "2026-12-03T09:05")
    assert sent(project, ada) == [("a", "bienvenue", "2026-12-01T09:00"), ("c", "bienvenue", "2026-12-03T09:00")]


def test_removing_the_last_steps_completes_the_journey(project: Project) -> None:
    ada = _start(project)
    _edit(project, A)
    run(project, "2026-12-01T10:00")
    (journey,) = journeys(project, ada)
    assert (journey["state"], journey["end_reason"]) == ("completed", "all steps done")


def test_a_step_inserted_before_where_a_journey_stands_never_runs_for_it(project: Project) -> None:
    ada = _start(project)
    _edit(project, X + A + B + C)
    run(project, "2026-12-03T09:05")
    run(project, "2026-12-05T09:05")
    assert [s for s, _, _ in sent(project, ada)] == ["a", "b", "c"]


def test_a_step_inserted_after_runs_when_reached(project: Project) -> None:
    ada = _start(project)
    _edit(project, A + X + B + C)
    run(project, "2026-12-02T09:05")
    run(project, "2026-12-04T09:05")
    run(project, "2026-12-06T09:05")
    assert sent(project, ada)[1:] == [
        ("x", "bienvenue", "2026-12-02T09:00"),
        ("b", "bienvenue", "2026-12-04T09:00"),
        ("c", "bienvenue", "2026-12-06T09:00"),
    ]


def test_a_renamed_step_is_a_removal_plus_an_insertion(project: Project) -> None:
    ada = _start(project)
    _edit(project, A + B.replace("id: b", "id: b2") + C)
    run(project, "2026-12-03T09:05")
    assert [s for s, _, _ in sent(project, ada)] == ["a", "b2"]


def test_a_changed_wait_re_times_the_step_not_yet_run(project: Project) -> None:
    ada = _start(project)
    _edit(project, A + B.replace("wait: 2d", "wait: 5d") + C)
    run(project, "2026-12-03T09:05")
    assert len(sent(project, ada)) == 1
    run(project, "2026-12-06T09:05")
    assert sent(project, ada)[1] == ("b", "bienvenue", "2026-12-06T09:00")


def test_a_deleted_file_ends_its_journeys_and_a_disabled_one_keeps_them_waiting(project: Project) -> None:
    ada = _start(project)
    _edit(project, "enabled: false\n" + A + B + C)
    run(project, "2026-12-05T09:05")
    assert journeys(project, ada)[0]["state"] == "active" and len(sent(project, ada)) == 1
    (project.root / "sequences" / "suite.yaml").unlink()
    run(project, "2026-12-05T09:10")
    (journey,) = journeys(project, ada)
    assert (journey["state"], journey["end_reason"]) == ("exited", "sequence removed")
    assert ("suite", "", "exited", "sequence removed") in journal(project, ada)


def test_check_lists_the_journeys_an_edit_touches(project: Project, cli) -> None:  # noqa: ANN001
    _start(project)
    _edit(project, A + C)
    result = cli("check")
    expected = "sequences/suite.yaml: 1 journey in flight after 'a': step 'b' removed (or renamed): they go on with 'c'"
    assert expected in result.output.replace("\n", " ")


def test_migration_2_gives_existing_journeys_the_id_of_their_last_step(project: Project) -> None:
    ada = _start(project)
    path = project.database_path
    project.close()
    store = Store(path)
    store.execute("ALTER TABLE journeys DROP COLUMN last_step_id")
    store.execute("ALTER TABLE sequences_seen DROP COLUMN steps")
    store.execute("DELETE FROM schema_version WHERE version = 2")
    store.close()
    assert Store(path).row("SELECT last_step_id FROM journeys WHERE contact_id = ?", (ada,)) == {"last_step_id": "a"}


def test_renaming_the_step_a_journey_just_ran_does_not_send_it_again(project: Project) -> None:
    ada = _start(project)
    run(project, "2026-12-03T09:05")  # b sent, waiting on c
    _edit(project, A + B.replace("id: b", "id: b-renamed") + C)
    run(project, "2026-12-05T09:05")
    assert [s for s, _, _ in sent(project, ada)] == ["a", "b", "c"]
