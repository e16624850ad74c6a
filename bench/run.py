"""Every benchmark of edumail in one run, printed as one table.

    python bench/run.py            # the figures the issues name (several minutes)
    python bench/run.py --quick    # smaller sizes, for a first look
    python bench/run.py --json     # the raw figures
    python bench/run.py --markdown # the table for the README
    python bench/run.py --repeat 1 # each import and send once

Each row: the figure, its target, what was measured, and for sending, the
ratios to the baselines measured in the same run: Python's bare smtplib loop,
the mailmerge CLI (the peer) and Postfix's C client smtp-source (the floor).
Start-up and imports are timed around whole `edumail` processes. The imports
and the sends run `--repeat` times (3): the fastest run is the figure, the
median of the runs is shown beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
# Runs of each import and of each send (edumail and the bare loop, taking turns): the fastest is the figure,
# the median is shown beside it. A neighbour on a shared machine only ever slows a run down.
REPEAT = 3


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _timed(label: str, call: Any) -> dict[str, Any]:
    print(f"running {label} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        figures = call()
    except Exception as exc:  # a benchmark that fails is a row that says so, not a lost table
        figures = {"error": f"{type(exc).__name__}: {exc}"}
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    return figures


def measure(quick: bool = False, repeat: int = REPEAT) -> dict[str, dict[str, Any]]:
    sizes = (
        {
            "render": 2_000,
            "contacts": 10_000,
            "events": 100_000,
            "event_rows": 20_000,
            "due": 2_000,
            "send": 2_000,
            "peer": 500,
            "memory": 5_000,
            "serve": 3.0,
        }
        if quick
        else {
            "render": 10_000,
            "contacts": 100_000,
            "events": 1_000_000,
            "event_rows": 200_000,
            "due": 10_000,
            "send": 10_000,
            "peer": 2_000,
            "memory": 100_000,
            "serve": 10.0,
        }
    )
    return {
        "sizes": sizes,
        "repeat": repeat,
        "startup": _timed(
            "startup", lambda: _load("startup").measure(sizes["contacts"], sizes["event_rows"], repeat=repeat)
        ),
        "render": _timed("render", lambda: _load("render").measure(sizes["render"])),
        "engine": _timed("engine", lambda: _load("engine").measure(sizes["contacts"], sizes["events"], sizes["due"])),
        "send": _timed(
            "send",
            lambda: _load("send").measure(sizes["send"], peer_n=sizes["peer"], memory_n=sizes["memory"], repeat=repeat),
        ),
        "serve": _timed("serve", lambda: _load("serve").measure(seconds=sizes["serve"])),
    }


def _get(figures: dict[str, Any], *path: str) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


HEADER = ("figure", "target", "measured", "x bare loop", "x mailmerge", "x smtp-source")


def _num(value: Any, unit: str, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f} {unit}".strip()


def _ratio(value: Any, base: Any) -> str:
    """`value / base` as `1.23x`, blank when either is missing."""
    if not value or not base:
        return ""
    return f"{value / base:.2f}x"


def _fastest_of(result: dict[str, Any]) -> str:
    """What the repeated rows' labels add: `, fastest of 3` (nothing for a single run)."""
    return f", fastest of {result['repeat']}" if result.get("repeat", 1) > 1 else ""


def _best(figure: Any, key: str, unit: str) -> str:
    """The fastest run's figure, and the median of the runs when there were several."""
    text = _num(_get(figure, key), unit)
    if isinstance(figure, dict) and len(figure.get("rates", ())) > 1:
        text += f" (median {_num(figure['median'], unit)})"
    return text


def _cpu(per_mail: Any) -> str:
    if not per_mail:
        return "n/a"
    return f"{per_mail['total']} ms ({per_mail['main']} + {per_mail['workers']} + {per_mail['sink']})"


