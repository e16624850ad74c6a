"""`contacts forget` at size (issue 13 point 11): the address searched in every text column, the WAL truncated.

    python bench/forget.py [--contacts 20000] [--events 10] [--mails 5] [--outbox 2000]

Builds a project whose database holds N contacts, each with --events events (data JSON) and --mails sent
mails (context JSON), and --outbox .eml files in outbox/new; then times one `edumail contacts forget` in
its own process (wall-clock, start-up included), once on a database created with secure_delete on (no
rebuild), once on one marked as written by an older edumail (the one-time VACUUM).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edumail.store import Store  # noqa: E402

SETTINGS = "sender:\n  name: Centre de formation Exemple\n  email: contact@centre.example\ntimezone: Europe/Paris\n"
STAMP = "2026-11-10T09:00:00.000000Z"


def build(root: Path, contacts: int, events: int, mails: int, outbox: int) -> None:
    root.mkdir(parents=True)
    (root / "edumail.yaml").write_text(SETTINGS, encoding="utf-8")
    with Store(root / "edumail.db") as store, store.transaction():
        for i in range(contacts):
            fields = json.dumps({"ville": "Lyon", "telephone": f"06{i:08d}"})
            cid = store.execute(
                "INSERT INTO contacts (email, first_name, last_name, fields, consent, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'opted_in', ?, ?)",
                (f"person{i}@example.fr", f"Prenom{i}", f"Nom{i}", fields, STAMP, STAMP),
            ).lastrowid
            for e in range(events):
                store.execute(
                    "INSERT INTO events (contact_id, name, at, recorded_at, data, source)"
                    " VALUES (?, ?, ?, ?, ?, 'cli')",
                    (cid, "visite", STAMP, STAMP, json.dumps({"page": f"/formations/{e}", "note": "x" * 80})),
                )
            for m in range(mails):
                store.execute(
                    "INSERT INTO mails (message_id, contact_id, template, purpose, context, state, not_before,"
                    " queued_at, sent_at, subject) VALUES (?, ?, 'lettre', 'marketing', ?, 'sent', ?, ?, ?, ?)",
                    (f"<{cid}-{m}@centre.example>", cid, json.dumps({"event": {"n": m}}), STAMP, STAMP, STAMP, "Hi"),
                )
    new = root / "outbox" / "new"
    new.mkdir(parents=True)
    for i in range(outbox):
        body = f"To: <person{i}@example.fr>\nSubject: Lettre\n\n" + "Bonjour, " * 400
        (new / f"{i}-0.eml").write_text(body, encoding="utf-8")


def forget(root: Path, address: str) -> float:
    env = {**os.environ, "EDUMAIL_SECRET": "bench-secret"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "edumail", "--project", str(root), "contacts", "forget", address, "--yes"],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"forget failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--mails", type=int, default=5)
    parser.add_argument("--outbox", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        root = Path(base) / "centre"
        build(root, args.contacts, args.events, args.mails, args.outbox)
        size = (root / "edumail.db").stat().st_size / 1e6
        print(
            f"{args.contacts} contacts, {args.contacts * args.events} events, {args.contacts * args.mails} mails,"
            f" {args.outbox} outbox files; edumail.db {size:.0f} MB"
        )
        print(f"forget (database clean from the start): {forget(root, 'person7@example.fr'):.2f} s")
        with Store(root / "edumail.db") as store:
            store.execute("DELETE FROM meta WHERE key = 'erasure.clean'")
        print(f"forget (older database: one-time VACUUM): {forget(root, 'person8@example.fr'):.2f} s")
        print(f"forget (after it): {forget(root, 'person9@example.fr'):.2f} s")


if __name__ == "__main__":
    main()
