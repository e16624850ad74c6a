"""Reading the CSV files spreadsheets export: comma or semicolon, UTF-8 with or
without BOM, or Windows-1252; header names normalised (accents, case, spaces).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from edumail.errors import InputError

_DELIMITERS = (";", ",", "\t")


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (BOM or not) or else Windows-1252."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a CSV file") from None
    if b"\x00" in raw[:4096]:
        raise InputError(f"{path}: not a CSV file (binary content); export the sheet as CSV")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: neither UTF-8 nor Windows-1252 text (byte {exc.start}); save it as CSV UTF-8"
        ) from None


def normalise_header(name: str) -> str:
    """`Prénom ` -> `prenom`, `Date de naissance` -> `date_de_naissance`."""
    text = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """(normalised header, iterator of (line number, row)) for a CSV file."""
    text = read_text(path)
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

    def generate() -> Iterator[tuple[int, dict[str, str]]]:
        line = 1
        try:
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue
                yield line, {n: v.strip() for n, v in zip(names, values, strict=False) if n}
        except csv.Error as exc:
            raise InputError(f"{path}:{line + 1}: not readable as CSV ({exc})") from None

    return names, generate()
