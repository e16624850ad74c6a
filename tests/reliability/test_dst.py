"""Time: the engine across Europe/Paris summer-time changes (2026-03-29 and 2026-10-25).

The clock moves hour by hour through two weeks around each change, with the
real runner (engine, then delivery to the file transport) at every hour. Each
step is sent once, none is skipped, and every step written `time: "09:00"` goes
at 09:00 in Paris on both sides of the change. The expected times come from
calendar arithmetic on local dates, not from the engine's own code.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from journeys_support import add_contact, open_project

from edumail import clock, contacts, runner
from edumail.project import Project

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)
SPRING = date(2026, 3, 29)  # 02:00 -> 03:00: the day has 23 hours
AUTUMN = date(2026, 10, 25)  # 03:00 -> 02:00: the day has 25 hours
ENTRIES = range(-6, 2)  # inscriptions from 6 days before the change to the day after, at 14:00
SESSION_IN = 5  # the session starts this many days after the inscription, at 09:30

TEMPLATE = """\
---
subject: "{{ contact.first_name }} : votre formation"
---
<p>Bonjour {{ contact.first_name }}, votre session commence le {{ event.session_start | default("bientôt") }}.</p>
"""
# `wait: 1d` alone is that long: 24 hours (README, "Timing of a step").
JOURNEY = """\
purpose: service
trigger: {event: inscription}
steps:
  - id: accueil
    send: formation
  - {id: j1, wait: 1d, time: "09:00", send: formation}
  - {id: j2, wait: 1d, time: "09:00", send: formation}
  - {id: j3, wait: 1d, time: "09:00", send: formation}
  - {id: veille, at: event.session_start - 1d, time: "09:00", send: formation}
  - {id: jour, at: event.session_start, time: "09:00", send: formation}
  - {id: lendemain, wait: 1d, send: formation}
"""
# 02:30 does not exist on the spring day and exists twice on the autumn day.
NIGHT = """\
purpose: service
trigger: {event: inscription}
steps:
  - {id: nuit1, wait: 1d, time: "02:30", send: formation}
  - {id: nuit2, wait: 1d, time: "02:30", send: formation}
"""
DAILY = """\
purpose: service
reenter: true
trigger: {schedule: "0 9 * * *"}
audience: {tags: [quotidien]}
steps:
  - {id: quotidien, send: formation}
"""


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """That wall-clock time in Paris, in UTC (a time in the spring gap counts with the winter offset)."""
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(clock.UTC)


def expected_journey(entry: date) -> dict[str, datetime]:
    """When each step of JOURNEY is due for an inscription at 14:00 on `entry`."""
    session = entry + timedelta(days=SESSION_IN)
    due = {
        "accueil": local(entry, 14),
        "j1": local(entry + timedelta(days=1), 9),
        "j2": local(entry + timedelta(days=2), 9),
        "j3": local(entry + timedelta(days=3), 9),
        "veille": local(session - timedelta(days=1), 9),
        "jour": local(session, 9),
    }
    due["lendemain"] = local(session + timedelta(days=1), 9)  # a day is a calendar day: 09:00 again, across a change
    return due


def expected_night(entry: date) -> dict[str, datetime]:
    return {"nuit1": local(entry + timedelta(days=1), 2, 30), "nuit2": local(entry + timedelta(days=2), 2, 30)}


def _project(root: Path) -> Project:
    (root / "templates" / "formation.html").write_text(TEMPLATE, encoding="utf-8")
    for name, text in (("parcours", JOURNEY), ("nuit", NIGHT), ("quotidien", DAILY)):
        (root / "sequences" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return open_project(root)


def _simulate(project: Project, change: date) -> tuple[dict[int, date], datetime, datetime]:
    """Hour by hour from 6 days before the change to 8 days after; returns the contacts' entry days."""
    entries: dict[int, date] = {}
    created = f"{change - timedelta(days=10)}T09:00"
    for offset in ENTRIES:
        cid = add_contact(project, f"entree{offset + 10}@example.org", at=created)
        entries[cid] = change + timedelta(days=offset)
    add_contact(project, "quotidien@example.org", tags=("quotidien",), at=created)  # the daily sequence's audience
    store = project.store()
    start, end = local(change - timedelta(days=6), 0), local(change + timedelta(days=8), 0)
    waiting = sorted((local(entry, 14), cid) for cid, entry in entries.items())
    now = start
    while now <= end:
        while waiting and waiting[0][0] <= now:
            at, cid = waiting.pop(0)
            session = entries[cid] + timedelta(days=SESSION_IN)
            data = {"session_start": f"{session.isoformat()}T09:30"}
            contacts.record_event(store, cid, "inscription", at=at, data=data, source="test", now=now)
        summary = runner.run_once(project, now=now, lock_wait=0)
        assert summary.engine.errors == [], (now, summary.engine.errors)
        assert summary.delivery is not None and summary.delivery.ok, (now, summary.delivery)
        now += HOUR
    return entries, start, end


def _sent(project: Project, sequence: str) -> dict[tuple[int, str], list[dict]]:
    rows = project.store().rows("SELECT * FROM mails WHERE sequence = ? ORDER BY contact_id, id", (sequence,))
    found: dict[tuple[int, str], list[dict]] = {}
    for row in rows:
        found.setdefault((row["contact_id"], row["step_id"]), []).append(row)
    return found


