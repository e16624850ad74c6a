"""Session journeys (SPEC 13): the calendar drives the mail; moved and cancelled sessions, scoped events."""

from __future__ import annotations

import email
import json
from email import policy

import pytest

from edumail.store import Store

CALENDAR = "id;formation;debut;fin;lieu\nEXCEL-1;Excel;14/12/2026 09:30;15/12/2026 17:00;Lyon\n"
CALENDAR_2 = CALENDAR + "WORD-1;Word;11/01/2027 09:00;11/01/2027 17:00;Paris\n"
ENROLLED = "2026-12-01T10:00:00+01:00"

SEQUENCE = """\
name: session
purpose: service
trigger: {event: inscription_finalisee}
exit_on: [desistement]
steps:
  - id: convocation
    at: session.start - 7d
    time: "09:00"
    send: convocation-test
  - id: rappel
    at: session.start - 24h
    send: rappel-test
  - id: chaud
    at: session.end
    time: "17:00"
    if: {event: present}
    send: chaud-test
"""
NOTICE = """\
name: annulation
purpose: service
trigger: {event: session_cancelled}
steps:
  - send: annulee-test
"""
TEMPLATE = """\
---
subject: "{label} {{{{ session.formation }}}} le {{{{ session.start | datetime }}}}"
---
<p>Bonjour {{{{ contact.first_name | default("") }}}}, {{{{ session.lieu }}}}.</p>
"""


@pytest.fixture
def centre(cli):
    for name, label in (
        ("convocation-test", "Convocation"),
        ("rappel-test", "Rappel"),
        ("chaud-test", "Evaluation"),
        ("annulee-test", "Annulation"),
    ):
        (cli.root / "templates" / f"{name}.html").write_text(TEMPLATE.format(label=label), encoding="utf-8")
    (cli.root / "sequences" / "session.yaml").write_text(SEQUENCE, encoding="utf-8")
    (cli.root / "sequences" / "annulation.yaml").write_text(NOTICE, encoding="utf-8")
    (cli.root / "sessions.csv").write_text(CALENDAR_2, encoding="utf-8")
    assert cli("sessions", "import", str(cli.root / "sessions.csv"), now=ENROLLED).exit_code == 0
    run(cli, "2026-11-30T10:00:00+01:00")  # the sequences exist before anyone enrols
    return cli


def run(cli, now: str) -> str:
    result = cli("run", "--once", now=now)
    assert result.exit_code == 0, result.output
    return result.output


def enrol(cli, address: str, session: str = "EXCEL-1", at: str = ENROLLED) -> None:
    result = cli("event", address, "inscription_finalisee", "--data", f"session={session}", "--at", at, now=at)
    assert result.exit_code == 0, result.output


def sent(cli) -> list[tuple[str, str, str]]:
    """(address, subject, session) of every mail sent, from the .eml files and the store."""
    store = Store(cli.root / "edumail.db")
    rows = store.rows(
        "SELECT m.step_id, m.subject, c.email, j.session_id FROM mails m JOIN contacts c ON c.id = m.contact_id"
        " LEFT JOIN journeys j ON j.id = m.journey_id WHERE m.state = 'sent' ORDER BY m.id"
    )
    return [(r["email"], r["step_id"], r["session_id"]) for r in rows]


