"""The sequence engine at size: `edumail run --once` with 100,000 contacts,
10 sequences and 1,000,000 events of history.

    python bench/engine.py [--contacts 100000] [--events 1000000] [--due 10000]

Figures (each run is a fresh Python process doing what `edumail run --once`
does: the time of the run itself, the process's whole life, its peak memory):
  - nothing due: a run right after the sequences were first seen (target < 1 s);
  - N steps due, `--dry-run` (target < 10 s);
  - N steps due, for real (queued in the outbox; delivery excluded: the file
    transport writing 10,000 .eml files is delivery's figure, not the engine's);
  - peak memory of those runs (target < 300 MB).
The work follows what is due, not the history: SQL selects through indexes
(events_name for new events, journeys_due for due steps).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edumail import clock
from edumail.store import Store

REPO = Path(__file__).resolve().parents[1]
SETTINGS = "sender:\n  name: Centre de formation Exemple\n  email: contact@centre.example\ntimezone: Europe/Paris\n"
EXTRA_SEQUENCES = {
    "bench-relance": (
        "trigger: {event: bench_start}\nsteps:\n  - wait: 1d\n    send: relance-inscription\n"
        "  - wait: 2d\n    if: {not_opened: relance-inscription}\n    tag: relance-non-lue\n"
    ),
    "leads-webinar": "trigger:\n  segment: {stage: lead, tags: [webinar]}\nsteps:\n  - send: bienvenue\n",
    "reveil": "trigger: {inactive: 365d}\nsteps:\n  - send: inactivite\n",
    "lettre": (
        'reenter: true\ntrigger:\n  schedule: "0 9 * * mon"\naudience: {tags: [lettre]}\nsteps:\n  - send: newsletter\n'
    ),
    "vip": "trigger:\n  event: tag_added\n  where: {tag: vip}\nsteps:\n  - notify: equipe@centre.example\n",
    "engages": "trigger: {event: email_clicked}\nexit_on: [unsubscribed]\nsteps:\n  - wait: 2d\n    tag: engage\n",
}
EVENT_NAMES = [
    "email_sent",
    "email_opened",
    "email_clicked",
    "page_vue",
    "inscription_commencee",
    "inscription_finalisee",
    "demande_information",
    "replied",
    "tag_added",
    "devis",
]
STAGES = ["prospect", "lead", "inscrit", "client", "perdu"]
START = "2026-12-01T08:00:00+01:00"  # a Tuesday: the Monday cron does not fire during the bench


def _project(root: Path) -> None:
    (root / "edumail.yaml").write_text(SETTINGS, encoding="utf-8")
    (root / ".edumail-secret").write_text("bench-secret\n", encoding="utf-8")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "sequences").mkdir()
    for path in (REPO / "sequences").glob("*.yaml"):
        shutil.copy(path, root / "sequences" / path.name)
    for name, text in EXTRA_SEQUENCES.items():
        (root / "sequences" / f"{name}.yaml").write_text(text, encoding="utf-8")


def _history(root: Path, contacts: int, events: int, seed: int = 7) -> None:
    """Contacts, tags and a year of events, written with executemany."""
    rng = random.Random(seed)
    start = clock.parse_iso(START, clock.UTC)
    year = 365 * 86400
    with Store(root / "edumail.db") as store, store.transaction():
        store.execute("PRAGMA cache_size = -400000")  # 400 MB of page cache: random index inserts stay in memory
        store.conn.executemany(
            "INSERT INTO contacts (id, email, first_name, stage, consent, consent_basis, fields,"
            " created_at, updated_at,"
            " last_inbound_at) VALUES (?, ?, ?, ?, 'opted_in', 'opt_in', ?, ?, ?, ?)",
            (
                (
                    i,
                    f"contact{i}@example.org",
                    f"Prénom{i}",
                    rng.choice(STAGES),
                    json.dumps({"ville": rng.choice(["Lyon", "Paris", "Lille"])}),
                    clock.to_db(start.replace(year=2025)),
                    clock.to_db(start.replace(year=2025)),
                    clock.to_db(start - clock.parse_duration(f"{rng.randrange(1, 300)}d")),
                )
                for i in range(1, contacts + 1)
            ),
        )
        store.conn.executemany(
            "INSERT OR IGNORE INTO tags (contact_id, tag, added_at) VALUES (?, ?, ?)",
            (
                (
                    rng.randrange(1, contacts + 1),
                    rng.choice(["webinar", "lettre", "vip", "client"]),
                    "2025-06-01T00:00:00.000000Z",
                )
                for _ in range(contacts)
            ),
        )
        store.conn.executemany(
            "INSERT INTO events (contact_id, name, at, recorded_at, data, source) VALUES (?, ?, ?, ?, ?, 'import')",
            (
                (rng.randrange(1, contacts + 1), rng.choice(EVENT_NAMES), stamp, stamp, "{}")
                for stamp in (
                    clock.to_db(start - clock.parse_duration(f"{rng.randrange(60, year)}s")) for _ in range(events)
                )
            ),
        )


def _due_events(root: Path, count: int, at: str) -> None:
    """`count` contacts start the bench sequence at `at`."""
    stamp = clock.to_db(clock.parse_iso(at, clock.UTC))
    with Store(root / "edumail.db") as store, store.transaction():
        store.conn.executemany(
            "INSERT INTO events (contact_id, name, at, recorded_at, data, source) VALUES (?,"
            " 'bench_start', ?, ?, '{}', 'bench')",
            ((cid, stamp, stamp) for cid in range(1, count + 1)),
        )


_RUN = """
import json, sys, time
started = time.perf_counter()
from edumail import clock, project, runner
imported = time.perf_counter()
dry_run, deliver = sys.argv[1] == "dry", sys.argv[2] == "deliver"
summary = runner.run_once(project.load(), now=clock.now(), dry_run=dry_run, deliver=deliver)
done = time.perf_counter()
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
steps = summary.engine.count("sent")
print(json.dumps({"imports": imported - started, "run": done - imported, "steps": steps, "hwm_kb": hwm}))
"""


def _run(root: Path, at: str, *, dry_run: bool = False, deliver: bool = True) -> dict[str, Any]:
    """One process doing what `edumail run --once` does: its run time, its whole life, its peak memory."""
    env = {**os.environ, "EDUMAIL_NOW": at, "EDUMAIL_PROJECT": str(root)}
    env.pop("EDUMAIL_SECRET", None)
    args = ["dry" if dry_run else "real", "deliver" if deliver else "engine"]
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _RUN, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    _, status, _ = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"run --once ({' '.join(args)}) failed:\n{output}")
    inside = json.loads(output.strip().splitlines()[-1])
    return {
        "seconds": round(inside["run"], 3),
        "process_seconds": round(time.perf_counter() - started, 3),
        "import_seconds": round(inside["imports"], 3),
        "steps": inside["steps"],
        # VmHWM: this process's own peak (ru_maxrss would count the parent's, carried over exec on Linux).
        "peak_mb": round(int(inside["hwm_kb"]) / 1024, 1),
    }


def _run_cli(root: Path, at: str, runs: int = 5) -> tuple[float, float]:
    """The real command, `edumail run --once`, timed around its whole process (start-up included):
    the median wall and CPU (user + sys) seconds of `runs` processes."""
    env = {**os.environ, "EDUMAIL_NOW": at, "EDUMAIL_PROJECT": str(root)}
    env.pop("EDUMAIL_SECRET", None)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edumail", "run", "--once"], env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return round(statistics.median(walls), 3), round(statistics.median(cpus), 3)


def _queued(root: Path) -> int:
    with Store(root / "edumail.db") as store:
        return int(store.scalar("SELECT COUNT(*) FROM mails WHERE sequence = 'bench-relance'") or 0)


def measure(
    contacts: int = 100_000, events: int = 1_000_000, due: int = 10_000, workdir: Path | None = None
) -> dict[str, Any]:
    """Build the project, time the runs; returns the figures (seconds, MB)."""
    base = Path(tempfile.mkdtemp(prefix="edumail-bench-engine-", dir=workdir))
    root = base / "centre"
    root.mkdir()
    try:
        _project(root)
        compileall.compile_dir(REPO / "edumail", quiet=1)  # bytecode, as an installed package has it
        started = time.perf_counter()
        # In a process of its own, so that this one stays small while it measures.
        generate = [
            sys.executable,
            __file__,
            "--generate",
            str(root),
            "--contacts",
            str(contacts),
            "--events",
            str(events),
        ]
        subprocess.run(generate, check=True)
        figures: dict[str, Any] = {
            "contacts": contacts,
            "events": events,
            "sequences": len(list((root / "sequences").glob("*.yaml"))),
            "generate_seconds": round(time.perf_counter() - started, 1),
        }
        figures["first_sight"] = _run(root, "2026-12-01T08:00:00+01:00")
        figures["nothing_due"] = _run(root, "2026-12-01T08:01:00+01:00")
        figures["nothing_due_cli"], figures["nothing_due_cli_cpu"] = _run_cli(root, "2026-12-01T08:01:30+01:00")
        _due_events(root, due, "2026-12-01T08:02:00+01:00")
        figures["enrol_due"] = _run(root, "2026-12-01T08:03:00+01:00")
        figures["due_steps"] = due
        figures["due_dry_run"] = _run(root, "2026-12-02T08:03:00+01:00", dry_run=True)
        assert _queued(root) == 0, "the dry run queued mail"
        figures["due_real"] = _run(root, "2026-12-02T08:03:00+01:00", deliver=False)
        figures["queued"] = _queued(root)
        figures["peak_mb"] = max(figures[k]["peak_mb"] for k in ("nothing_due", "enrol_due", "due_dry_run", "due_real"))
        figures["db_mb"] = round((root / "edumail.db").stat().st_size / 1e6, 1)
        return figures
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _history(args.generate, args.contacts, args.events)
        return
    figures = measure(args.contacts, args.events, args.due)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{figures['contacts']:,} contacts, {figures['events']:,} events, {figures['sequences']} sequences "
        f"(generated in {figures['generate_seconds']} s, database {figures['db_mb']} MB)"
    )
    rows = [
        ("first run (sequences first seen)", figures["first_sight"], None),
        ("run --once, nothing due", figures["nothing_due"], 1.0),
        (f"run --once, enrol {args.due:,}", figures["enrol_due"], None),
        (f"run --once --dry-run, {args.due:,} steps due", figures["due_dry_run"], 10.0),
        (f"run, {args.due:,} steps due (queued, no delivery)", figures["due_real"], 10.0),
    ]
    for label, figure, target in rows:
        verdict = "" if target is None else ("  ok" if figure["seconds"] < target else f"  OVER the {target} s target")
        print(
            f"  {label:<48} {figure['seconds']:>6.2f} s  (process {figure['process_seconds']:>5.2f} s)"
            f"  {figure['peak_mb']:>6.1f} MB{verdict}"
        )
    verdict = "ok" if figures["peak_mb"] < 300 else "OVER the 300 MB target"
    print(f"  peak memory {figures['peak_mb']} MB: {verdict}")
    print(
        f"  (a process spends {figures['nothing_due']['import_seconds']:.2f} s starting Python and importing edumail)"
    )
    print(
        f"  edumail run --once, nothing due, whole process: {figures['nothing_due_cli']:.3f} s,"
        f" CPU {figures['nothing_due_cli_cpu']:.3f} s (median of 5; target <= 0.30 s)"
    )


if __name__ == "__main__":
    main()
