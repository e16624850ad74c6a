"""Sessions at size (issue 14): a moved session, and a year's Qualiopi audit.

    python bench/sessions.py [--learners 200] [--sessions 500] [--per-session 20]

Figures (each a fresh `edumail` process, wall-clock, target < 2 s each):
  - `sessions set` moving a session of 200 learners (records session_changed for each);
  - the next `run --once` re-timing their 200 journeys (delivery has nothing due);
  - `audit --from --until --out` over a year: 500 sessions, 10,000 learners,
    30,000 sent mails with their events, evaluations for two thirds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = "sender:\n  name: Centre de formation Exemple\n  email: contact@centre.example\ntimezone: Europe/Paris\n"
SEQUENCE = """\
name: session
purpose: service
trigger: {event: inscription_finalisee}
steps:
  - id: convocation
    at: session.start - 7d
    time: "09:00"
    send: rappel-session
  - id: rappel
    at: session.start - 24h
    send: rappel-session
"""


def edumail(root: Path, *args: str, now: str) -> float:
    """Run one edumail command in its own process; its wall-clock time."""
    env = {**os.environ, "EDUMAIL_NOW": now, "EDUMAIL_SECRET": "bench-secret"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "edumail", "--project", str(root), *args], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"edumail {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def project(base: Path) -> Path:
    root = base / "centre"
    subprocess.run([sys.executable, "-m", "edumail", "init", str(root)], check=True, capture_output=True)
    (root / "edumail.yaml").write_text(SETTINGS, encoding="utf-8")
    for path in (root / "sequences").glob("*.yaml"):
        path.unlink()
    (root / "sequences" / "session.yaml").write_text(SEQUENCE, encoding="utf-8")
    return root


def move(base: Path, learners: int) -> dict[str, float]:
    root = project(base)
    (root / "s.csv").write_text("id;formation;debut;fin\nEXCEL-1;Excel;14/12/2026 09:30;15/12/2026 17:00\n")
    edumail(root, "sessions", "import", str(root / "s.csv"), now="2026-11-01T09:00")
    edumail(root, "run", "--once", now="2026-11-01T09:01")
    rows = "email,name,session\n" + "".join(
        f"l{i}@example.org,inscription_finalisee,EXCEL-1\n" for i in range(learners)
    )
    (root / "e.csv").write_text(rows, encoding="utf-8")
    edumail(root, "events", "import", str(root / "e.csv"), now="2026-11-02T09:00")
    edumail(root, "run", "--once", now="2026-11-02T09:01")
    moved = edumail(
        root, "sessions", "set", "EXCEL-1", "start=2027-01-11T09:30", "end=2027-01-12T17:00", now="2026-11-03T09:00"
    )
    run = edumail(root, "run", "--once", now="2026-11-03T09:01")
    return {"sessions set (200 learners)": moved, "next run --once (re-times 200 journeys)": run}


def year(base: Path, count: int, per: int) -> dict[str, float]:
    from edumail import clock
    from edumail.store import Store

    root = project(base)
    store = Store(root / "edumail.db")
    stamp = clock.to_db(datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    with store.transaction():
        sessions, contacts, events, journeys, mails = [], [], [], [], []
        for s in range(count):
            begin = start + timedelta(hours=17 * s)
            sessions.append(
                (
                    f"S-{s:04d}",
                    f"Formation {s % 40}",
                    clock.to_db(begin),
                    clock.to_db(begin + timedelta(hours=8)),
                    stamp,
                    stamp,
                )
            )
        store.conn.executemany(
            "INSERT INTO sessions (id, formation, start_at, end_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            sessions,
        )
        for c in range(count * per):
            contacts.append((c + 1, f"learner{c}@example.org", f"Prénom{c}", f"Nom{c}", stamp, stamp))
        store.conn.executemany(
            "INSERT INTO contacts (id, email, first_name, last_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            contacts,
        )
        event_id = mail_id = 0
        for c in range(count * per):
            sid, begin = sessions[c // per][0], sessions[c // per][2]
            event_id += 1
            data = json.dumps({"session": sid})
            events.append((event_id, c + 1, "inscription_finalisee", stamp, stamp, data, None, sid))
            journeys.append((c + 1, "session", c + 1, f"session:{sid}", event_id, "service", stamp, stamp, sid))
            for step in ("convocation", "rappel", "evaluation"):
                mail_id += 1
                mails.append(
                    (
                        mail_id,
                        f"<{mail_id}@centre.example>",
                        c + 1,
                        step,
                        "service",
                        c + 1,
                        step,
                        "session",
                        "sent",
                        begin,
                        begin,
                        begin,
                    )
                )
                event_id += 1
                events.append((event_id, c + 1, "email_sent", begin, begin, "{}", mail_id, None))
                if mail_id % 3 == 0:
                    event_id += 1
                    events.append((event_id, c + 1, "email_opened", begin, begin, "{}", mail_id, None))
            if c % 3:
                event_id += 1
                events.append(
                    (
                        event_id,
                        c + 1,
                        "evaluation_completee",
                        begin,
                        begin,
                        json.dumps({"session": sid, "note": c % 11}),
                        None,
                        sid,
                    )
                )
        store.conn.executemany(
            "INSERT INTO events (id, contact_id, name, at, recorded_at, data, mail_id, session_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        store.conn.executemany(
            "INSERT INTO journeys (id, sequence, contact_id, trigger_key, trigger_event_id, purpose, started_at,"
            " last_step_at, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            journeys,
        )
        store.conn.executemany(
            "INSERT INTO mails (id, message_id, contact_id, template, purpose, journey_id, step_id, sequence, state,"
            " not_before, queued_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            mails,
        )
    store.close()
    took = edumail(
        root,
        "audit",
        "--from",
        "2026-01-01",
        "--until",
        "2027-01-01",
        "--out",
        str(base / "preuves"),
        now="2027-01-02T09:00",
    )
    size = (base / "preuves" / "audit.csv").stat().st_size
    return {f"audit --from --until ({count} sessions, {count * per} learners, csv {size // 1024} KB)": took}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--per-session", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = {
            **move(Path(tmp) / "move", args.learners),
            **year(Path(tmp) / "year", args.sessions, args.per_session),
        }
    for name, seconds in figures.items():
        print(f"{name:<75} {seconds:6.2f} s  (target < 2 s)")


if __name__ == "__main__":
    main()
