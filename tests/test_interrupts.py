# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Signals and concurrent senders (issue 12): Ctrl-C during `send`, a second signal while the daemon
stops, two `send` of one campaign at once. Real subprocesses against a slow aiosmtpd server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import add_contacts, make_project, queue

NOW = "2026-03-02T09:00:00Z"


def _edumail(root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "EDUMAIL_NOW": NOW, "EDUMAIL_PROJECT": str(root)}
    return subprocess.Popen(
        [sys.executable, "-m", "edumail", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _leftovers(root: Path) -> tuple[int, int]:
    from edumail.store import Store

    store = Store(root / "edumail.db")
    try:
        sending = int(store.scalar("SELECT COUNT(*) FROM mails WHERE state = 'sending'") or 0)
        locks = int(store.scalar("SELECT COUNT(*) FROM locks") or 0)
    finally:
        store.close()
    return sending, locks


def test_ctrl_c_during_send_says_what_went_and_what_waits(tmp_path, smtp_server: SmtpTestServer) -> None:
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    add_contacts(project, 30)
    project.close()
    smtp_server.delay = 0.2  # slow replies: the interrupt lands mid-batch

    process = _edumail(project.root, "send", "session", "--name", "rentree")
    try:
        assert smtp_server.wait_for(3, timeout=60)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    output = out + err
    assert process.returncode == 130, output
    assert "Traceback" not in output
    sent = len(smtp_server.messages)
    assert 3 <= sent < 30
    assert f"Interrupted: {sent} sent, {30 - sent} still queued" in output, output
    assert "(campaign rentree)" in output and "`edumail run` sends the rest" in output
    assert _leftovers(project.root) == (0, 0)

    again = _edumail(project.root, "send", "session", "--name", "rentree")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert sorted(Counter(m.rcpt_tos[0] for m in smtp_server.messages).values()) == [1] * 30


def test_a_second_signal_while_the_daemon_stops_is_ignored(tmp_path, smtp_server: SmtpTestServer) -> None:
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    queue(project, add_contacts(project, 20))
    project.close()
    smtp_server.delay = 0.3

    process = _edumail(project.root, "run", "--daemon", "--interval", "1")
    try:
        assert smtp_server.wait_for(2, timeout=60)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.05)  # not a timing assertion: the second signal lands while the first one is handled
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    output = out + err
    assert "Traceback" not in output and "SchedulerNotRunningError" not in output, output
    assert process.returncode == 0, output
    assert "already stopping" in output
    assert "edumail daemon: stopped" in output
    assert _leftovers(project.root) == (0, 0)


def test_two_sends_of_one_campaign_never_collide(tmp_path, smtp_server: SmtpTestServer) -> None:
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    add_contacts(project, 40)
    project.close()
    smtp_server.delay = 0.02

    for _round in range(3):
        first = _edumail(project.root, "send", "session", "--name", "rentree")
        second = _edumail(project.root, "send", "session", "--name", "rentree")
        for process in (first, second):
            out, err = process.communicate(timeout=120)
            assert "IntegrityError" not in out + err and "Traceback" not in err, out + err
            assert process.returncode == 0, out + err
            said = ("is being sent by another edumail process", " sent in ", "Nothing to send now")
            assert any(text in out + err for text in said), out + err
    counts = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert len(counts) == 40 and set(counts.values()) == {1}
    assert _leftovers(project.root) == (0, 0)
