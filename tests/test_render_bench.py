"""bench/render.py stays runnable, and its measure() returns the figures bench/run.py reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "render.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_render", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_measure_returns_mails_per_second_and_stage_costs():
    figures = load_bench().measure(60)
    assert figures["mails"] == 60 and figures["templates"] >= 10
    assert figures["mails_per_second"] > 0 and figures["ms_per_mail"] > 0
    assert set(figures["stages_ms"]) == {
        "template lookup",
        "context",
        "jinja (subject, body, layout)",
        "css inlining",
        "text part",
    }
    assert figures["average_size_bytes"] > 2000


def test_main_prints_a_summary(capsys):
    assert load_bench().main(["--mails", "30"]) == 0
    out = capsys.readouterr().out
    assert "mails/s" in out and "css inlining" in out
