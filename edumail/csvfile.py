"""Reading the CSV files spreadsheets export: comma or semicolon, UTF-8 with or
without BOM, or Windows-1252; header names normalised (accents, case, spaces).
"""

from __future__ import annotations

import csv
import gc
import io
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edumail.errors import InputError

_DELIMITERS = (";", ",", "\t")
_ENCODING_PROBLEM = (
    "characters not in the file's encoding (UTF-8 mixed with Windows-1252); retype the accented letters"
    " of this row or save the whole sheet as CSV UTF-8"
)


class BadRow(dict[str, str]):
    """A row that cannot be read (undecodable bytes, unclosed quote): its consumer reports and skips it."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


def check(row: dict[str, str] | list[str]) -> None:
    """Raise the row's problem as an InputError when it could not be read."""
    if isinstance(row, BadRow):
        raise InputError(row.message)


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off while an import runs (also as a decorator). An import builds a few objects
    per row (cells, tuples, dicts) that all live until it ends and hold no cycle: each collection would scan
    every one of them again, about half of the import's Python time for 100,000 rows. What it allocates is
    freed as usual (reference counts) once it returns; the collector then runs again as before."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (BOM or not) or else Windows-1252."""
    return decode(path)[0]


def decode(path: Path) -> tuple[str, set[int]]:
    """(text, physical line numbers not valid in the file's encoding, decoded with U+FFFD).

    A file is UTF-8 unless most of its non-ASCII lines are only valid as Windows-1252. In a mixed file
    the lines of the other encoding are reported rather than guessed (never store mojibake).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a CSV file") from None
    if b"\x00" in raw[:4096]:
        raise InputError(f"{path}: not a CSV file (binary content); export the sheet as CSV")
    bom = raw.startswith(b"\xef\xbb\xbf")
    if bom:
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), set()
    except UnicodeDecodeError:
        pass
    lines = raw.split(b"\n")
    utf8, legacy = [], []
    for number, line in enumerate(lines, 1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8.append(number)
        except UnicodeDecodeError:
            legacy.append(number)
    if bom or len(utf8) >= len(legacy):
        return raw.decode("utf-8", errors="replace"), set(legacy)
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: neither UTF-8 nor Windows-1252 text (byte {exc.start}); save it as CSV UTF-8"
        ) from None
    return text, set(utf8)


def _unclosed_quote(text: str, delimiter: str) -> int | None:
    """The line where a quote opens and is never closed (the csv module then reads to the end as one cell)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return start
    return None


def normalise_header(name: str) -> str:
    """`Prénom ` -> `prenom`, `Date de naissance` -> `date_de_naissance`."""
    text = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def rows(path: Path, aliases: dict[str, str] | None = None) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """(normalised header, iterator of (line number, row)) for a CSV file; rows are keyed by the
    normalised names, or by their aliases where `aliases` gives one."""
    names, keys, found = cells(path, aliases)
    if all(keys):
        return names, (
            (line, row if isinstance(row, BadRow) else dict(zip(keys, row, strict=False))) for line, row in found
        )
    return names, (
        (line, row if isinstance(row, BadRow) else {n: v for n, v in zip(keys, row, strict=False) if n})
        for line, row in found
    )


def cells(
    path: Path, aliases: dict[str, str] | None = None
) -> tuple[list[str], list[str], Iterator[tuple[int, list[str] | BadRow]]]:
    """(normalised header, its keys (aliases applied), iterator of (line number, the row's stripped cells,
    or a BadRow)) for a CSV file: rows rather than dicts, for an import that reads many."""
    text, undecodable = decode(path)
    first_line = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=first_line.count)
    if first_line.count(delimiter) == 0 and not first_line.strip():
        raise InputError(f"{path}: empty file; expected a header line such as email;prenom;nom")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path}: empty file; expected a header line such as email;prenom;nom") from None
    except csv.Error as exc:
        raise InputError(f"{path}:1: not a readable CSV header ({exc})") from None
    names = [normalise_header(h) for h in header]
    if 1 in undecodable:
        raise InputError(f"{path}:1: header not valid in the file's encoding; save the sheet as CSV UTF-8")
    unclosed = _unclosed_quote(text, delimiter) if '"' in text else None  # no quote, none left open

    def generate() -> Iterator[tuple[int, list[str] | BadRow]]:
        line = 1
        careful = unclosed is not None or bool(undecodable)
        try:
            for values in reader:
                first, line = line + 1, reader.line_num
                if careful:
                    bad = _bad_row(first, line, unclosed, undecodable)
                    if bad is not None:
                        yield bad
                        continue
                stripped = list(map(str.strip, values))
                if any(stripped):
                    yield line, stripped
        except csv.Error as exc:
            raise InputError(f"{path}:{line + 1}: not readable as CSV ({exc})") from None

    return names, [(aliases or {}).get(name, name) for name in names], generate()


def _bad_row(first: int, last: int, unclosed: int | None, undecodable: set[int]) -> tuple[int, BadRow] | None:
    """(line, problem) of a row on physical lines first..last that cannot be read, or None."""
    if first == unclosed:
        return first, BadRow(
            "a quote opens on this line and is never closed, so every later row was read as one"
            " cell; close the quote (or remove it) and import again"
        )
    bad = undecodable and sorted(undecodable.intersection(range(first, last + 1)))
    if bad:
        return bad[0], BadRow(_ENCODING_PROBLEM)
    return None
