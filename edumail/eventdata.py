"""What an event may carry, checked where it enters (CLI, CSV, API).

Event data is stored as JSON and read later by sequences (`at: {before:
event.session_start}`) and templates, so anything that would break them later
is refused now with a clear message: dates outside 1900-2199 (SPEC 10), text
that is not valid Unicode (a lone surrogate cannot be stored), and nesting
deeper than any real form or CRM sends.
"""

from __future__ import annotations

from typing import Any

from edumail import clock
from edumail.errors import InputError

MAX_DEPTH = 20


def check(data: dict[str, Any]) -> dict[str, Any]:
    """The data unchanged, or an InputError naming the key at fault."""
    _walk(data, "data", 0)
    return data


def check_text(value: str, what: str) -> str:
    """Refuse text that cannot be stored as UTF-8 (a lone surrogate from JSON's \\ud800)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what}: not valid Unicode text (a lone surrogate such as \\ud800)") from None
    return value


def _walk(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InputError(f"{where}: nested more than {MAX_DEPTH} levels deep; send flat values")
    if isinstance(value, str):
        check_text(value, where)
        if clock.looks_like_date(value):
            try:
                clock.check_date_text(value)
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), where)
            _walk(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{where}[{index}]", depth + 1)
