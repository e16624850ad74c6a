"""An in-memory transport for tests: keeps every envelope, can inject failures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message

from edumail.transport import Envelope, SendFailure

Fault = Callable[[Envelope], "SendFailure | None"]


class MemoryConnection:
    def __init__(self, transport: MemoryTransport):
        self.transport = transport
        self.closed = False

    def send(self, envelope: Envelope) -> None:
        if self.transport.fault is not None:
            failure = self.transport.fault(envelope)
            if failure is not None:
                raise failure
        with self.transport.lock:
            self.transport.sent.append(envelope)

    def close(self) -> None:
        self.closed = True


class MemoryTransport:
    """`sent` lists the accepted envelopes; `fault(envelope)` may return a SendFailure to raise."""

    name = "memory"

    def __init__(self, fault: Fault | None = None, concurrency: int = 1, rate_per_minute: int = 0):
        self.fault = fault
        self.concurrency = concurrency
        self.rate_per_minute = rate_per_minute
        self.sent: list[Envelope] = []
        self.connections = 0
        self.lock = threading.Lock()

    def connect(self) -> MemoryConnection:
        with self.lock:
            self.connections += 1
        return MemoryConnection(self)

    def messages(self) -> list[Message]:
        """The accepted mails, parsed."""
        with self.lock:
            return [message_from_bytes(e.data) for e in self.sent]

    def describe(self) -> str:
        return "memory"
