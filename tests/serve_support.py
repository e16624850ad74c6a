"""`edumail serve` as a real process with the environment a test chooses (keys, erasure tests)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)


def call(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"User-Agent": BROWSER, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def one_click(port: int, path: str) -> int:
    status, _ = call(
        port,
        "POST",
        path,
        b"List-Unsubscribe=One-Click",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status


@contextmanager
def serving(root: Path, port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`edumail serve` on 127.0.0.1:port for the project at root, once /healthz answers; stopped after."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    full.update(EDUMAIL_PROJECT=str(root), **(env or {}))
    command = [sys.executable, "-m", "edumail", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited: {process.communicate()[1].decode()}")
            try:
                if call(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling the port until it answers
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def output(process: subprocess.Popen[bytes]) -> str:
    """Everything the (stopped) process printed."""
    out, err = process.communicate(timeout=15)
    return out.decode() + err.decode()
