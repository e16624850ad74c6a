"""One audience rule: a sequence's `audience: fields:` and `send --where` pick the same contacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from journeys_support import T, add_contact, add_settings, install_library, open_project, run, write_sequence

from edumail import audience, campaigns, clock, contacts
from edumail.project import Project

STORED: dict[str, Any] = {
    "bool": True,
    "text-true": "true",
    "padded-true": " true ",
    "capital-true": "True",
    "int": 3,
    "real": 3.0,
    "text-3": "3",
    "padded-3": "\t3 ",
    "lyon": "Lyon",
    "lower-lyon": "lyon",
    "padded-lyon": " Lyon\u00a0",
    "evry": "Évry",
    "evry-plain": "Evry",
    "false": False,
}

CASES = [  # (yaml value, --where value, who both must pick)
    ("true", "true", {"bool", "text-true", "padded-true"}),
    ("false", "false", {"false"}),
    ("3", "3", {"int", "real", "text-3", "padded-3"}),
    ("'3.0'", "3.0", set()),  # the text 3.0: a stored 3.0 reads 3, so nobody has it
    ("Lyon", "Lyon", {"lyon", "padded-lyon"}),
    ("lyon", "lyon", {"lower-lyon"}),
    ("Évry", "Évry", {"evry"}),
]


@pytest.fixture
def project(project_dir: Path) -> Project:
    install_library(project_dir, sequences=False)
    add_settings(project_dir, "limits:\n  marketing_per_week: 0\n")
    loaded = open_project(project_dir)
    for name, value in STORED.items():
        add_contact(loaded, f"{name}@example.org", fields={"x": value})
    return loaded


def _by_sequence(project: Project, yaml_value: str) -> set[str]:
    write_sequence(
        project.root,
        "pick",
        f"trigger: {{at: 2026-12-01T09:00}}\naudience: {{fields: {{x: {yaml_value}}}}}\nsteps:\n  - tag: [picked]\n",
    )
    run(project, "2026-12-01T10:00")
    store = project.store()
    return {
        c["email"].split("@")[0] for c in store.rows("SELECT email FROM contacts c JOIN tags t ON t.contact_id = c.id")
    }


def _by_send(project: Project, where_value: str) -> set[str]:
    plan = campaigns.create_campaign(
        project, "newsletter", now=T("2026-12-01T10:00"), where={"x": where_value}, dry_run=True
    )
    return {email.split("@")[0] for email in plan.recipients}


@pytest.mark.parametrize(("yaml_value", "where_value", "expected"), CASES)
def test_sequences_and_send_where_agree(
    project: Project, yaml_value: str, where_value: str, expected: set[str]
) -> None:
    assert _by_send(project, where_value) == expected
    assert _by_sequence(project, yaml_value) == expected


def test_a_field_set_by_a_step_matches_send_where(project: Project) -> None:
    """The review's case: `set: {vip: true}` matched a sequence audience but not `send --where vip=true`."""
    ada = add_contact(project, "ada@example.org")
    contacts.set_fields(project.store(), ada, {"vip": True}, T("2026-12-01T09:00"))
    assert [
        c["email"] for c in audience.members(project.store(), audience.from_options([], None, {"vip": "true"}))
    ] == ["ada@example.org"]


def _marketing_mail(
    project: Project, contact_id: int, queued: str, *, not_before: str, sent: str | None = None
) -> None:
    store = project.store()
    store.enqueue_mail(
        message_id=f"<{contact_id}-{queued}@centre.example>",
        template="newsletter",
        purpose="marketing",
        not_before=clock.to_db(T(not_before)),
        now=clock.to_db(T(queued)),
        contact_id=contact_id,
    )
    if sent:
        store.execute(
            "UPDATE mails SET state = 'sent', sent_at = ? WHERE contact_id = ?", (clock.to_db(T(sent)), contact_id)
        )


def test_one_weekly_count_for_sequences_and_campaigns(project_dir: Path) -> None:
    """Marketing mails queued in the 7 days before now, whenever they go (the sequences' rule)."""
    install_library(project_dir, sequences=False)
    add_settings(project_dir, "limits:\n  marketing_per_week: 1\n")
    project = open_project(project_dir)
    old = add_contact(project, "old@example.org")  # queued 8 days ago, sent yesterday: not counted
    ahead = add_contact(project, "ahead@example.org")  # queued 2 days ago for next month: counted
    _marketing_mail(project, old, "2026-11-23T09:00", not_before="2026-11-30T09:00", sent="2026-11-30T09:00")
    _marketing_mail(project, ahead, "2026-11-29T09:00", not_before="2026-12-28T09:00")
    now = T("2026-12-01T10:00")
    assert audience.weekly_marketing(project.store(), now) == {ahead: 1}
    plan = campaigns.create_campaign(project, "newsletter", now=now, dry_run=True)
    assert plan.recipients == ["old@example.org"] and plan.skipped == {campaigns.OVER_LIMIT: 1}
    write_sequence(project.root, "news", "trigger: {at: 2026-12-01T09:00}\nsteps:\n  - send: newsletter\n")
    run(project, "2026-12-01T10:00")
    queued = project.store().rows("SELECT contact_id FROM mails WHERE sequence = 'news'")
    assert [m["contact_id"] for m in queued] == [old]
