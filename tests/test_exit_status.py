# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Exit status (SPEC 11) as cron sees it, through the real CLI: `send`, `sessions import`, `inbox import`,
`bounces import`. 0 only when everything asked was done; 1 when a person must look; never a traceback."""

from __future__ import annotations

import mailbox
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import add_contacts, make_project

NOW = "2026-03-02T09:00:00Z"


def _edumail(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDUMAIL_NOW": NOW, "EDUMAIL_PROJECT": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "edumail", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _mbox(path: Path, *messages: EmailMessage | bytes) -> Path:
    box = mailbox.mbox(str(path))
    for message in messages:
        box.add(message)
    box.close()
    return path


def _mail(sender: str, subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "contact@centre.example", subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def test_send_exits_1_when_a_mail_fails_and_0_when_all_went(tmp_path, smtp_server: SmtpTestServer) -> None:
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    add_contacts(project, 3)
    project.close()
    smtp_server.reply_to_data("554 5.6.0 message refused", times=1)
    failed = _edumail(project.root, "send", "session", "--name", "one")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "2 sent, 1 failed" in failed.stdout
    done = _edumail(project.root, "send", "session", "--name", "two")
    assert done.returncode == 0, done.stdout + done.stderr


def test_send_with_bad_data_exits_1_and_queues_nothing(tmp_path) -> None:
    project = make_project(tmp_path / "centre")
    add_contacts(project, 2)
    project.close()
    done = _edumail(project.root, "send", "session", "--data", "no-equals-sign")
    assert done.returncode == 1 and "--data 'no-equals-sign': expected key=value" in done.stderr
    assert _edumail(project.root, "outbox").stdout.startswith("Outbox: empty.")


def test_sessions_import_exits_1_on_a_bad_row_and_imports_nothing(tmp_path) -> None:
    project = make_project(tmp_path / "centre")
    project.close()
    csv = tmp_path / "s.csv"
    csv.write_text("id;début;fin\nOK-1;14/10/2026 09:30;15/10/2026 17:00\nBAD;32/10/2026;14/11/2026\n")
    done = _edumail(project.root, "sessions", "import", str(csv))
    assert done.returncode == 1 and "s.csv:3" in done.stdout + done.stderr
    assert "0 session(s)" in _edumail(project.root, "sessions", "list").stdout
    csv.write_text("id;début;fin\nOK-1;14/10/2026 09:30;15/10/2026 17:00\n")
    assert _edumail(project.root, "sessions", "import", str(csv)).returncode == 0


def test_inbox_import_exits_0_for_mail_that_is_no_reply_and_1_for_a_missing_mailbox(tmp_path) -> None:
    project = make_project(tmp_path / "centre")
    project.close()
    box = _mbox(tmp_path / "in.mbox", _mail("someone@example.org", "Une question", "Bonjour"))
    done = _edumail(project.root, "inbox", "import", str(box))
    assert done.returncode == 0 and "1 not replies to our mails" in done.stdout, done.stdout + done.stderr
    missing = _edumail(project.root, "inbox", "import", str(tmp_path / "nowhere.mbox"))
    assert missing.returncode == 1 and "nowhere.mbox" in missing.stderr


def test_bounces_import_exits_1_when_a_notification_matches_no_mail(tmp_path) -> None:
    project = make_project(tmp_path / "centre")
    project.close()
    from test_bounces import hard  # the RFC 3464 layout those tests build

    dsn = hard("stranger@example.org", original_id=None)
    done = _edumail(project.root, "bounces", "import", str(_mbox(tmp_path / "b.mbox", dsn)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stranger@example.org" in done.stdout
