"""A fast, strict RFC 5322 / MIME builder for edumail's one message shape.

`EmailMessage` with the default policy costs ~3 ms a mail; edumail always
sends the same shape (multipart/alternative, text/plain first, text/html last,
UTF-8, quoted-printable), so it is written out directly with the C codecs
(binascii.b2a_qp) and email.utils / email.header for the header words.

Header values are cleaned here, once: control characters (CR, LF, ...) become
spaces, so no contact data can add a header; an address is checked strictly
(no comma, space, angle bracket, quote...), so it can't add a recipient.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from edumail.errors import InputError

CRLF = "\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_ATOM_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
# A deliberately narrow address: what edumail can put in a header and an envelope without quoting.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_MAX_LINE = 78  # RFC 5322's soft limit; its hard one is 998
_HARD_LINE = 998
_MAX_WORD = 75  # RFC 2047: an encoded word is at most 75 characters
_PREFIX = "=?utf-8?b?"
_FOLD = re.compile(r"\r\n[ \t]")
_CR_LF = re.compile(r"[\r\n]")


def new_message_id(domain: str) -> str:
    """A fresh `<random@domain>` Message-ID (stored with the mail, reused on every retry)."""
    return f"<{secrets.token_hex(16)}@{domain}>"


def clean(value: object) -> str:
    """One line of text: control characters (CR, LF, tabs...) become single spaces."""
    return _CONTROL.sub(" ", str(value)).strip()


def check_address(email: str) -> str:
    """The address, ASCII and safe for a header and RCPT TO, or InputError."""
    text = str(email).strip()
    if "@" in text:
        local, _, domain = text.rpartition("@")
        if not domain.isascii():
            try:
                domain = domain.encode("idna").decode("ascii")
            except UnicodeError:
                raise InputError(f"{text!r} is not a usable e-mail address (bad domain)") from None
        text = f"{local}@{domain}"
    if len(text) > 254 or not _ADDRESS.match(text) or ".." in text or text.startswith("."):
        raise InputError(f"{clean(email)!r} is not a usable e-mail address")
    return text


def _pieces(text: str, used: int) -> list[str]:
    """Unstructured text as unbreakable pieces: ASCII words, or RFC 2047 encoded words.

    ASCII text folds at its spaces. Text that is not ASCII, that looks like an
    encoded word, or that has a word too long for a line becomes encoded words
    (RFC 2047 allows folding between them, not inside).
    """
    words = text.split()
    if text.isascii() and "=?" not in text and all(len(w) < _MAX_LINE - 1 for w in words):
        return words
    return encoded_words(" ".join(words), used)


def _word_budget(width: int) -> int:
    """Bytes of UTF-8 an encoded word may carry on a line with `width` columns left."""
    return max(3, 3 * ((min(width, _MAX_WORD) - len(_PREFIX) - 2) // 4))


def encoded_words(text: str, used: int = 1) -> list[str]:
    """RFC 2047 `=?utf-8?b?...?=` words, each whole words of the text when they fit on a line.

    The first word fits after `used` columns, the others after one space; a word
    longer than a line is the only thing split, and never inside a character.
    email.header.Header does similar work in ~0.5 ms (it measures every character in Python).
    """
    chunks: list[bytes] = []
    current = b""
    budget = _word_budget(_MAX_LINE - used)
    for token in re.findall(r"\S+\s*|\s+", text):
        raw = token.encode("utf-8")
        if len(current) + len(raw) <= budget:
            current += raw
            continue
        if current:
            chunks.append(current)
            current, budget = b"", _word_budget(_MAX_LINE - 1)
            if len(raw) <= budget:
                current = raw
                continue
        for char in token:  # a word longer than a line: split between characters
            width = char.encode("utf-8")
            if len(current) + len(width) > budget:
                chunks.append(current)
                current, budget = b"", _word_budget(_MAX_LINE - 1)
            current += width
    if current or not chunks:
        chunks.append(current)
    return [_PREFIX + base64.b64encode(c).decode("ascii") + "?=" for c in chunks]


def fold(name: str, pieces: list[str]) -> str:
    """A header value: `pieces` joined by spaces, folded at those spaces so lines stay within 78 characters.

    RFC 5322: 78 is the soft limit, 998 the hard one; no piece is ever split.
    """
    lines: list[str] = []
    line, width = "", len(name) + 1  # "Name:"; each piece adds a space and itself
    for piece in pieces:
        if line and width + 1 + len(piece) > _MAX_LINE:
            lines.append(line)
            line, width = piece, 1 + len(piece)
        else:
            line = f"{line} {piece}" if line else piece
            width += 1 + len(piece)
    lines.append(line)
    return (CRLF + " ").join(lines)


def mailbox(name: str, email: str, field: str = "To") -> str:
    """`Name <email>` for From / To / Reply-To; the name cleaned, quoted or encoded, the whole folded."""
    address = check_address(email)
    display = " ".join(clean(name).split())
    if not display:
        return address
    used = len(field) + 2
    if not display.isascii() or "=?" in display or any(len(w) >= _MAX_LINE - 2 for w in display.split()):
        pieces = encoded_words(display, used)
    elif _ATOM_SPECIALS.search(display):
        escaped = display.replace("\\", "\\\\").replace('"', '\\"')
        pieces = f'"{escaped}"'.split(" ")
    else:
        pieces = display.split(" ")
    return fold(field, [*pieces, f"<{address}>"])


def fold_list(name: str, items: list[str]) -> str:
    """A comma-separated header value, folded between items when the line gets long."""
    value, width = "", len(name) + 2
    for index, item in enumerate(items):
        piece = item if index == 0 else ", " + item
        if index and width + len(piece) > _MAX_LINE:
            value += "," + CRLF + " " + item
            width = 1 + len(item)
        else:
            value += piece
            width += len(piece)
    return value


def _qp(text: str) -> str:
    body = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", CRLF)
    if not body.endswith(CRLF):
        body += CRLF
    return binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii")


class Headers:
    """An ordered list of header lines; values are cleaned as they are added."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, name: str, value: str) -> None:
        """A header whose value is already safe (built here: addresses, dates, ids)."""
        if _CR_LF.search(_FOLD.sub("", value)):
            raise ValueError(f"unsafe value for header {name}")
        line = f"{name}: {value}"
        if any(len(part) > _HARD_LINE for part in line.split(CRLF)):
            raise ValueError(f"header {name} has a line over {_HARD_LINE} characters")
        self.lines.append(line)

    def text(self, name: str, value: str) -> None:
        """A free-text header (Subject): cleaned, encoded when not ASCII, folded at spaces."""
        self.add(name, fold(name, _pieces(clean(value), len(name) + 2)))


