"""Triggers: event (+ where), segment, inactive, schedule, at."""

from __future__ import annotations

from pathlib import Path

import pytest
from journeys_support import (
    T,
    add_contact,
    event,
    install_library,
    journeys,
    mails,
    open_project,
    run,
    sent,
    write_sequence,
)

from edumail import contacts


@pytest.fixture
def root(project_dir: Path) -> Path:
    install_library(project_dir, sequences=False)
    return project_dir


def test_event_trigger_where_filters_the_event_data(root: Path) -> None:
    write_sequence(
        root,
        "excel",
        "trigger:\n  event: inscription_commencee\n  where: {formation: [Excel, Access]}\nsteps:\n"
        "  - send: bienvenue\n",
    )
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    bob = add_contact(project, "bob@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00", formation="Excel")
    event(project, bob, "inscription_commencee", "2026-12-01T10:00", formation="Word")
    run(project, "2026-12-01T10:00")
    assert [m["contact_id"] for m in mails(project)] == [ada]


def test_event_trigger_audience_is_checked_at_entry(root: Path) -> None:
    write_sequence(
        root,
        "s",
        "trigger: {event: x}\naudience:\n  stage: [prospect, lead]\n  fields: {ville: Lyon}\nsteps:\n"
        "  - send: bienvenue\n",
    )
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org", stage="lead", fields={"ville": "Lyon"})
    bob = add_contact(project, "bob@example.org", stage="lead", fields={"ville": "Paris"})
    eve = add_contact(project, "eve@example.org", stage="client", fields={"ville": "Lyon"})
    for cid in (ada, bob, eve):
        event(project, cid, "x", "2026-12-01T10:00")
    run(project, "2026-12-01T10:00")
    assert [m["contact_id"] for m in mails(project)] == [ada]


def test_segment_enrols_contacts_who_start_matching(root: Path) -> None:
    write_sequence(
        root, "leads", "trigger:\n  segment: {stage: lead, not_tags: [client]}\nsteps:\n  - send: bienvenue\n"
    )
    project = open_project(root)
    already = add_contact(project, "already@example.org", stage="lead")
    run(project, "2026-12-01T08:00")  # first sight: who matches now did not "start matching"
    ada = add_contact(project, "ada@example.org", stage="prospect")
    run(project, "2026-12-01T09:00")
    assert mails(project) == []
    contacts.set_stage(project.store(), ada, "lead", T("2026-12-01T10:00"), "test")
    run(project, "2026-12-01T10:05")
    run(project, "2026-12-01T10:10")
    assert [m["contact_id"] for m in mails(project)] == [ada]
    assert journeys(project, already) == []


def test_segment_backfill_enrols_the_current_members(root: Path) -> None:
    write_sequence(root, "leads", "trigger:\n  segment: {tags: [webinar]}\nsteps:\n  - send: bienvenue\n")
    project = open_project(root)
    ada = add_contact(project, "ada@example.org", tags=("webinar",))
    run(project, "2026-12-01T08:00")
    run(project, "2026-12-01T08:05", backfill=True)
    assert [m["contact_id"] for m in mails(project)] == [ada]


def test_segment_reenter_after_leaving_and_coming_back(root: Path) -> None:
    write_sequence(root, "leads", "reenter: true\ntrigger:\n  segment: {tags: [chaud]}\nsteps:\n  - send: bienvenue\n")
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    store = project.store()
    contacts.add_tags(store, ada, ["chaud"], T("2026-12-01T09:00"), "test")
    run(project, "2026-12-01T09:00")
    run(project, "2026-12-01T09:30")
    contacts.remove_tags(store, ada, ["chaud"], T("2026-12-01T10:00"), "test")
    run(project, "2026-12-01T10:00")
    contacts.add_tags(store, ada, ["chaud"], T("2026-12-01T11:00"), "test")
    run(project, "2026-12-01T11:00")
    assert len(mails(project, ada)) == 2


def test_segment_without_reenter_enrols_once(root: Path) -> None:
    write_sequence(root, "leads", "trigger:\n  segment: {tags: [chaud]}\nsteps:\n  - send: bienvenue\n")
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    store = project.store()
    for hour in (9, 11):
        contacts.add_tags(store, ada, ["chaud"], T(f"2026-12-01T{hour:02d}:00"), "test")
        run(project, f"2026-12-01T{hour:02d}:00")
        contacts.remove_tags(store, ada, ["chaud"], T(f"2026-12-01T{hour:02d}:30"), "test")
        run(project, f"2026-12-01T{hour:02d}:30")
    assert len(mails(project, ada)) == 1


def test_inactive_enrols_when_the_silence_reaches_the_duration(root: Path) -> None:
    write_sequence(root, "reveil", "trigger: {inactive: 30d}\nsteps:\n  - send: inactivite\n")
    project = open_project(root)
    run(project, "2026-11-01T08:00")
    ada = add_contact(project, "ada@example.org", at="2026-11-01T09:00")
    bob = add_contact(project, "bob@example.org", at="2026-11-01T09:00")
    event(project, bob, "replied", "2026-11-20T10:00")
    run(project, "2026-12-01T08:59")
    assert mails(project) == []
    run(project, "2026-12-01T09:00")
    assert sent(project) == [("inactivite", "inactivite", "2026-12-01T09:00")]
    run(project, "2026-12-20T10:00")
    assert [m["contact_id"] for m in mails(project)] == [ada, bob]
    run(project, "2027-03-01T10:00")
    assert len(mails(project)) == 2  # once, without reenter


