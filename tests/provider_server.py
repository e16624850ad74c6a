"""A stand-in for a provider's HTTP API on 127.0.0.1: records each request, answers from a script.

Each test scripts the answers the provider's documentation shows (2xx, 429
with Retry-After, 5xx, its error bodies); a request that lacks the documented
authentication gets the provider's 401, as the real API would answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stall: bool = False  # send the status line and part of the body, then hang (a crash test kills the client)


@dataclass
class ProviderServer:
    authorized: Callable[[dict[str, str]], bool] = lambda headers: True
    ok: Reply = field(default_factory=lambda: Reply(200, {}))
    unauthorized: Reply = field(default_factory=lambda: Reply(401, {"message": "unauthorized"}))
    script: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, seen: Seen) -> Reply:
        self.seen.append(seen)
        if not self.authorized(seen.headers):
            return self.unauthorized
        return self.script.pop(0) if self.script else self.ok


def _handler(server: ProviderServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server.answer(Seen(self.command, self.path, headers, body))
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data) + (64 if reply.stall else 0)))
            self.end_headers()
            self.wfile.write(data)
            if reply.stall:
                self.wfile.flush()
                server.stalled.set()
                server.release.wait(30)

        do_GET = do_POST = _any

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        httpd.shutdown()
        httpd.server_close()