def build(headers: Headers, *, text: str, html: str, attachments: Sequence[Any] = ()) -> bytes:
    """The finished message: headers, then multipart/alternative (text/plain first, text/html last).

    With attachments, multipart/mixed: the alternative part first, then each file in base64.
    """
    boundary = "==edumail-" + secrets.token_hex(8)
    out = list(headers.lines) + ["MIME-Version: 1.0"]
    if attachments:
        mixed = "==edumail-" + secrets.token_hex(8)
        out += [f'Content-Type: multipart/mixed; boundary="{mixed}"', "", f"--{mixed}"]
    out += [
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(text),  # the CRLF before a boundary belongs to the boundary (RFC 2046): keep the text's own
        f"--{boundary}",
        'Content-Type: text/html; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(html),
        f"--{boundary}--",
    ]
    if attachments:
        for item in attachments:
            out += [f"--{mixed}", *_attachment_part(item.name, item.mime, item.data)]
        out.append(f"--{mixed}--")
    out.append("")
    return CRLF.join(out).encode("ascii")


def _attachment_part(name: str, mime: str, data: bytes) -> list[str]:
    """One attached file: its type, its name (RFC 2231 when not ASCII), base64 in 76-character lines."""
    safe = clean(name).replace('"', "")
    if safe.isascii():
        disposition = f'attachment; filename="{safe}"'
        content_name = f'; name="{safe}"'
    else:
        disposition = f"attachment; filename*=utf-8''{quote(safe, safe='')}"
        content_name = ""
    encoded = base64.b64encode(data).decode("ascii")
    return [
        f"Content-Type: {mime}{content_name}",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: {disposition}",
        "",
        *[encoded[i : i + 76] for i in range(0, len(encoded), 76)],
    ]


def insert_header(data: bytes, name: str, value: str, *, before: str) -> bytes:
    """`data` with the header `name: value` put just above the header `before` (else first)."""
    line = f"{name}: {value}{CRLF}".encode("ascii")
    marker = f"{CRLF}{before}: ".encode("ascii")
    head_end = data.find(b"\r\n\r\n")
    at = data.find(marker, 0, head_end if head_end >= 0 else len(data))
    if at < 0:
        return line + data
    return data[: at + 2] + line + data[at + 2 :]


def date(moment: datetime) -> str:
    """RFC 5322 Date for an aware datetime."""
    return format_datetime(moment)
