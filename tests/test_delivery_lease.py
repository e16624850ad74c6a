# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""The delivery lease: renewed while sending, and a deliverer that lost it stops before its next mail.

A real `edumail send` process is frozen with SIGSTOP past the lease's TTL
(EDUMAIL_LEASE_TTL, seconds, short here); another deliverer takes over and
sends everything; the frozen one, resumed with SIGCONT, must send nothing
more: no mail arrives twice.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import add_contacts, make_project

from edumail import clock, delivery, lease
from edumail import project as project_module
from edumail.store import Store
from edumail.transport.smtp import SmtpTransport

NOW = "2026-03-02T09:00:00Z"
TTL = "1"
CONTACTS = 6


def _send(root: Path) -> subprocess.Popen:
    env = {**os.environ, "EDUMAIL_NOW": NOW, "EDUMAIL_LEASE_TTL": TTL}
    return subprocess.Popen(
        [sys.executable, "-m", "edumail", "--project", str(root), "send", "session"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _sent(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM mails WHERE state = 'sent'").fetchone()[0])


def _write_lock_free(db: Path) -> bool:
    """Nobody holds the database's write lock (the frozen process is not mid-transaction)."""
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _freeze_between_mails(process: subprocess.Popen, db: Path) -> None:
    """SIGSTOP the sender once its first mail is recorded, at a moment it holds no write lock."""
    deadline = time.monotonic() + 60
    while _sent(db) < 1:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate(timeout=5)
        time.sleep(0.02)
    for _ in range(50):
        process.send_signal(signal.SIGSTOP)
        if _write_lock_free(db):
            return
        process.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the sender never left its write transaction")


def test_a_deliverer_frozen_past_its_lease_stops_and_nothing_is_sent_twice(
    tmp_path, smtp_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
):
    # 30 a minute: after its first mail the sender waits 2 s for its next slot, where it is frozen.
    settings = smtp_server.settings_yaml(concurrency=1, rate_per_minute=30)
    project = make_project(tmp_path / "centre", extra=settings)
    add_contacts(project, CONTACTS)
    project.close()
    db = project.root / "edumail.db"

    frozen = _send(project.root)
    try:
        _freeze_between_mails(frozen, db)
        time.sleep(float(TTL) + 0.5)  # the frozen sender's lease expires (wall clock: leases ignore EDUMAIL_NOW)

        monkeypatch.setenv("EDUMAIL_LEASE_TTL", TTL)
        taker = project_module.load(project.root)
        fast = SmtpTransport(dataclasses.replace(taker.settings.smtp, rate_per_minute=0))
        report = delivery.deliver(taker, now=clock.parse_iso(NOW, clock.UTC), transport=fast)
        assert report.busy is None and report.ok, report
        assert report.sent == CONTACTS - 1 and report.recovered == 1  # its claimed mail is taken over too
        taker.close()
    finally:
        frozen.send_signal(signal.SIGCONT)
    out, err = frozen.communicate(timeout=60)

    assert frozen.returncode == 1, (out + err).decode()
    assert "took delivery over" in (out + err).decode()
    counts = Counter(message["Message-ID"] for message in smtp_server.parsed())
    assert len(counts) == CONTACTS and max(counts.values()) == 1, counts
    assert _sent(db) == CONTACTS


def test_the_lease_is_renewed_before_each_mail_once_a_quarter_of_its_ttl_has_passed(
    tmp_path, smtp_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
):
    """Each mail takes longer than a quarter of the TTL here: the expiry moves on before every mail."""
    monkeypatch.setenv("EDUMAIL_LEASE_TTL", "0.4")
    smtp_server.delay = 0.15
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml(concurrency=1))
    add_contacts(project, 4)
    expiries: list[object] = []

    def progress(_report: delivery.DeliveryReport) -> None:
        store = Store(project.root / "edumail.db")
        try:
            holder = store.lock_holder("delivery")
            expiries.append(holder and holder["expires_at"])
        finally:
            store.close()

    from edumail import campaigns

    campaigns.create_campaign(project, "session", now=clock.parse_iso(NOW, clock.UTC), name="c")
    report = delivery.deliver(project, now=clock.parse_iso(NOW, clock.UTC), progress=progress)
    assert report.sent == 4 and report.ok, report
    assert None not in expiries and len(expiries) == 4
    assert expiries == sorted(set(expiries)), expiries  # pushed further before each mail


def test_a_lease_ttl_that_is_not_a_number_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("EDUMAIL_LEASE_TTL", "soon")
    with pytest.raises(Exception, match="EDUMAIL_LEASE_TTL"):
        lease.ttl_from_env(delivery.LOCK_TTL)
