"""`alerts: {email: ...}` (SPEC 11): one mail to staff when delivery stops or a sequence is skipped,
at most once a day per problem, kind `alert` in the outbox, never a contact's mail. Real CLI, real SMTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from journeys_support import SESSION_DATA, add_contact, event, install_library, open_project, run
from smtp_server import SmtpTestServer

ALERTS = "alerts:\n  email: direction@centre.example\n"


@pytest.fixture
def server():
    smtp = SmtpTestServer()
    smtp.start()
    yield smtp
    smtp.stop()


@pytest.fixture
def root(project_dir: Path, server: SmtpTestServer) -> Path:
    install_library(project_dir)
    settings = project_dir / "edumail.yaml"
    settings.write_text(settings.read_text() + server.settings_yaml(username="centre") + ALERTS, encoding="utf-8")
    server.require_auth("centre", "right")
    project = open_project(project_dir)
    run(project, "2026-12-01T08:00")
    cid = add_contact(project, "learner@example.org", consent="unknown")
    event(project, cid, "inscription_finalisee", "2026-12-01T10:00", **SESSION_DATA)
    project.close()
    return project_dir


def _run(root: Path, now: str, password: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDUMAIL_NOW": now, "EDUMAIL_PROJECT": str(root), "EDUMAIL_SMTP_PASSWORD": password}
    return subprocess.run(
        [sys.executable, "-m", "edumail", "run", "--once"], env=env, capture_output=True, text=True, timeout=120
    )


def _text(message) -> str:  # noqa: ANN001
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    return ""


def _subject(message) -> str:  # noqa: ANN001
    from email.header import decode_header, make_header

    return str(make_header(decode_header(message["Subject"])))


def _alerts(root: Path) -> list[dict]:
    return open_project(root).store().rows("SELECT * FROM mails WHERE template = '__alert__' ORDER BY id")


def test_delivery_stopped_alerts_staff_once_a_day_and_the_alert_goes_when_delivery_works(root, server) -> None:
    first = _run(root, "2026-12-01T10:05", "wrong")
    assert first.returncode == 1, first.stdout + first.stderr
    output = first.stdout + first.stderr
    assert "alert to direction@centre.example queued" in output and "goes out once delivery works" in output
    assert len(_alerts(root)) == 1
    assert _run(root, "2026-12-01T15:00", "wrong").returncode == 1
    assert len(_alerts(root)) == 1  # the same problem, the same day: no second alert
    assert _run(root, "2026-12-02T09:00", "wrong").returncode == 1
    assert len(_alerts(root)) == 2  # the next day: alerted again

    fixed = _run(root, "2026-12-02T10:00", "right")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    to_staff = [m for m in server.parsed() if "direction@centre.example" in m["To"]]
    assert len(to_staff) == 2
    body = _text(to_staff[0])
    assert "[edumail]" in _subject(to_staff[0]) and "envoi" in _subject(to_staff[0])
    assert "535" in body or "refus" in body
    assert "EDUMAIL_SMTP_PASSWORD" not in body or "right" not in body
    store = open_project(root).store()
    assert {m["state"] for m in _alerts(root)} == {"sent"}
    assert all(m["contact_id"] is None for m in _alerts(root))
    assert store.scalar("SELECT COUNT(*) FROM events WHERE name = 'email_sent'") == 1  # the learner's mail only


def test_a_broken_sequence_file_alerts_staff_in_the_same_run(root, server) -> None:
    (root / "sequences" / "broken.yaml").write_text(
        "name: broken\ntrigger: {event: x}\nexit_onn: []\n", encoding="utf-8"
    )
    done = _run(root, "2026-12-01T10:05", "right")
    assert done.returncode == 1, done.stdout + done.stderr
    to_staff = [m for m in server.parsed() if "direction@centre.example" in m["To"]]
    assert len(to_staff) == 1
    body = _text(to_staff[0])
    assert "sequences/broken.yaml" in body and "edumail check" in body
    assert _run(root, "2026-12-01T11:05", "right").returncode == 1
    assert len([m for m in server.parsed() if "direction@centre.example" in m["To"]]) == 1


def test_a_bad_alerts_address_is_a_settings_error(project_dir: Path) -> None:
    settings = project_dir / "edumail.yaml"
    settings.write_text(settings.read_text() + "alerts:\n  email: direction-at-centre\n", encoding="utf-8")
    env = {**os.environ, "EDUMAIL_PROJECT": str(project_dir)}
    done = subprocess.run([sys.executable, "-m", "edumail", "check"], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "alerts.email" in done.stdout + done.stderr and "Traceback" not in done.stderr
