"""One way to end a journey (engine, unsubscribe, forget, bounce): logged, queued mail cancelled."""

from __future__ import annotations

from pathlib import Path

import pytest
from journeys_support import T, add_contact, event, install_library, journal, journeys, mails, open_project, run

from edumail import contacts, gdpr
from edumail import journeys as journeys_module
from edumail.project import Project


@pytest.fixture
def project(project_dir: Path) -> Project:
    install_library(project_dir)
    loaded = open_project(project_dir)
    run(loaded, "2026-12-01T08:00")
    return loaded


def _waiting_with_a_queued_mail(project: Project) -> int:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    run(project, "2026-12-02T10:05")  # relance-1 queued (not delivered), relance-2 waits
    assert [m["state"] for m in mails(project, ada)] == ["queued"]
    return ada


def _ended(project: Project, ada: int, reason: str) -> None:
    (journey,) = [j for j in journeys(project, ada) if j["sequence"] == "relance-inscription"]
    assert (journey["state"], journey["end_reason"]) == ("exited", reason)
    assert ("relance-inscription", "", "exited", reason) in journal(project, ada)
    assert [m["state"] for m in mails(project, ada)] == ["cancelled"]


def test_forget_ends_journeys_the_one_way(project: Project) -> None:
    ada = _waiting_with_a_queued_mail(project)
    gdpr.forget(project.store(), "ada@example.org", T("2026-12-02T11:00"))
    _ended(project, ada, "forgotten")


def test_a_hard_bounce_ends_journeys_at_once(project: Project) -> None:
    ada = _waiting_with_a_queued_mail(project)
    assert contacts.mark_bounced(project.store(), ada, "hard", T("2026-12-02T11:00"))
    _ended(project, ada, "bounced")


def test_an_unsubscribe_ends_marketing_journeys(project: Project) -> None:
    ada = _waiting_with_a_queued_mail(project)
    ended = journeys_module.end_all(project.store(), ada, reason="unsubscribed", now=T("2026-12-02T11:00"))
    assert ended == 1
    _ended(project, ada, "unsubscribed")
