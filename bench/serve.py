"""Open-pixel requests per second against a real `edumail serve` (uvicorn) process.

    python bench/serve.py [--seconds 10] [--clients 8] [--mails 2000]

A throw-away project with `--mails` sent mails; the server runs alone in a
subprocess; `--clients` threads each keep one HTTP/1.1 connection alive and
fetch pixels of random mails for `--seconds`. Every request records an
`email_opened` event (a write transaction), so this measures the whole path:
HTTP, token check, mail lookup, insert. Target: at least 500 requests/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from edumail import clock, events, tokens
from edumail.store import Store

SECRET = "bench-secret"
AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
SETTINGS = """\
sender:
  name: Centre de formation Exemple
  email: contact@centre.example
tracking:
  base_url: http://127.0.0.1:{port}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _project(root: Path, port: int, mails: int) -> list[int]:
    """A project with `mails` sent mails to as many contacts; returns the mail ids."""
    (root / "edumail.yaml").write_text(SETTINGS.format(port=port), encoding="utf-8")
    stamp = clock.to_db(clock.parse_iso("2026-11-02T09:00:00Z", clock.UTC))
    ids = []
    with Store(root / "edumail.db") as store, store.transaction():
        for i in range(mails):
            contact_id = store.insert_contact({"email": f"c{i}@example.org", "consent": events.OPTED_IN}, stamp)
            mail_id = store.enqueue_mail(
                message_id=f"<bench-{i}@centre.example>",
                template="offre",
                purpose=events.MARKETING,
                not_before=stamp,
                now=stamp,
                contact_id=contact_id,
            )
            assert mail_id
            store.mark_mail_sent(mail_id, stamp, "Offre", ["https://centre.example/"])
            ids.append(mail_id)
    return ids


def _wait_up(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"edumail serve exited: {process.communicate()[1].decode()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.05)  # polling the port until the server answers
    raise RuntimeError("edumail serve did not answer within 30 s")


def _client(
    port: int, paths: list[str], stop: threading.Event, counts: list[int], errors: list[int], slot: int
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rng = random.Random(slot)
    headers = {"User-Agent": AGENT}
    while not stop.is_set():
        conn.request("GET", rng.choice(paths), headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            counts[slot] += 1
        else:
            errors[slot] += 1
    conn.close()


def measure(seconds: float = 10.0, clients: int = 8, mails: int = 2000, warmup: float = 1.0) -> dict[str, object]:
    """Run the benchmark; returns requests/s and what was measured."""
    with tempfile.TemporaryDirectory(prefix="edumail-bench-") as tmp:
        root = Path(tmp)
        port = _free_port()
        ids = _project(root, port, mails)
        paths = [tokens.open_url("", SECRET.encode(), mail_id) for mail_id in ids]
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
        env.update(EDUMAIL_SECRET=SECRET, EDUMAIL_PROJECT=str(root), EDUMAIL_NOW="2026-11-02T12:00:00Z")
        process = subprocess.Popen(
            [sys.executable, "-m", "edumail", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_up(port, process)
            stop = threading.Event()
            counts, errors = [0] * clients, [0] * clients
            threads = [
                threading.Thread(target=_client, args=(port, paths, stop, counts, errors, i), daemon=True)
                for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            time.sleep(warmup)  # let connections and threads settle before counting
            before, started = sum(counts), time.perf_counter()
            time.sleep(seconds)  # the measuring window
            done, elapsed = sum(counts) - before, time.perf_counter() - started
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        finally:
            process.terminate()
            process.wait(timeout=15)
        with Store(root / "edumail.db") as store:
            recorded = int(store.scalar("SELECT COUNT(*) FROM events WHERE name = 'email_opened'") or 0)
    return {
        "requests_per_second": round(done / elapsed, 1),
        "requests": sum(counts),
        "errors": sum(errors),
        "events_recorded": recorded,
        "seconds": round(elapsed, 2),
        "clients": clients,
        "mails": mails,
        "cpus": os.cpu_count(),
        "target": 500,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--mails", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(measure(args.seconds, args.clients, args.mails), indent=2))


if __name__ == "__main__":
    main()
