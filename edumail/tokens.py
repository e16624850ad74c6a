"""Signed, opaque tokens for the open pixel, click, unsubscribe and confirmation links.

A token names what it is for (kind), the mail or contact, and for clicks the
link's index, signed with HMAC-SHA256 under the project key. Verification is
constant-time; anything tampered, truncated or forged verifies to None.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

KINDS = {"o": "open", "c": "click", "u": "unsubscribe", "p": "preferences", "k": "confirm"}
_SIG_BYTES = 12  # 96 bits: hard to forge, short enough for a URL
_SIG_CHARS = 16  # base64url of 12 bytes, no padding


@dataclass(frozen=True)
class Token:
    kind: str  # a key of KINDS
    ident: int  # mail id (o, c, u, p) or contact id (k)
    index: int = 0  # link index for clicks


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _payload(token: Token) -> str:
    body = f"{token.kind}{token.ident:x}"
    if token.kind == "c":
        body += f".{token.index:x}"
    return body


def sign(secret: bytes, token: Token) -> str:
    """The URL-safe text of a token."""
    payload = _payload(token)
    mac = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()[:_SIG_BYTES]
    return f"{payload}-{_b64(mac)}"


def verify(secret: bytes, text: str, kind: str) -> Token | None:
    """The token if `text` is one of ours of this kind, else None."""
    if not text or len(text) > 80 or len(text) < _SIG_CHARS + 2 or text[-_SIG_CHARS - 1] != "-":
        return None
    payload, signature = text[: -_SIG_CHARS - 1], text[-_SIG_CHARS:]
    try:
        given = _unb64(signature)
    except (ValueError, TypeError):
        return None
    expected = hmac.new(secret, payload.encode("ascii", "replace"), hashlib.sha256).digest()[:_SIG_BYTES]
    if not hmac.compare_digest(given, expected):
        return None
    if not payload or payload[0] != kind or kind not in KINDS:
        return None
    try:
        if kind == "c":
            ident_text, _, index_text = payload[1:].partition(".")
            return Token(kind, int(ident_text, 16), int(index_text, 16))
        return Token(kind, int(payload[1:], 16))
    except ValueError:
        return None


def verify_any(keys: list[bytes], text: str, kind: str) -> Token | None:
    """`verify` under each key in turn (SPEC 20: every key of the project verifies)."""
    for key in keys:
        token = verify(key, text, kind)
        if token is not None:
            return token
    return None


def open_url(base_url: str, secret: bytes, mail_id: int) -> str:
    return f"{base_url}/o/{sign(secret, Token('o', mail_id))}.gif"


def click_url(base_url: str, secret: bytes, mail_id: int, index: int) -> str:
    return f"{base_url}/c/{sign(secret, Token('c', mail_id, index))}"


def unsubscribe_url(base_url: str, secret: bytes, mail_id: int) -> str:
    return f"{base_url}/u/{sign(secret, Token('u', mail_id))}"


def preferences_url(base_url: str, secret: bytes, mail_id: int) -> str:
    return f"{base_url}/p/{sign(secret, Token('p', mail_id))}"


def confirm_url(base_url: str, secret: bytes, contact_id: int) -> str:
    return f"{base_url}/k/{sign(secret, Token('k', contact_id))}"
