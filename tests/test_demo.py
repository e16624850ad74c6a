"""`edumail demo`: the product running on a throw-away project."""

import email
import json
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from edumail.cli import app


def test_demo_runs_the_real_engine_and_writes_real_mails(tmp_path: Path):
    target = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(target), "--contacts", "60", "--days", "12"])
    assert result.exit_code == 0, result.output
    assert "60 contacts imported" in result.output
    assert "sequence rappel-session" in result.output
    files = sorted((target / "outbox").rglob("*.eml"))
    assert files, "no .eml written"
    db = sqlite3.connect(target / "edumail.db")
    sent = db.execute("SELECT COUNT(*) FROM mails WHERE state = 'sent'").fetchone()[0]
    assert sent == len(files)
    message = email.message_from_bytes(files[0].read_bytes())
    assert message["From"].endswith("<contact@horizon-formation.example>")
    kinds = {email.message_from_bytes(f.read_bytes()).get_content_type() for f in files}
    assert kinds == {"multipart/alternative", "multipart/mixed"}  # the convocations carry their attachments
    # Consent held: every marketing mail went to someone opted in, with a basis, when it was sent.
    consent_when_sent = (
        "SELECT l.consent = 'opted_in' AND l.basis IS NOT NULL FROM consent_log l"
        " WHERE l.contact_id = m.contact_id AND l.at <= m.sent_at ORDER BY l.at DESC, l.id DESC LIMIT 1"
    )
    marketing, wrong = db.execute(
        f"SELECT COUNT(*), SUM(NOT COALESCE(({consent_when_sent}), 0)) FROM mails m"
        " WHERE m.state = 'sent' AND m.purpose = 'marketing'"
    ).fetchone()
    assert marketing > 0 and wrong == 0
    # Each journey step ran at most once.
    doubled = db.execute(
        "SELECT COUNT(*) FROM (SELECT journey_id, step_id FROM mails WHERE journey_id IS NOT NULL"
        " GROUP BY journey_id, step_id HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    assert doubled == 0
    opens = db.execute("SELECT COUNT(*) FROM events WHERE name = 'email_opened'").fetchone()[0]
    assert opens > 0
    assert json.loads(db.execute("SELECT data FROM events WHERE name = 'inscription_finalisee' LIMIT 1").fetchone()[0])[
        "session"
    ]


def test_demo_moves_one_session_and_cancels_another_and_says_what_that_did(tmp_path: Path):
    target = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(target), "--contacts", "60", "--days", "12"])
    assert result.exit_code == 0, result.output
    assert "40 sessions imported from sessions.csv" in result.output
    moved = re.search(
        r"Calendar: session (\S+) moved on .+ from .+ to (\S+ \S+): (\d+) pending steps re-timed "
        r"\((.+)\), (\d+) changement-de-date sent",
        result.output,
    )
    cancelled = re.search(
        r"Calendar: session (\S+) cancelled on .+: (\d+) session journeys ended, "
        r"(\d+) session-annulee sent",
        result.output,
    )
    assert moved and cancelled, result.output
    assert int(moved[3]) > 0 and "rappel-session" in moved[4] and int(moved[5]) > 0
    assert int(cancelled[2]) > 0 and int(cancelled[3]) > 0
    db = sqlite3.connect(target / "edumail.db")
    start = db.execute("SELECT start_at FROM sessions WHERE id = ?", (moved[1],)).fetchone()[0]
    assert start.startswith(moved[2].split()[0])  # a Paris 09:00 start is the same day in UTC
    reminders = db.execute(
        "SELECT m.sent_at FROM mails m JOIN journeys j ON j.id = m.journey_id WHERE j.session_id = ?"
        " AND m.template = 'rappel-session' AND m.state = 'sent'",
        (moved[1],),
    ).fetchall()
    due = datetime.fromisoformat(start) - timedelta(hours=24)  # the reminder went at the new date, not the old
    assert all(datetime.fromisoformat(sent_at) >= due for (sent_at,) in reminders)
    status, notices = db.execute(
        "SELECT s.status, (SELECT COUNT(*) FROM mails m JOIN journeys j ON j.id = m.journey_id"
        " WHERE j.session_id = s.id AND m.template = 'session-annulee' AND m.state = 'sent') FROM sessions s"
        " WHERE s.id = ?",
        (cancelled[1],),
    ).fetchone()
    assert (status, notices) == ("cancelled", int(cancelled[3]))
    after = db.execute(
        "SELECT COUNT(*) FROM mails m JOIN journeys j ON j.id = m.journey_id WHERE j.session_id = ?"
        " AND m.template IN ('rappel-session', 'evaluation-a-chaud') AND m.state = 'sent'",
        (cancelled[1],),
    ).fetchone()[0]
    assert after == 0  # a cancelled session sends no reminder and no evaluation


def test_demo_refuses_nonsense_sizes(tmp_path: Path):
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path / "d"), "--days", "0"])
    assert result.exit_code == 1 and "--days" in result.output


def test_demo_days_are_local_calendar_days_across_a_clock_change(tmp_path: Path):
    from edumail import demo

    start = demo._start(demo.clock.parse_iso("2026-10-26T12:00", demo.clock.UTC))
    labels = [demo._local_midnight(start, n).astimezone(demo.clock.zone("Europe/Paris")) for n in range(8)]
    assert [d.strftime("%a %d %H:%M") for d in labels] == [
        "Mon 26 00:00",
        "Tue 27 00:00",
        "Wed 28 00:00",
        "Thu 29 00:00",
        "Fri 30 00:00",
        "Sat 31 00:00",
        "Sun 01 00:00",
        "Mon 02 00:00",
    ]
    across = demo._start(demo.clock.parse_iso("2026-10-20T12:00", demo.clock.UTC))
    sunday, monday = demo._local_midnight(across, 6), demo._local_midnight(across, 7)
    assert monday - sunday == demo.timedelta(hours=25)
