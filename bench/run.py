"""Every benchmark of edumail in one run, printed as one table.

    python bench/run.py            # the figures the issues name (several minutes)
    python bench/run.py --quick    # smaller sizes, for a first look
    python bench/run.py --json     # the raw figures

Each row: the figure, its target, what was measured, and where an issue asks
for it, the ratio against the baseline measured in the same run.
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


def measure(quick: bool = False) -> dict[str, dict[str, Any]]:
    sizes = (
        {"render": 2_000, "contacts": 10_000, "events": 100_000, "due": 2_000, "send": 2_000, "peer": 500, "serve": 3.0}
        if quick
        else {
            "render": 10_000,
            "contacts": 100_000,
            "events": 1_000_000,
            "due": 10_000,
            "send": 10_000,
            "peer": 2_000,
            "serve": 10.0,
        }
    )
    return {
        "sizes": sizes,
        "render": _timed("render", lambda: _load("render").measure(sizes["render"])),
        "engine": _timed("engine", lambda: _load("engine").measure(sizes["contacts"], sizes["events"], sizes["due"])),
        "send": _timed("send", lambda: _load("send").measure(sizes["send"], peer_n=sizes["peer"])),
        "serve": _timed("serve", lambda: _load("serve").measure(seconds=sizes["serve"])),
    }


def _get(figures: dict[str, Any], *path: str) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def rows(result: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(figure, target, measured, ratio) for the table."""
    sizes = result["sizes"]
    render, engine, send, serve = result["render"], result["engine"], result["send"], result["serve"]

    def num(value: Any, unit: str, digits: int = 0) -> str:
        return "n/a" if value is None else f"{value:,.{digits}f} {unit}".strip()

    def ratio(value: Any) -> str:
        return "" if value is None else f"{value:.2f}x"

    table = [
        (
            f"render: {sizes['render']:,} library mails",
            ">= 2,000 mails/s",
            num(_get(render, "mails_per_second"), "mails/s"),
            "",
        ),
        ("render: cost per mail", "", num(_get(render, "ms_per_mail"), "ms", 3), ""),
    ]
    for stage, ms in (_get(render, "stages_ms") or {}).items():
        table.append((f"  stage {stage}", "", num(ms, "ms", 3), ""))
    size = f"{sizes['contacts']:,} contacts, {sizes['events']:,} events"
    table += [
        (f"engine: run --once, nothing due ({size})", "< 1 s", num(_get(engine, "nothing_due", "seconds"), "s", 2), ""),
        (
            f"engine: {sizes['due']:,} due steps, --dry-run",
            "< 10 s",
            num(_get(engine, "due_dry_run", "seconds"), "s", 2),
            "",
        ),
        (f"engine: {sizes['due']:,} due steps, queued", "", num(_get(engine, "due_real", "seconds"), "s", 2), ""),
        ("engine: peak memory", "< 300 MB", num(_get(engine, "peak_mb"), "MB"), ""),
        (
            f"send: {sizes['send']:,} mails end to end, edumail",
            "",
            num(_get(send, "edumail", "mails_per_s"), "mails/s"),
            "",
        ),
        (
            "send: bare smtplib loop (EmailMessage)",
            "edumail >= 1.5x",
            num(_get(send, "bare_loop", "mails_per_s"), "mails/s"),
            ratio(_get(send, "x_bare_loop")),
        ),
        (
            f"send: mailmerge, {sizes['peer']:,}-mail campaign (peer)",
            "edumail >= 2x",
            num(_get(send, "mailmerge", "mails_per_s"), "mails/s"),
            ratio(_get(send, "x_mailmerge")),
        ),
        (
            "send: smtp-source (C), same sessions",
            "the floor",
            num(_get(send, "smtp_source_4", "mails_per_s"), "mails/s"),
            ratio(_get(send, "of_smtp_source_4")),
        ),
        (
            "send: 50 ms server, concurrency 1",
            "",
            num(_get(send, "slow", "concurrency_1", "mails_per_s"), "mails/s", 1),
            "",
        ),
        (
            "send: 50 ms server, concurrency 4",
            "about 4x",
            num(_get(send, "slow", "concurrency_4", "mails_per_s"), "mails/s", 1),
            ratio(_get(send, "slow", "scaling")),
        ),
        ("serve: open pixel, real server", ">= 500 req/s", num(_get(serve, "requests_per_second"), "req/s"), ""),
    ]
    for name in ("render", "engine", "send", "serve"):
        if "error" in result[name]:
            table.append((f"{name}: FAILED", "", result[name]["error"][:80], ""))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller sizes, for a first look.")
    parser.add_argument("--json", action="store_true", help="Print the raw figures as JSON.")
    args = parser.parse_args()
    result = measure(quick=args.quick)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    table = rows(result)
    widths = [max(len(r[i]) for r in table + [("figure", "target", "measured", "ratio")]) for i in range(4)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format("figure", "target", "measured", "ratio"))
    print(line.format(*("-" * w for w in widths)))
    for row in table:
        print(line.format(*row))


if __name__ == "__main__":
    main()