def _send_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Each send figure with its ratios to the baselines measured in the same run."""
    sizes, send = result["sizes"], result["send"]
    bare = _get(send, "bare_loop", "mails_per_s")
    merge = _get(send, "mailmerge", "mails_per_s")
    source = _get(send, "smtp_source_4", "mails_per_s")

    def rates(value: Any, *, peer: Any = None) -> tuple[str, str, str]:
        return _ratio(value, bare), _ratio(peer if peer is not None else value, merge), _ratio(value, source)

    edumail = _get(send, "edumail", "mails_per_s")
    same_size = _get(send, "edumail_peer_n", "mails_per_s")
    small = _get(send, "small", "edumail", "mails_per_s")
    small_bare = _get(send, "small", "bare_loop", "mails_per_s")
    runs = _fastest_of(result)
    table = [
        (
            f"send: {sizes['send']:,} newsletter mails with tracking, edumail{runs}",
            ">= 1,000 mails/s, >= 2x bare",
            _best(_get(send, "edumail"), "mails_per_s", "mails/s"),
            *rates(edumail, peer=same_size),
        ),
        (
            "send: CPU a newsletter mail: edumail's process + its workers + the sink",
            "",
            _cpu(_get(send, "edumail", "cpu_ms_per_mail")),
            "",
            "",
            "",
        ),
        (
            f"send: bare smtplib loop (EmailMessage), same mails{runs}",
            "",
            _best(_get(send, "bare_loop"), "mails_per_s", "mails/s"),
            "1.00x",
            "",
            "",
        ),
        (f"send: mailmerge, {sizes['peer']:,} mails (peer)", "", _num(merge, "mails/s"), _ratio(merge, bare), "", ""),
        ("send: smtp-source (C), same sessions (the floor)", "", _num(source, "mails/s"), _ratio(source, bare), "", ""),
        (
            f"send: {_get(send, 'small', 'n') or 0:,} mails of 1 KB, edumail{runs}",
            ">= 1.2x bare",
            _best(_get(send, "small", "edumail"), "mails_per_s", "mails/s"),
            _ratio(small, small_bare),
            "",
            _ratio(small, source),
        ),
        (
            f"send: 1 KB mails, bare smtplib loop{runs}",
            "",
            _best(_get(send, "small", "bare_loop"), "mails_per_s", "mails/s"),
            "1.00x",
            "",
            "",
        ),
        (
            f"send: peak memory, {_get(send, 'memory', 'n') or 0:,}-mail send, with its worker processes",
            "<= 150 MB",
            _num(_get(send, "memory", "tree_peak_mb"), "MB"),
            "",
            "",
            "",
        ),
        ("send: peak memory, of which the main process", "", _num(_get(send, "memory", "peak_mb"), "MB"), "", "", ""),
        (
            "send: 50 ms server, concurrency 1 -> 4",
            "about 4x",
            _num(_get(send, "slow", "concurrency_4", "mails_per_s"), "mails/s", 1),
            "",
            "",
            "",
        ),
    ]
    return table


def rows(result: dict[str, dict[str, Any]]) -> list[tuple[str, ...]]:
    """(figure, target, measured, x bare loop, x mailmerge, x smtp-source) for the table."""
    sizes = result["sizes"]
    startup, render, engine, serve = result["startup"], result["render"], result["engine"], result["serve"]
    size = f"{sizes['contacts']:,} contacts, {sizes['events']:,} events"
    runs = _fastest_of(result)
    table: list[tuple[str, ...]] = [
        (
            "edumail --help (whole process, median of 9)",
            "<= 0.15 s",
            _num(_get(startup, "help_seconds"), "s", 3) + f" (CPU {_num(_get(startup, 'help_cpu_seconds'), 's', 3)})",
            "",
            "",
            "",
        ),
        (
            f"contacts import, {sizes['contacts']:,} rows (whole process{runs})",
            ">= 30,000 rows/s",
            _best(_get(startup, "contacts_import"), "rows_per_s", "rows/s"),
            "",
            "",
            "",
        ),
        (
            f"events import, {sizes['event_rows']:,} rows (whole process{runs})",
            ">= 50,000 rows/s",
            _best(_get(startup, "events_import"), "rows_per_s", "rows/s"),
            "",
            "",
            "",
        ),
        (
            f"run --once, nothing due, {size} (whole process, median of 5)",
            "<= 0.30 s",
            _num(_get(engine, "nothing_due_cli"), "s", 2)
            + f" (CPU {_num(_get(engine, 'nothing_due_cli_cpu'), 's', 2)})",
            "",
            "",
            "",
        ),
        ("  of which the run itself", "", _num(_get(engine, "nothing_due", "seconds"), "s", 2), "", "", ""),
        (
            f"engine: {sizes['due']:,} due steps, --dry-run",
            "< 10 s",
            _num(_get(engine, "due_dry_run", "seconds"), "s", 2),
        )
        + ("", "", ""),
        (
            f"engine: {sizes['due']:,} due steps, queued",
            "",
            _num(_get(engine, "due_real", "seconds"), "s", 2),
            "",
            "",
            "",
        ),
        ("engine: peak memory", "< 300 MB", _num(_get(engine, "peak_mb"), "MB"), "", "", ""),
        (
            f"render: {sizes['render']:,} library mails",
            ">= 2,000 mails/s",
            _num(_get(render, "mails_per_second"), "mails/s"),
            "",
            "",
            "",
        ),
        ("render: cost per mail", "", _num(_get(render, "ms_per_mail"), "ms", 3), "", "", ""),
    ]
    table += _send_rows(result)
    table.append(
        (
            "serve: open pixel, real server",
            ">= 500 req/s",
            _num(_get(serve, "requests_per_second"), "req/s"),
            "",
            "",
            "",
        )
    )
    for name in ("startup", "render", "engine", "send", "serve"):
        if "error" in result[name]:
            table.append((f"{name}: FAILED", "", result[name]["error"][:80], "", "", ""))
    return table


def markdown(table: list[tuple[str, ...]]) -> str:
    """The table as Markdown, for the README's performance section."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller sizes, for a first look.")
    parser.add_argument("--json", action="store_true", help="Print the raw figures as JSON.")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown (README).")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="Runs of each import and send; the fastest counts.")
    args = parser.parse_args()
    result = measure(quick=args.quick, repeat=args.repeat)
    saved = HERE / "last-run.json"  # the raw figures of the last run, for a second look (not committed)
    saved.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    table = rows(result)
    if args.markdown:
        print(markdown(table))
        return
    widths = [max(len(r[i]) for r in [*table, HEADER]) for i in range(len(HEADER))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*HEADER))
    print(line.format(*("-" * w for w in widths)))
    for row in table:
        print(line.format(*row))


if __name__ == "__main__":
    main()
