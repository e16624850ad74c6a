# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""A sending process killed with SIGKILL mid-batch: the re-run delivers every mail exactly once.

The one allowed exception (SPEC section 6): a mail the server accepted just
before the kill, before the local commit, arrives twice with the same Message-ID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import add_contacts, make_project

CONTACTS = 60
CONCURRENCY = 2


def _send(root: Path) -> subprocess.Popen:
    env = {**os.environ, "EDUMAIL_NOW": "2026-03-02T09:00:00Z"}
    return subprocess.Popen(
        [sys.executable, "-m", "edumail", "--project", str(root), "send", "session"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigkill_mid_batch_then_rerun_delivers_each_mail_once(tmp_path, smtp_server: SmtpTestServer):  # noqa: F811
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml(concurrency=CONCURRENCY))
    add_contacts(project, CONTACTS)
    project.close()
    smtp_server.delay = 0.05  # slow replies: the kill lands mid-batch, often mid-transaction

    first = _send(project.root)
    try:
        assert smtp_server.wait_for(15, timeout=60), first.communicate(timeout=5)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    delivered_before = len(smtp_server.messages)
    assert delivered_before < CONTACTS

    second = _send(project.root)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, (out + err).decode()

    by_recipient: dict[str, list[str]] = defaultdict(list)
    for message in smtp_server.parsed():
        by_recipient[message["To"].split("<")[-1].rstrip(">")].append(message["Message-ID"])
    assert sorted(by_recipient) == sorted(f"contact{n}@example.org" for n in range(CONTACTS))
    duplicates = {r: ids for r, ids in by_recipient.items() if len(ids) > 1}
    for recipient, ids in duplicates.items():
        assert len(set(ids)) == 1, f"{recipient} got two different mails: {ids}"
    assert len(duplicates) <= CONCURRENCY  # at most the mails in flight at the kill

    store = project.store()
    assert store.outbox_counts() == {"sent": CONTACTS}
    assert store.scalar("SELECT COUNT(*) FROM events WHERE name = 'email_sent'") == CONTACTS
