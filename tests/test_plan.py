"""`edumail plan`: the forecast, and that the runs then do exactly what it said."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from journeys_support import (
    PARIS,
    SESSION_DATA,
    T,
    add_contact,
    event,
    install_library,
    mails,
    open_project,
    run,
    write_sequence,
)

from edumail import plan, runner
from edumail.project import Project


@pytest.fixture
def project(project_dir: Path) -> Project:
    install_library(project_dir)
    write_sequence(
        project_dir,
        "lettre",
        'reenter: true\ntrigger:\n  schedule: "0 9 * * mon"\naudience: {tags: [lettre]}\nsteps:\n  - send: newsletter\n'
        "  - wait: 2d\n    if: {not_opened: newsletter}\n    tag: lettre-non-lue\n",
    )
    loaded = open_project(project_dir)
    run(loaded, "2026-12-01T08:00")
    ada = add_contact(loaded, "ada@example.org", consent="unknown")
    bob = add_contact(loaded, "bob@example.org", tags=("lettre",))
    eve = add_contact(loaded, "eve@example.org")
    event(loaded, ada, "inscription_finalisee", "2026-12-01T10:00", **SESSION_DATA)
    event(loaded, bob, "inscription_commencee", "2026-12-01T11:00", formation="Word")
    event(loaded, eve, "demande_information", "2026-12-01T12:00")
    event(loaded, ada, "inscription_commencee", "2026-12-01T12:30")  # no consent: relance-1 will be skipped
    return loaded


def test_plan_lists_what_will_be_sent_and_when(project: Project, cli) -> None:  # noqa: ANN001
    result = cli("plan", "--days", "14", now="2026-12-01T12:00Z")  # UTC: 13:00 in Paris
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Plan from 2026-12-01 13:00 to 2026-12-15 13:00 (Europe/Paris)" in out
    for expected in (
        "Wed 2026-12-09",
        "send rappel-session (service)",
        "send relance-inscription (marketing)",
        "send newsletter",
        "skipped: no marketing consent",
        "tag lettre-non-lue *",
        "* depends on opens or clicks",
    ):
        assert expected in out, expected


def test_plan_json(project: Project, cli) -> None:  # noqa: ANN001
    result = cli("plan", "--days", "3", "--json", now="2026-12-01T12:00Z")
    data = json.loads(result.output)
    assert data["timezone"] == "Europe/Paris"
    first = data["items"][0]
    assert set(first) == {
        "at",
        "sequence",
        "step",
        "contact",
        "outcome",
        "template",
        "purpose",
        "actions",
        "conditional",
        "reason",
        "session",
    }
    sent = [(i["at"], i["contact"], i["step"], i["purpose"]) for i in data["items"] if i["outcome"] == "sent"]
    assert sent == [
        ("2026-12-01T10:00:00+01:00", "ada@example.org", "confirmation-inscription", "service"),
        ("2026-12-02T11:00:00+01:00", "bob@example.org", "relance-1", "marketing"),
        ("2026-12-04T11:00:00+01:00", "bob@example.org", "relance-2", "marketing"),
    ]
    assert data["totals"] == {"mails": 3, "marketing": 2, "service": 1, "contacts": 2, "skipped": 2, "exited": 0}


def test_plan_only_one_sequence_and_unknown_names(project: Project, cli) -> None:  # noqa: ANN001
    data = json.loads(
        cli("plan", "--days", "30", "--json", "--sequence", "rappel-session", now="2026-12-01T12:00Z").output
    )
    assert {i["sequence"] for i in data["items"]} == {"rappel-session"}
    result = cli("plan", "--sequence", "rappel-sesion", now="2026-12-01T12:00Z")
    assert result.exit_code == 1 and "no sequence 'rappel-sesion' (did you mean 'rappel-session'?)" in result.output


def test_plan_changes_nothing(project: Project) -> None:
    store = project.store()
    before = [
        store.rows(f"SELECT * FROM {t}")
        for t in ("journeys", "journey_log", "mails", "sequences_seen", "tasks", "tags", "meta")
    ]
    plan.forecast(project, now=T("2026-12-01T13:00"), days=30)
    after = [
        store.rows(f"SELECT * FROM {t}")
        for t in ("journeys", "journey_log", "mails", "sequences_seen", "tasks", "tags", "meta")
    ]
    assert before == after


def test_plan_agrees_with_what_run_then_does(project: Project) -> None:
    start = T("2026-12-01T13:00")
    forecast = plan.forecast(project, now=start, days=16)
    promised = sorted((d.email, d.sequence, d.step, d.at) for d in forecast.mails)
    skipped = sorted((d.email, d.sequence, d.step, d.reason) for d in forecast.skipped)
    assert len(promised) >= 8 and skipped
    # The cron job: every 30 minutes for 16 days.
    moment = start
    while moment <= forecast.until:
        runner.run_once(project, now=moment, deliver=False)
        moment += timedelta(minutes=30)
    emails = {c["id"]: c["email"] for c in project.store().rows("SELECT id, email FROM contacts")}
    done = sorted((emails[m["contact_id"]], m["sequence"], m["step_id"], m["not_before"]) for m in mails(project))
    assert done == promised
    logged = project.store().rows(
        "SELECT c.email, j.sequence, l.step_id, l.reason FROM journey_log l JOIN journeys j ON j.id = l.journey_id"
        " JOIN contacts c ON c.id = j.contact_id WHERE l.outcome = 'skipped'"
    )
    assert sorted((r["email"], r["sequence"], r["step_id"], r["reason"]) for r in logged) == skipped


def test_plan_sees_mails_a_sequence_action_will_cause(project_dir: Path) -> None:
    install_library(project_dir, sequences=False)
    write_sequence(project_dir, "a", "trigger: {event: devis}\nsteps:\n  - wait: 2d\n    tag: chaud\n")
    write_sequence(
        project_dir, "b", "trigger:\n  event: tag_added\n  where: {tag: chaud}\nsteps:\n  - send: bienvenue\n"
    )
    project = open_project(project_dir)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "devis", "2026-12-01T10:00")
    forecast = plan.forecast(project, now=T("2026-12-01T10:00"), days=7)
    assert [(d.sequence, d.at.astimezone(PARIS).strftime("%d %H:%M")) for d in forecast.mails] == [("b", "03 10:00")]


def test_plan_stops_on_bad_sequences_like_run(project: Project, cli) -> None:  # noqa: ANN001
    write_sequence(project.root, "casse", "trigger: {event: x}\nsteps:\n  - send: nope\n")
    result = cli("plan", now="2026-12-01T12:00Z")
    assert result.exit_code == 1 and "sequences/casse.yaml:3: unknown template 'nope'" in result.output


def test_plan_skips_a_broken_sequence_file_and_forecasts_the_rest(project: Project, cli) -> None:  # noqa: ANN001
    """SPEC 11: one broken sequence file is reported and skipped; the forecast of the others goes on, exit 1."""
    (project.root / "sequences" / "cassee.yaml").write_text(
        "trigger: {event: demande_information}\nexit_onn: inscription_finalisee\nsteps:\n  - send: bienvenue\n",
        encoding="utf-8",
    )
    result = cli("plan", "--days", "14", now="2026-12-01T12:00Z")
    assert result.exit_code == 1, result.output
    assert "sequences/cassee.yaml:2" in result.output
    assert "send rappel-session (service)" in result.output  # the other sequences are still forecast
    as_json = cli("plan", "--days", "14", "--json", now="2026-12-01T12:00Z")
    assert as_json.exit_code == 1
    data = json.loads(as_json.stdout)
    assert any("cassee.yaml:2" in p for p in data["problems"])
    assert data["totals"]["mails"] > 0