def subjects(cli) -> list[str]:
    found = []
    for path in sorted((cli.root / "outbox").rglob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        found.append(str(email.message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"]))
    return found


def journey_rows(cli) -> list[dict]:
    return Store(cli.root / "edumail.db").rows("SELECT * FROM journeys WHERE sequence = 'session' ORDER BY id")


def test_a_session_journey_follows_the_session_dates(centre):
    enrol(centre, "lea@example.org")
    run(centre, "2026-12-06T08:59:00+01:00")
    assert sent(centre) == []
    run(centre, "2026-12-07T09:00:00+01:00")
    assert sent(centre) == [("lea@example.org", "convocation", "EXCEL-1")]
    assert subjects(centre) == ["Convocation Excel le lundi 14 décembre 2026 à 9h30"]
    [journey] = journey_rows(centre)
    assert journey["session_id"] == "EXCEL-1" and journey["trigger_key"] == "session:EXCEL-1"


def test_a_session_moved_three_times_with_learners_at_every_stage(centre):
    enrol(centre, "early@example.org")  # convocation and reminder still to come
    enrol(centre, "mid@example.org")
    run(centre, "2026-12-01T11:00:00+01:00")
    # 1. later by a week, before any mail: the convocation waits for its new time.
    move(centre, "21/12/2026 09:30", "22/12/2026 17:00", "2026-12-02T10:00:00+01:00")
    run(centre, "2026-12-07T09:05:00+01:00")
    assert sent(centre) == []
    run(centre, "2026-12-14T09:00:00+01:00")
    assert [s[1] for s in sent(centre)] == ["convocation", "convocation"]
    assert subjects(centre)[0] == "Convocation Excel le lundi 21 décembre 2026 à 9h30"
    # 2. earlier by two days, convocations sent: the reminder is re-timed, the convocation never sent again.
    move(centre, "19/12/2026 09:30", "20/12/2026 17:00", "2026-12-15T10:00:00+01:00")
    run(centre, "2026-12-18T09:29:00+01:00")
    assert [s[1] for s in sent(centre)] == ["convocation", "convocation"]
    run(centre, "2026-12-18T09:30:00+01:00")
    assert [s[1] for s in sent(centre)] == ["convocation", "convocation", "rappel", "rappel"]
    assert subjects(centre)[-1] == "Rappel Excel le samedi 19 décembre 2026 à 9h30"
    changed = Store(centre.root / "edumail.db").rows("SELECT COUNT(*) AS n FROM events WHERE name = 'session_changed'")
    assert changed[0]["n"] == 8  # start and end, twice, for two learners


def test_moved_earlier_past_the_reminder_time_follows_max_late(centre):
    enrol(centre, "lea@example.org")
    run(centre, "2026-12-07T09:00:00+01:00")  # convocation sent
    # Moved to tomorrow 09:30 at 10:00 today: the reminder (24 h before) is 30 minutes late: sent.
    move(centre, "09/12/2026 09:30", "09/12/2026 17:00", "2026-12-08T10:00:00+01:00")
    run(centre, "2026-12-08T10:00:00+01:00")
    assert [s[1] for s in sent(centre)] == ["convocation", "rappel"]


def test_a_reminder_more_than_max_late_is_skipped_with_the_reason(centre):
    enrol(centre, "lea@example.org")
    run(centre, "2026-12-07T09:00:00+01:00")
    move(centre, "09/12/2026 09:30", "09/12/2026 17:00", "2026-12-09T09:00:00+01:00")
    run(centre, "2026-12-09T09:00:00+01:00")  # 23h30 late: within the default 1d
    assert [s[1] for s in sent(centre)] == ["convocation", "rappel"]
    enrol(centre, "tom@example.org", "WORD-1")
    run(centre, "2027-01-04T09:00:00+01:00")  # Word convocation
    move(centre, "05/01/2027 08:00", "05/01/2027 17:00", "2027-01-05T12:00:00+01:00", session="WORD-1")
    output = run(centre, "2027-01-05T12:00:00+01:00")  # the reminder was due 04/01 08:00: 28 h late
    assert [s[1] for s in sent(centre)][-1] == "convocation"
    assert "late (limits.max_late" in output


def test_cancelled_between_convocation_and_reminder(centre):
    enrol(centre, "lea@example.org")
    run(centre, "2026-12-07T09:00:00+01:00")
    result = centre("sessions", "cancel", "EXCEL-1", "--reason", "formatrice malade", now="2026-12-10T10:00:00+01:00")
    assert result.exit_code == 0, result.output
    run(centre, "2026-12-10T10:01:00+01:00")
    run(centre, "2026-12-16T10:00:00+01:00")
    assert [s[1] for s in sent(centre)] == ["convocation", "annulee-test"]  # the notice, no reminder
    assert subjects(centre)[-1].startswith("Annulation Excel")
    [journey] = journey_rows(centre)
    assert (journey["state"], journey["end_reason"]) == ("exited", "session cancelled")


def test_an_event_for_a_cancelled_session_enrols_nobody_but_the_notice(centre):
    centre("sessions", "cancel", "EXCEL-1", now=ENROLLED)
    enrol(centre, "late@example.org")
    run(centre, "2026-12-07T09:00:00+01:00")
    assert journey_rows(centre) == []


def test_two_sessions_of_one_learner_in_one_sequence(centre):
    enrol(centre, "lea@example.org", "EXCEL-1")
    enrol(centre, "lea@example.org", "WORD-1")
    run(centre, "2026-12-07T09:00:00+01:00")
    run(centre, "2026-12-13T09:30:00+01:00")
    run(centre, "2027-01-04T09:00:00+01:00")
    assert sorted((s[1], s[2]) for s in sent(centre)) == [
        ("convocation", "EXCEL-1"),
        ("convocation", "WORD-1"),
        ("rappel", "EXCEL-1"),
    ]
    assert len(journey_rows(centre)) == 2


def test_exit_on_with_a_session_ends_only_that_session_journey(centre):
    enrol(centre, "lea@example.org", "EXCEL-1")
    enrol(centre, "lea@example.org", "WORD-1")
    event = centre(
        "event", "lea@example.org", "desistement", "--data", "session=WORD-1", now="2026-12-02T10:00:00+01:00"
    )
    assert event.exit_code == 0
    run(centre, "2026-12-07T09:00:00+01:00")
    states = {j["session_id"]: j["state"] for j in journey_rows(centre)}
    assert states == {"EXCEL-1": "active", "WORD-1": "exited"}


def test_attendance_conditions_look_at_that_session_only(centre):
    enrol(centre, "lea@example.org", "EXCEL-1")
    enrol(centre, "tom@example.org", "EXCEL-1")
    enrol(centre, "tom@example.org", "WORD-1")
    at = "2026-12-14T12:00:00+01:00"
    assert centre("event", "lea@example.org", "present", "--data", "session=EXCEL-1", now=at).exit_code == 0
    assert centre("event", "tom@example.org", "present", "--data", "session=WORD-1", now=at).exit_code == 0
    run(centre, "2026-12-15T17:00:00+01:00")
    chaud = [s for s in sent(centre) if s[1] == "chaud"]
    assert chaud == [("lea@example.org", "chaud", "EXCEL-1")]


def move(cli, start: str, end: str, now: str, session: str = "EXCEL-1") -> None:
    result = cli("sessions", "set", session, f"start={start}", f"end={end}", now=now)
    assert result.exit_code == 0, result.output


def test_session_changed_data(centre):
    enrol(centre, "lea@example.org")
    move(centre, "21/12/2026 09:30", "22/12/2026 17:00", "2026-12-02T10:00:00+01:00")
    rows = Store(centre.root / "edumail.db").rows("SELECT data FROM events WHERE name = 'session_changed'")
    assert json.loads(rows[0]["data"])["to"] == "2026-12-21T08:30:00+00:00"


def test_plan_shows_the_session_and_the_new_times(centre):
    enrol(centre, "lea@example.org")
    run(centre, "2026-12-01T11:00:00+01:00")
    move(centre, "21/12/2026 09:30", "22/12/2026 17:00", "2026-12-02T10:00:00+01:00")
    result = centre("plan", "--days", "30", "--json", now="2026-12-02T10:05:00+01:00")
    assert result.exit_code == 0, result.output
    items = [i for i in json.loads(result.output)["items"] if i["outcome"] == "sent"]
    assert [(i["step"], i["at"][:16], i["session"]) for i in items][:2] == [
        ("convocation", "2026-12-14T09:00", "EXCEL-1"),
        ("rappel", "2026-12-20T09:30", "EXCEL-1"),
    ]
    text = centre("plan", "--days", "30", now="2026-12-02T10:05:00+01:00").output
    assert "session/convocation [EXCEL-1]" in text


def test_an_enrolment_that_names_no_session_starts_no_session_journey(centre):
    result = centre("event", "lea@example.org", "inscription_finalisee", "--data", "formation=Excel", now=ENROLLED)
    assert result.exit_code == 0, result.output
    output = run(centre, "2026-12-01T10:05:00+01:00")
    assert journey_rows(centre) == []
    assert "session: 1 inscription_finalisee event names no session (data session=ID): no journey started" in output
    enrol(centre, "lea@example.org")  # the same learner, now with the session: the session journey starts
    run(centre, "2026-12-07T09:00:00+01:00")
    assert sent(centre) == [("lea@example.org", "convocation", "EXCEL-1")]
    assert [j["session_id"] for j in journey_rows(centre)] == ["EXCEL-1"]
