"""A real SMTP server for tests: aiosmtpd on a loopback port, with fault injection.

Use the `smtp_server` fixture (import it into a test module; tests/ is on sys.path):

    from smtp_server import smtp_server  # noqa: F401  (the fixture)

    def test_something(smtp_server):
        smtp_server.refuse("ghost@example.org", "550 5.1.1 No such user")
        ...
        assert smtp_server.recipients() == [...]

What it can do (each fault applies to the next `times` occurrences, None = always):

- `greet(reply, times)`: answer a new connection with `reply` instead of 220, then close it (`421 ...`).
- `reply_to_ehlo(reply, times)`: answer EHLO with `reply` (`421 ...` also closes the connection).
- `refuse(address, reply, times=None)`: answer RCPT TO for that address with `reply`
  (`550 5.1.1 ...`, `452 4.2.2 ...`, `421 4.7.0 ...`: a 421 also closes the connection).
- `reply_to_mail(reply, times, after=0)`: answer MAIL FROM (e.g. `554 5.7.1 blocked`, `421 ...`), after
  letting `after` of them through.
- `reply_to_data(reply, times)`: answer the end of DATA instead of 250 (`451 ...`, `554 5.7.1 ...`).
- `drop_in_data(times)`: close the connection after the message is received, before answering.
- `delay`: seconds to wait before answering each end of DATA (slow server).
- `delay_mail`: seconds to wait before answering each MAIL FROM (a server silent at another stage).
- `max_per_connection`: close an idle connection silently after N accepted mails (Yahoo-style).
- `require_auth(user, password)`: AUTH PLAIN/LOGIN accepted for that pair only (no TLS needed).
- `pipelining`: offer PIPELINING in EHLO (True by default, as Postfix and the providers do; aiosmtpd answers
  pipelined commands in order). False: a server that does not, so commands go one at a time.

`messages` holds every accepted mail (`Received` records: envelope and parsed message).
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from ports import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    connection: int  # which connection (1, 2, ...) brought it

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


@dataclass
class _Fault:
    reply: str
    times: int | None
    after: int = 0  # let this many through first

    def take(self) -> str | None:
        if self.after > 0:
            self.after -= 1
            return None
        if self.times is not None:
            if self.times <= 0:
                return None
            self.times -= 1
        return self.reply


@dataclass
class _Faults:
    rcpt: dict[str, _Fault] = field(default_factory=dict)
    greeting: _Fault | None = None
    ehlo: _Fault | None = None
    mail: _Fault | None = None
    data: _Fault | None = None
    drops: int = 0


def _close_soon(server: Any) -> None:
    transport = server.transport
    if transport is not None:
        asyncio.get_running_loop().call_later(0.01, transport.close)


class _Handler:
    def __init__(self, owner: SmtpTestServer):
        self.owner = owner

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.owner.lock:
            refusal = self.owner.faults.ehlo.take() if self.owner.faults.ehlo else None
        if refusal:
            if refusal.startswith("421"):
                _close_soon(server)
            return [refusal]
        if not hasattr(session, "edumail_connection"):
            with self.owner.lock:
                self.owner.connections += 1
                session.edumail_connection = self.owner.connections
                session.edumail_accepted = 0
        if self.owner.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        owner = self.owner
        if owner.delay_mail:
            await asyncio.sleep(owner.delay_mail)
        limit = owner.max_per_connection
        if limit is not None and getattr(session, "edumail_accepted", 0) >= limit:
            server.transport.close()  # silently, like Yahoo: no reply at all
            return "250 OK"
        with owner.lock:
            reply = owner.faults.mail.take() if owner.faults.mail else None
        if reply:
            if reply.startswith("421"):
                _close_soon(server)
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        owner = self.owner
        with owner.lock:
            fault = owner.faults.rcpt.get(address.lower())
            reply = fault.take() if fault else None
        if reply:
            if reply.startswith("421"):
                _close_soon(server)
            return reply
        envelope.rcpt_tos.append(address)
        with owner.lock:
            owner.accepted_rcpt.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        owner = self.owner
        if owner.delay:
            await asyncio.sleep(owner.delay)
        with owner.lock:
            drop = owner.faults.drops > 0
            if drop:
                owner.faults.drops -= 1
            reply = owner.faults.data.take() if owner.faults.data and not drop else None
        if drop:
            server.transport.close()
            return "250 never sent"
        if reply:
            if reply.startswith("421"):
                _close_soon(server)
            return reply
        data = envelope.original_content or envelope.content
        with owner.lock:
            owner.messages.append(
                Received(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(data), getattr(session, "edumail_connection", 0)
                )
            )
        session.edumail_accepted = getattr(session, "edumail_accepted", 0) + 1
        return "250 2.0.0 OK queued"


class _Smtp(SMTP):
    """aiosmtpd's server, able to refuse a connection in its greeting (a relay too busy: 421)."""

    owner: SmtpTestServer

    async def _handle_client(self) -> None:
        with self.owner.lock:
            refusal = self.owner.faults.greeting.take() if self.owner.faults.greeting else None
        if refusal:
            await self.push(refusal)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    def __init__(self, owner: SmtpTestServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owner = owner

    def factory(self) -> SMTP:
        server = _Smtp(self.handler, **self.SMTP_kwargs)
        server.owner = self.owner
        return server


class SmtpTestServer:
    """aiosmtpd on 127.0.0.1:<free port>; see the module docstring for the faults."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.faults = _Faults()
        self.delay = 0.0
        self.delay_mail = 0.0
        self.max_per_connection: int | None = None
        self.pipelining = True
        self.accepted_rcpt: list[str] = []  # every RCPT TO accepted, in order: a mail on the wire is here first
        self.connections = 0
        self._credentials: tuple[str, str] | None = None
        self.host = "127.0.0.1"
        self.port = free_port()
        self.controller = _Controller(
            self,
            handler=_Handler(self),
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            auth_required=False,
            decode_data=False,
            data_size_limit=0,
        )

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> SmtpTestServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.accepted_rcpt.clear()
            self.faults = _Faults()
            self.connections = 0
        self.delay = 0.0
        self.delay_mail = 0.0
        self.max_per_connection = None
        self.pipelining = True
        self._credentials = None

    # --- faults --------------------------------------------------------------------

    def refuse(self, address: str, reply: str, times: int | None = None) -> None:
        with self.lock:
            self.faults.rcpt[address.lower()] = _Fault(reply, times)

    def greet(self, reply: str, times: int | None = None) -> None:
        with self.lock:
            self.faults.greeting = _Fault(reply, times)

    def reply_to_ehlo(self, reply: str, times: int | None = None) -> None:
        with self.lock:
            self.faults.ehlo = _Fault(reply, times)

    def reply_to_mail(self, reply: str, times: int | None = None, after: int = 0) -> None:
        with self.lock:
            self.faults.mail = _Fault(reply, times, after)

    def reply_to_data(self, reply: str, times: int | None = None) -> None:
        with self.lock:
            self.faults.data = _Fault(reply, times)

    def drop_in_data(self, times: int = 1) -> None:
        with self.lock:
            self.faults.drops = times

    def require_auth(self, user: str, password: str) -> None:
        self._credentials = (user, password)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self._credentials is None:
            return AuthResult(success=False, handled=False)
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == self._credentials, handled=False)

    # --- reading back -----------------------------------------------------------------

    def recipients(self) -> list[str]:
        with self.lock:
            return [rcpt for m in self.messages for rcpt in m.rcpt_tos]

    def parsed(self) -> list[Message]:
        with self.lock:
            return [m.message for m in self.messages]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Until `count` mails arrived (for tests driving another process)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return True
            time.sleep(0.01)
        return False

    def settings_yaml(
        self, *, concurrency: int = 1, rate_per_minute: int = 0, username: str | None = None, timeout: int = 10
    ) -> str:
        """An `smtp:` section (plus `transport: smtp`) pointing at this server."""
        lines = [
            "transport: smtp",
            "smtp:",
            f"  host: {self.host}",
            f"  port: {self.port}",
            "  security: none",
            f"  concurrency: {concurrency}",
            f"  rate_per_minute: {rate_per_minute}",
            f"  timeout: {timeout}",
        ]
        if username:
            lines.append(f"  username: {username}")
        return "\n".join(lines) + "\n"


_shared: SmtpTestServer | None = None


def shared_server() -> SmtpTestServer:
    """One server per test process, started on first use (stopped at exit)."""
    global _shared
    if _shared is None:
        _shared = SmtpTestServer().start()
        atexit.register(_shared.stop)
    return _shared


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A started test SMTP server, cleared of messages and faults for each test."""
    server = shared_server()
    server.reset()
    yield server
    server.reset()
