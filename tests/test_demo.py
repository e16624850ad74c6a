"""`edumail demo`: the product running on a throw-away project."""

import email
import json
import sqlite3
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
    assert message.get_content_type() == "multipart/alternative"
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
        "session_start"
    ]


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
