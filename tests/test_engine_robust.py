"""What one bad input or one edit may stop (SPEC 11, 12): machine events, broken files, failures, backfill."""

from __future__ import annotations

from pathlib import Path

import pytest
from journeys_support import T, add_contact, event, install_library, journeys, open_project, run, write_sequence

from edumail import contacts, events


@pytest.fixture
def root(project_dir: Path) -> Path:
    install_library(project_dir, sequences=False)
    return project_dir


def test_a_machine_click_never_triggers_a_sequence(root: Path) -> None:
    write_sequence(root, "chaud", "trigger: {event: email_clicked}\nsteps:\n  - tag: [prospect-chaud]\n")
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    ada, bob = add_contact(project, "ada@example.org"), add_contact(project, "bob@example.org")
    store, at = project.store(), T("2026-12-01T10:00")
    contacts.record_event(store, ada, events.EMAIL_CLICKED, at=at, data={}, source="tracking", now=at, machine=True)
    contacts.record_event(store, bob, events.EMAIL_CLICKED, at=at, data={}, source="tracking", now=at)
    run(project, "2026-12-01T10:05")
    assert journeys(project, ada) == [] and store.tags_of(ada) == []
    assert len(journeys(project, bob)) == 1 and store.tags_of(bob) == ["prospect-chaud"]
