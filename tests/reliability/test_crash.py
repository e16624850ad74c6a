# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Crash: a 5,000-mail campaign killed with SIGKILL at 5 random points, resumed each time.

Every contact gets exactly one mail. The one exception SPEC section 6 allows:
a mail the server accepted just before the kill, before the local commit,
arrives twice, and then with the same Message-ID. The test checks that each
such duplicate was indeed in flight ('sending' in the store) when a kill landed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import add_contacts, make_project

from edumail import delivery
from edumail.store import Store

from .support import received, spawned, stored_message_ids  # noqa: F401  (fixture)

CONTACTS = 5000
KILLS = 5
SEED = 20260302
CONCURRENCY = 4
NOW = "2026-03-02T09:00:00Z"  # a Monday, 10:00 in Paris
# How each killed run was started, then resumed: the same command again, or the cron run.
SEND = ("send", "session")
RUN = ("run", "--once")
RESUMES = [SEND, SEND, RUN, SEND, RUN]


def _start(spawned: list[subprocess.Popen[bytes]], root: Path, args: tuple[str, ...]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EDUMAIL_NOW": NOW}
    command = [sys.executable, "-m", "edumail", "--project", str(root), *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    spawned.append(process)
    return process


def _mail_ids(store: Store, state: str) -> set[str]:
    return {r["message_id"] for r in store.rows("SELECT message_id FROM mails WHERE state = ?", (state,))}


@pytest.mark.slow
def test_a_campaign_killed_five_times_reaches_every_contact_exactly_once(
    tmp_path: Path,
    smtp_server: SmtpTestServer,  # noqa: F811
    spawned: list[subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml(concurrency=CONCURRENCY))
    add_contacts(project, CONTACTS)
    project.close()
    root = project.root
    rng = random.Random(SEED)
    # Kill points, as mails accepted by the server so far: one at random in each fifth of the campaign.
    fifth = CONTACTS // KILLS
    points = [rng.randrange(max(k * fifth, 50), (k + 1) * fifth - 200) for k in range(KILLS)]
    in_flight: set[str] = set()  # Message-IDs in 'sending' at a kill: the only ones allowed twice

    for point, args in zip(points, RESUMES, strict=True):
        process = _start(spawned, root, args)
        try:
            reached = smtp_server.wait_for(point, timeout=120)
        finally:
            process.send_signal(signal.SIGKILL)
            output = process.communicate(timeout=30)[0].decode()
        assert reached, f"{args}: never reached {point} mails\n{output}"
        assert process.returncode == -signal.SIGKILL, output

        store = Store(root / "edumail.db")
        try:
            sending = _mail_ids(store, "sending")
            committed = _mail_ids(store, "sent")
            # At most two mails a worker: the one it hands over and the next it composes meanwhile.
            assert len(sending) <= CONCURRENCY * delivery.PER_WORKER
            in_flight |= sending
            # Nothing is marked sent that the server did not accept.
            accepted = {mid for ids in received(smtp_server).values() for mid in ids}
            assert committed <= accepted
        finally:
            store.close()

    final = _start(spawned, root, SEND)
    output = final.communicate(timeout=180)[0].decode()
    assert final.returncode == 0, output
    assert "already queued by an earlier run" in output  # the campaign was not queued again
    if sending:  # what the last kill left in flight
        assert f"{len(sending)} re-sent after an interrupted run" in output, output
    again = _start(spawned, root, RUN)
    output = again.communicate(timeout=60)[0].decode()
    assert again.returncode == 0 and "Nothing was due." in output, output

    got = received(smtp_server)
    assert sorted(got) == sorted(f"contact{n}@example.org" for n in range(CONTACTS))
    for recipient, ids in got.items():
        if len(ids) > 1:
            assert len(set(ids)) == 1, f"{recipient} got two different mails: {ids}"
            assert ids[0] in in_flight, f"{recipient} got {ids[0]} twice, but it was not in flight at a kill"
    duplicates = sum(len(ids) - 1 for ids in got.values())
    assert duplicates <= KILLS * CONCURRENCY  # a worker hands a mail over only once its last one is recorded

    store = Store(root / "edumail.db")
    try:
        assert store.outbox_counts() == {"sent": CONTACTS}
        assert stored_message_ids(store) == {r: ids[0] for r, ids in got.items()}  # one mail per contact
        sent_events = store.rows("SELECT mail_id, COUNT(*) AS n FROM events WHERE name = 'email_sent' GROUP BY mail_id")
        assert len(sent_events) == CONTACTS and {e["n"] for e in sent_events} == {1}
        assert store.scalar("SELECT state FROM campaigns") == "done"
        assert store.rows("SELECT * FROM locks") == []
    finally:
        store.close()
