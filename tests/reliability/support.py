"""Helpers for the reliability tests: what the SMTP server received, a server that restarts.

(Not a test module: it holds no tests.)
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import threading
from collections import defaultdict
from collections.abc import Iterator

import pytest
from smtp_server import SmtpTestServer

from edumail.store import Store

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def received(server: SmtpTestServer) -> dict[str, list[str]]:
    """Recipient -> the Message-IDs the server accepted for it, in order of arrival."""
    by_recipient: dict[str, list[str]] = defaultdict(list)
    with server.lock:
        messages = list(server.messages)
    for message in messages:
        found = _MESSAGE_ID.search(message.data)
        assert found, message.data[:500]
        for recipient in message.rcpt_tos:
            by_recipient[recipient.lower()].append(found.group(1).decode())
    return dict(by_recipient)


def stored_message_ids(store: Store) -> dict[str, str]:
    """Recipient -> the Message-ID of its one mail in the store."""
    rows = store.rows("SELECT c.email, m.message_id FROM mails m JOIN contacts c ON c.id = m.contact_id")
    result = {r["email"]: r["message_id"] for r in rows}
    assert len(result) == len(rows), "a contact has more than one mail"
    return result


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Append the processes a test starts: any still alive at the end is killed (a failed test leaks none)."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def restart(server: SmtpTestServer) -> None:
    """Start a stopped server again on the same port (aiosmtpd closes its loop on stop)."""
    server.controller.loop = asyncio.new_event_loop()
    server.start()


class RandomReply:
    """A fault for SmtpTestServer.faults.mail/.data: one of `replies`, `rate` of the time (seeded)."""

    def __init__(self, seed: int, rate: float, replies: list[str]):
        self.rng = random.Random(seed)
        self.rate = rate
        self.replies = replies
        self.given: list[str] = []
        self.lock = threading.Lock()

    def take(self) -> str | None:
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            reply = self.rng.choice(self.replies)
            self.given.append(reply)
            return reply