def test_inactive_ignores_who_was_already_inactive_when_first_seen(root: Path) -> None:
    project = open_project(root)
    add_contact(project, "old@example.org", at="2026-01-01T09:00")
    write_sequence(root, "reveil", "trigger: {inactive: 30d}\nsteps:\n  - send: inactivite\n")
    run(project, "2026-12-01T08:00")
    run(project, "2026-12-01T09:00")
    assert mails(project) == []
    run(project, "2026-12-01T09:05", backfill=True)
    assert len(mails(project)) == 1


def test_inactive_with_reenter_comes_back_after_a_new_silence(root: Path) -> None:
    write_sequence(root, "reveil", "reenter: true\ntrigger: {inactive: 30d}\nsteps:\n  - send: inactivite\n")
    project = open_project(root)
    run(project, "2026-11-01T08:00")
    ada = add_contact(project, "ada@example.org", at="2026-11-01T09:00")
    run(project, "2026-12-01T09:00")
    event(project, ada, "email_clicked", "2026-12-02T09:00")
    run(project, "2026-12-20T09:00")
    run(project, "2027-01-01T09:00")
    assert len(mails(project, ada)) == 2


def test_schedule_enters_the_audience_at_each_firing(root: Path) -> None:
    write_sequence(
        root,
        "lettre",
        'reenter: true\ntrigger:\n  schedule: "0 9 * * mon"\naudience: {tags: [lettre]}\nsteps:\n'
        "  - send: newsletter\n",
    )
    project = open_project(root)
    ada = add_contact(project, "ada@example.org", tags=("lettre",))
    add_contact(project, "bob@example.org")
    run(project, "2026-12-01T08:00")  # Tuesday
    run(project, "2026-12-07T08:59")
    assert mails(project) == []
    run(project, "2026-12-07T09:10")  # Monday
    run(project, "2026-12-07T09:20")
    assert sent(project) == [("newsletter", "newsletter", "2026-12-07T09:00")]
    run(project, "2026-12-14T09:00")
    assert [m["contact_id"] for m in mails(project)] == [ada, ada]


def test_schedule_skips_a_firing_missed_by_more_than_max_late(root: Path) -> None:
    write_sequence(root, "lettre", 'trigger:\n  schedule: "0 9 * * mon"\nsteps:\n  - send: newsletter\n')
    project = open_project(root)
    add_contact(project, "ada@example.org")
    run(project, "2026-12-01T08:00")
    summary = run(project, "2026-12-09T09:00")  # Monday's firing is two days old
    assert mails(project) == []
    assert summary.engine.notes == [
        "lettre: the schedule 0 9 * * mon firing of 2026-12-07 09:00 is 2d late (limits.max_late): nobody entered"
    ]


def test_at_trigger_fires_once(root: Path) -> None:
    write_sequence(
        root, "offre", "trigger: {at: 2026-12-03T10:00}\naudience: {stage: client}\nsteps:\n  - send: newsletter\n"
    )
    project = open_project(root)
    ada = add_contact(project, "ada@example.org", stage="client")
    run(project, "2026-12-01T08:00")
    run(project, "2026-12-03T09:59")
    assert mails(project) == []
    run(project, "2026-12-03T10:00")
    run(project, "2026-12-03T11:00")
    bob = add_contact(project, "bob@example.org", stage="client")
    run(project, "2026-12-04T10:00")
    assert [m["contact_id"] for m in mails(project)] == [ada]
    assert journeys(project, bob) == []


def test_disabled_sequence_enrols_nobody_and_does_not_flood_when_enabled(root: Path) -> None:
    path = write_sequence(root, "s", "enabled: false\ntrigger: {event: x}\nsteps:\n  - send: bienvenue\n")
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "x", "2026-12-01T09:00")
    run(project, "2026-12-01T09:00")
    path.write_text("enabled: true\ntrigger: {event: x}\nsteps:\n  - send: bienvenue\n", encoding="utf-8")
    run(project, "2026-12-01T10:00")
    assert mails(project) == []
    event(project, ada, "x", "2026-12-01T10:30")
    run(project, "2026-12-01T10:30")
    assert len(mails(project)) == 1


def test_events_recorded_by_other_parts_trigger_sequences(root: Path) -> None:
    write_sequence(root, "s", "trigger:\n  event: tag_added\n  where: {tag: vip}\nsteps:\n  - send: bienvenue\n")
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    contacts.add_tags(project.store(), ada, ["vip"], T("2026-12-01T09:00"), "cli")
    run(project, "2026-12-01T09:00")
    assert len(mails(project, ada)) == 1


def test_an_edited_schedule_fires_on_its_new_day(root: Path) -> None:
    # The next firing a run keeps (so that a run before it needs no cron arithmetic) is the old schedule's:
    # an edit must not wait for it.
    write_sequence(root, "lettre", 'reenter: true\ntrigger:\n  schedule: "0 9 * * mon"\nsteps:\n  - send: newsletter\n')
    project = open_project(root)
    add_contact(project, "ada@example.org")
    run(project, "2026-12-01T08:00")  # Tuesday: the next Monday firing is the 7th
    run(project, "2026-12-02T08:00")
    write_sequence(root, "lettre", 'reenter: true\ntrigger:\n  schedule: "0 9 * * wed"\nsteps:\n  - send: newsletter\n')
    run(project, "2026-12-02T09:10")  # Wednesday
    assert sent(project) == [("newsletter", "newsletter", "2026-12-02T09:00")]
