"""Plain addresses judged without email_validator, exactly as it judges them.

email_validator compiles large Unicode expressions when it is imported (about
28 ms: a tenth of a cron run with nothing due, which checks the settings'
addresses). Nearly every address a centre uses is plain ASCII: a dot-atom local
part and a host name ending in letters. Those get email_validator's verdict
and normalized form here; any other address returns None, so email_validator
judges it and words the error. tests/test_plain_address.py holds both to the
same answers.
"""

from __future__ import annotations

import re

_LOCAL = re.compile(r"[A-Za-z0-9_%+'-]+(?:\.[A-Za-z0-9_%+'-]+)*", re.ASCII)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
# email_validator.SPECIAL_USE_DOMAIN_NAMES (a test compares): no deliverable address under these.
SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")


def domain(text: str) -> str | None:
    """The host name lower-cased when it is plain (ASCII labels, ending in letters, at least two labels,
    no `--`, no special-use name), else None."""
    name = text.lower()
    if not name or len(name) > 253 or "--" in name:
        return None
    labels = name.split(".")
    if len(labels) < 2 or not labels[-1].isalpha() or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if any(name == special or name.endswith("." + special) for special in SPECIAL_USE):
        return None
    return name


def plain_local(local: str) -> bool:
    """Is this local part plain: a dot-atom of the usual characters, at most 64 of them?"""
    return len(local) <= 64 and _LOCAL.fullmatch(local) is not None


def address(text: str) -> str | None:
    """email_validator's normalized form of a plain address (local part as written, host lower-cased), or
    None when the address is not plain (it may still be valid: ask email_validator)."""
    local, at, host = text.rpartition("@")
    if not at or len(text) > 254 or not plain_local(local):
        return None
    name = domain(host)
    return None if name is None else f"{local}@{name}"


def normalized(text: str) -> str:
    """email_validator's normalized form of any address; its EmailNotValidError (a ValueError) for one that
    is not valid. email_validator is imported only for an address that is not plain."""
    plain = address(text)
    if plain is not None:
        return plain
    from email_validator import validate_email  # noqa: PLC0415 - 28 ms of regexes, for unusual addresses only

    return validate_email(text, check_deliverability=False).normalized
