"""The shape of the code: what may import what (issue 11)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SEND_STACK = ("edumail.delivery", "edumail.compose", "edumail.transport")


@pytest.mark.parametrize("module", ["edumail.engine", "edumail.campaigns"])
def test_deciders_do_not_stand_on_the_send_stack(module):
    code = f"import sys, {module}\nprint(sorted(m for m in sys.modules if m.startswith({SEND_STACK!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- size limits and import guards (STYLE.md, README "Code layout") ------------------------------
# `python tests/test_layout.py` lists every module over 500 lines, function over 60 lines and
# `except ImportError` around an edumail import.

PACKAGE = Path(__file__).resolve().parent.parent / "edumail"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> list[tuple[str, str]]:
    return [
        (f"edumail/{p.relative_to(PACKAGE).as_posix()}", p.read_text("utf-8")) for p in sorted(PACKAGE.rglob("*.py"))
    ]


def long_modules() -> dict[str, int]:
    """Modules over MAX_MODULE_LINES: {path: lines}."""
    sizes = {name: len(text.splitlines()) for name, text in _modules()}
    return {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}


def long_functions() -> dict[str, int]:
    """Functions and methods over MAX_FUNCTION_LINES (decorators not counted): {path:name: lines}."""
    found = {}
    for name, text in _modules():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found[f"{name}:{node.name}"] = lines
    return found


def import_guards() -> dict[str, int]:
    """`try: <import of edumail> except ImportError/ModuleNotFoundError`: {"guard path": line}."""
    found = {}
    for name, text in _modules():
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Try):
                continue
            caught = " ".join(ast.unparse(h.type) for h in node.handlers if h.type is not None)
            imports = [n for n in node.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            own = [n for n in imports if "edumail" in ast.unparse(n)]
            if own and ("ImportError" in caught or "ModuleNotFoundError" in caught):
                found[f"guard {name}"] = node.lineno
    return found


def offenders() -> dict[str, int]:
    return {**long_modules(), **long_functions(), **import_guards()}


@pytest.fixture(scope="module")
def found_offenders() -> dict[str, int]:
    return offenders()


def test_no_module_over_500_lines_no_function_over_60_no_import_guard(found_offenders):
    found = found_offenders
    assert found == {}, "over the limits (STYLE.md), or a guard around edumail's own import: " + ", ".join(found)


def test_the_layout_check_sees_a_long_function_and_a_guard(tmp_path, monkeypatch):
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_FUNCTION_LINES))
    (tmp_path / "bad.py").write_text(
        f"def long():\n{body}\n\n\ntry:\n    from edumail import engine\nexcept ImportError:\n    engine = None\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    expected = {"edumail/bad.py:long": MAX_FUNCTION_LINES + 1, "guard edumail/bad.py": MAX_FUNCTION_LINES + 4}
    assert offenders() == expected


if __name__ == "__main__":
    for where, size in offenders().items():
        print(f"{where}: {size}")