def _check_no_step_twice_or_skipped(project: Project) -> None:
    store = project.store()
    outcomes = store.rows(
        "SELECT step_id, outcome, reason FROM journey_log WHERE outcome NOT IN ('entered', 'sent', 'completed')"
    )
    assert outcomes == [], outcomes  # nothing skipped, nothing failed, nobody exited
    twice = store.rows(
        "SELECT journey_id, step_id, COUNT(*) AS n FROM journey_log WHERE outcome = 'sent' GROUP BY 1, 2 HAVING n > 1"
    )
    assert twice == []
    assert store.outbox_counts() == {"sent": store.scalar("SELECT COUNT(*) FROM mails")}
    files = sorted((project.root / "outbox" / "new").glob("*.eml"))
    assert len(files) == store.scalar("SELECT COUNT(*) FROM mails")  # one file per Message-ID


def _show(moments: dict[str, datetime]) -> dict[str, str]:
    return {step: at.astimezone(PARIS).strftime("%a %d %H:%M %Z") for step, at in moments.items()}


@pytest.mark.parametrize("change", [SPRING, AUTUMN], ids=["spring-forward", "fall-back"])
def test_steps_cross_the_summer_time_change_once_each_at_the_right_local_time(project_dir, change):
    project = _project(project_dir)
    entries, start, end = _simulate(project, change)
    _check_no_step_twice_or_skipped(project)

    journeys = _sent(project, "parcours")
    for cid, entry in entries.items():
        expected = expected_journey(entry)
        got = {step: rows[0]["not_before"] for (c, step), rows in journeys.items() if c == cid}
        assert _show(got) == _show(expected), f"inscription on {entry}"
        for (c, step), rows in journeys.items():
            if c == cid:
                assert len(rows) == 1 and rows[0]["sent_at"] == expected[step]
        nine = [step for step in expected if step != "accueil"]
        assert {got[step].astimezone(PARIS).strftime("%H:%M") for step in nine} == {"09:00"}

    nights = _sent(project, "nuit")
    for cid, entry in entries.items():
        expected = expected_night(entry)
        got = {step: rows[0]["not_before"] for (c, step), rows in nights.items() if c == cid}
        assert got == expected, f"inscription on {entry}: {_show(got)} != {_show(expected)}"
        for step, at in got.items():
            (row,) = nights[(cid, step)]
            assert timedelta(0) <= row["sent_at"] - at < HOUR  # the first hourly run after

    (daily,) = _sent(project, "quotidien").values()  # one contact, one step, a journey per firing
    days = [start.astimezone(PARIS).date() + timedelta(days=n) for n in range(15)]
    firings = [local(day, 9) for day in days if start < local(day, 9) <= end]
    assert [row["sent_at"] for row in daily] == firings  # one a day at 09:00, the change day too
    assert len({row["journey_id"] for row in daily}) == len(firings)


# --- known problems: a day counted as 24 hours, then `time:` on that instant's local day ------------

NEAR_MIDNIGHT = """\
purpose: service
trigger: {event: inscription}
steps:
  - {id: premier, wait: 1d, time: "%(time)s", send: formation}
  - {id: second, wait: 1d, time: "%(time)s", send: formation}
"""
SESSION_DAYS = """\
purpose: service
trigger: {event: inscription}
steps:
  - {id: veille, at: event.session_start - 1d, time: "09:00", send: formation}
  - {id: enquete, at: event.session_end + 1d, time: "09:00", send: formation}
"""
KNOWN = [
    # wait: 1d + time: within an hour of midnight: the second step lands on the day of the first (autumn)...
    pytest.param(
        NEAR_MIDNIGHT % {"time": "00:30"},
        date(2026, 10, 24),
        {},
        {"premier": local(AUTUMN, 0, 30), "second": local(AUTUMN + timedelta(days=1), 0, 30)},
        id="autumn-wait-1d-time-00:30",
    ),
    # ... or skips a day (spring).
    pytest.param(
        NEAR_MIDNIGHT % {"time": "23:30"},
        date(2026, 3, 27),
        {},
        {"premier": local(SPRING - timedelta(days=1), 23, 30), "second": local(SPRING, 23, 30)},
        id="spring-wait-1d-time-23:30",
    ),
    # A date without a time is midnight: `- 1d` then 09:00 is two days before a session starting the day
    # after the spring change, and `+ 1d` (the shipped rappel-session's survey) is the very day of an end
    # on the autumn change day.
    pytest.param(
        SESSION_DAYS,
        date(2026, 3, 20),
        {"session_start": "2026-03-30", "session_end": "2026-04-02"},
        {"veille": local(SPRING, 9), "enquete": local(date(2026, 4, 3), 9)},
        id="spring-session-start-minus-1d",
    ),
    pytest.param(
        SESSION_DAYS,
        date(2026, 10, 16),
        {"session_start": "2026-10-20", "session_end": "2026-10-25"},
        {"veille": local(date(2026, 10, 19), 9), "enquete": local(AUTUMN + timedelta(days=1), 9)},
        id="autumn-session-end-plus-1d",
    ),
]


@pytest.mark.parametrize(("sequence", "entry", "data", "expected"), KNOWN)
def test_a_day_then_a_local_time_is_the_next_calendar_day_across_a_change(project_dir, sequence, entry, data, expected):
    (project_dir / "templates" / "formation.html").write_text(TEMPLATE, encoding="utf-8")
    (project_dir / "sequences" / "jours.yaml").write_text(sequence, encoding="utf-8")
    project = open_project(project_dir)
    cid = add_contact(project, "ada@example.org", at=f"{entry - timedelta(days=10)}T09:00")
    now = local(entry, 12)
    runner.run_once(project, now=now, lock_wait=0, deliver=False)  # the sequence is seen before the event
    contacts.record_event(project.store(), cid, "inscription", at=now, data=data, source="test", now=now)
    end = max(expected.values()) + timedelta(days=2)
    while now <= end:
        runner.run_once(project, now=now, lock_wait=0, deliver=False)
        now += HOUR
    got = {step: rows[0]["not_before"] for (_, step), rows in _sent(project, "jours").items()}
    assert _show(got) == _show(expected)
