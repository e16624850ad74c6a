# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Sending on every core (issue 17): `edumail send` hands mails over from worker processes.

Real `edumail send` processes against the aiosmtpd test server. The workers are
found as the processes below the command's own (they come from a fork server);
these tests kill one, interrupt the whole process group as a terminal's Ctrl-C
does, and check that nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import add_contacts, make_project, queue

from edumail import send_pool, send_worker
from edumail.store import Store
from edumail.transport.memory import MemoryTransport

NOW = "2026-03-02T09:00:00Z"
CONTACTS = 40


def _send(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "EDUMAIL_NOW": NOW, "EDUMAIL_PROJECT": str(root)}
    return subprocess.Popen(
        [sys.executable, "-m", "edumail", "send", "session", "--name", "rentree"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a command typed in a terminal
    )


def _children() -> dict[int, list[int]]:
    """Every process of the machine by parent pid (from /proc)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _workers(pid: int, count: int) -> list[int]:
    """The sending workers of the `edumail send` process `pid`: the children of its fork server."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tree = _children()
        for server in _descendants(pid):
            try:
                command = Path(f"/proc/{server}/cmdline").read_bytes()
            except OSError:
                continue
            if b"forkserver" in command and len(tree.get(server, [])) >= count:
                return tree[server]
        time.sleep(0.05)
    raise AssertionError(f"no {count} worker processes under {pid}: {_descendants(pid)}")


def _centre(tmp_path: Path, server: SmtpTestServer, *, concurrency: int, delay: float) -> Path:
    """A project of CONTACTS contacts sending through `server`, which answers each DATA after `delay` s."""
    project = make_project(tmp_path / "centre", extra=server.settings_yaml(concurrency=concurrency))
    add_contacts(project, CONTACTS)
    project.close()
    server.delay = delay
    return project.root


def _states(root: Path) -> dict[str, int]:
    store = Store(root / "edumail.db")
    try:
        return store.outbox_counts()
    finally:
        store.close()


def _by_recipient(server: SmtpTestServer) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for message in server.parsed():
        got.setdefault(message["To"].split("<")[-1].rstrip(">"), []).append(message["Message-ID"])
    return got


def test_mails_go_from_one_worker_process_per_connection(tmp_path, smtp_server: SmtpTestServer) -> None:
    root = _centre(tmp_path, smtp_server, concurrency=3, delay=0.05)
    process = _send(root)
    try:
        assert smtp_server.wait_for(3, timeout=60)
        workers = _workers(process.pid, 3)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, out + err
    assert len(workers) == 3 and process.pid not in workers
    assert len({m.connection for m in smtp_server.messages}) == 3  # one SMTP connection a worker
    assert sorted(Counter(m.rcpt_tos[0] for m in smtp_server.messages).values()) == [1] * CONTACTS
    assert _states(root) == {"sent": CONTACTS}


def test_a_worker_killed_mid_run_stops_the_run_and_the_next_one_sends_the_rest(
    tmp_path, smtp_server: SmtpTestServer
) -> None:
    root = _centre(tmp_path, smtp_server, concurrency=2, delay=0.1)
    process = _send(root)
    try:
        assert smtp_server.wait_for(4, timeout=60)
        os.kill(_workers(process.pid, 2)[0], signal.SIGKILL)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    output = out + err
    assert process.returncode == 1, output
    assert "Traceback" not in output
    assert "a sending worker stopped" in output and "exit status -9" in output, output
    assert "sending" not in _states(root)  # what it held went back to the queue

    again = _send(root)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    got = _by_recipient(smtp_server)
    assert len(got) == CONTACTS
    twice = {r: ids for r, ids in got.items() if len(ids) > 1}
    assert len(twice) <= 1, twice  # the mail the killed worker was handing over, if the server had it
    assert all(len(set(ids)) == 1 for ids in twice.values()), twice  # and then with its Message-ID
    assert _states(root) == {"sent": CONTACTS}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_a_service_stop_reaches_the_workers_too_and_the_run_still_winds_down(
    tmp_path, smtp_server: SmtpTestServer, signum: int
) -> None:
    """Ctrl-C in a terminal signals the whole process group, systemd's stop the whole cgroup."""
    root = _centre(tmp_path, smtp_server, concurrency=2, delay=0.1)
    process = _send(root)
    try:
        assert smtp_server.wait_for(4, timeout=60)
        workers = _workers(process.pid, 2)
        os.killpg(process.pid, signum)  # the whole group
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    output = out + err
    assert process.returncode == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    sent = len(smtp_server.messages)
    assert f"Interrupted: {sent} sent, {CONTACTS - sent} still queued" in output, output
    assert _states(root) == {"sent": sent, "queued": CONTACTS - sent}
    deadline = time.monotonic() + 10  # no worker left behind: each ends when its pipe does
    while [pid for pid in workers if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_a_mail_cancelled_in_between_does_not_stand_for_the_verdict_on_the_last_hand_over(tmp_path) -> None:
    """A worker hands over its next mail only once the last one it handed over is recorded, even when a
    mail it cancelled (its contact unsubscribed) came in between: else a kill could find two mails of one
    worker taken by the server and not recorded."""
    project = make_project(tmp_path / "centre")
    first, unsubscribed, third = add_contacts(project, 3)
    project.store().update_contact(unsubscribed, {"consent": "unsubscribed"}, datetime(2026, 3, 1, tzinfo=UTC))
    mails = queue(project, [first, unsubscribed, third])
    claimed = project.store().claim_due_mails(datetime(2099, 1, 1, tzinfo=UTC), 3)
    assert [int(mail["id"]) for mail in claimed] == mails
    transport = MemoryTransport()
    setup = send_worker.Setup(project.root, project.settings, datetime(2026, 3, 2, tzinfo=UTC), started=time.time())
    shared = send_worker.Shared(multiprocessing, {"per_minute": 0, "start": 0.0, "burst": 1})
    shared.deadline.value = time.time() + 600
    pool = send_pool.Pool(setup, shared, workers=1, per_worker=3, project=project, transport=transport)
    try:
        for mail in claimed:
            pool.give(mail)
        answers: list[tuple[object, ...]] = []
        deadline = time.monotonic() + 30
        while len(answers) < 2 and time.monotonic() < deadline:
            answers += [result for _, result, _ in pool.collect(0.1)]
        assert [answer[0] for answer in answers] == ["sent", "cancelled"]
        # No verdict on the first yet: the third is composed, and waits.
        assert [result[0] for _, result, _ in pool.collect(1.0)] == []
        assert len(transport.sent) == 1
        pool.go(0)
        assert [result[0] for _, result, _ in pool.collect(30)] == ["sent"]
        assert len(transport.sent) == 2
    finally:
        pool.go(0)
        pool.close()
