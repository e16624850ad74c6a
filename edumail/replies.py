"""Replies -> `replied` events, from an mbox/Maildir (`inbox import`) or IMAP (`inbox fetch`).

A message is a reply when its In-Reply-To or References name the Message-ID
of a mail edumail sent. Automatic answers (RFC 3834 Auto-Submitted, bounces)
are not replies: an out-of-office must not stop a "no answer" reminder.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from edumail import bounces, events, recording, tokens
from edumail import contacts as contacts_module
from edumail.bounce_charge import is_staff_mail
from edumail.errors import EdumailError
from edumail.settings import Imap
from edumail.store import Store

SOURCE_FILE = "inbox import"
SOURCE_IMAP = "inbox fetch"
_MSGID = re.compile(r"<([^<>\s]+)>")
_FETCH_FIELDS = "MESSAGE-ID IN-REPLY-TO REFERENCES SUBJECT DATE FROM AUTO-SUBMITTED X-AUTORESPONDER CONTENT-TYPE"
_BATCH = 200
# What a List-Unsubscribe mailto sends (SPEC 18): Subject `unsubscribe-TOKEN`, the token of the https link.
_UNSUBSCRIBE = re.compile(r"\bunsubscribe-(u[0-9a-f]{1,16}-[A-Za-z0-9_-]{16})(?![A-Za-z0-9_-])")
UNSUBSCRIBE_METHOD = "mailto"


@dataclass
class ReplyReport:
    """The summary of one `inbox import` or `inbox fetch`."""

    messages: int = 0
    replies: int = 0
    automatic: int = 0
    already: int = 0
    unmatched: int = 0
    unsubscribed: int = 0  # mailto: unsubscribes honoured
    contacts: set[int] = field(default_factory=set)

    def summary(self) -> str:
        text = (
            f"{self.messages} messages: {self.replies} replies recorded ({len(self.contacts)} contacts);"
            f" {self.already} already imported; {self.automatic} automatic answers ignored;"
            f" {self.unmatched} not replies to our mails"
        )
        if self.unsubscribed:
            text += f"; {self.unsubscribed} unsubscribed by mail"
        return text


def import_replies(store: Store, path: Path, now: datetime, keys: list[bytes] | None = None) -> ReplyReport:
    """Record the replies (and mailto: unsubscribes, verified with `keys`) in an mbox file or Maildir folder."""
    parsed = [(raw, bounces.parse_message(raw, label)) for label, raw in bounces.read_mailbox(path)]
    return record_replies(store, parsed, now, SOURCE_FILE, keys)


def record_replies(
    store: Store,
    messages: Iterable[tuple[bytes, Message]],
    now: datetime,
    source: str,
    keys: list[bytes] | None = None,
) -> ReplyReport:
    """Record `replied` for each message that answers a mail we sent, and honour mailto: unsubscribes; idempotent."""
    report = ReplyReport()
    for raw, msg in messages:
        report.messages += 1
        if keys and _unsubscribe_by_mail(store, raw, msg, now, source, keys, report):
            continue
        _record_one(store, raw, msg, now, source, report)
    return report


def _unsubscribe_by_mail(
    store: Store, raw: bytes, msg: Message, now: datetime, source: str, keys: list[bytes], report: ReplyReport
) -> bool:
    """A mail sent to the List-Unsubscribe mailto: opt the contact out, with the mail as proof (SPEC 18)."""
    found = _UNSUBSCRIBE.search(header_text(msg.get("Subject")))
    token = tokens.verify_any(keys, found.group(1), "u") if found else None
    mail = store.tracked_mail(token.ident) if token else None
    if mail is None:
        return False
    key = "unsubscribe:" + bounces.message_key(msg, raw)
    if store.seen_inbound(key):
        report.already += 1
        return True
    if mail["contact_id"] is not None and not mail["forgotten_at"]:
        proof = {
            "method": UNSUBSCRIBE_METHOD,
            "mail_id": mail["id"],
            "message_id": mail["message_id"],
            "request_message_id": bounces.message_key(msg, raw),
            "request_from": header_text(msg.get("From")),
            "request_date": str(msg.get("Date", "")),
        }
        with store.transaction():
            recording.opt_out(store, mail, source=source, method=UNSUBSCRIBE_METHOD, proof=proof, now=now)
            store.mark_inbound_seen(key, now)
        report.unsubscribed += 1
    return True


def _record_one(store: Store, raw: bytes, msg: Message, now: datetime, source: str, report: ReplyReport) -> None:
    if is_automatic(msg):
        report.automatic += 1
        return
    mail = _answered_mail(store, msg)
    if mail is None:
        report.unmatched += 1
        return
    key = "reply:" + bounces.message_key(msg, raw)
    if store.seen_inbound(key):
        report.already += 1
        return
    reply_id = bounces.message_key(msg, raw)
    data = {"subject": header_text(msg.get("Subject")), "message_id": reply_id, "in_reply_to": mail["message_id"]}
    with store.transaction():
        contacts_module.record_event(
            store,
            mail["contact_id"],
            events.REPLIED,
            at=bounces.message_date(msg, now),
            data=data,
            source=source,
            now=now,
            mail_id=mail["id"],
        )
        store.mark_inbound_seen(key, now)
    report.replies += 1
    report.contacts.add(mail["contact_id"])


def _answered_mail(store: Store, msg: Message) -> dict[str, Any] | None:
    """The mail to a (not forgotten) contact that this message answers: In-Reply-To first, then References."""
    wanted: list[str] = []
    for header in ("In-Reply-To", "References"):
        for value in msg.get_all(header) or []:
            wanted += _MSGID.findall(str(value))
    wanted = list(dict.fromkeys(wanted))
    found = store.mails_by_message_ids(wanted)
    for message_id in wanted:
        mail = found.get(message_id)
        if mail is None or not mail["contact_id"] or is_staff_mail(mail):  # the team answering an alert
            continue
        contact = store.contact(mail["contact_id"])
        if contact is not None and not contact["forgotten_at"]:
            return mail
    return None


def is_automatic(msg: Message) -> bool:
    """An auto-reply, vacation notice or delivery report rather than a person's answer."""
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return True
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Autoresponder"):
        return True
    return msg.get_content_type() == "multipart/report"


def header_text(value: Any) -> str:
    """A header decoded from RFC 2047 to text."""
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError):
        return str(value)


# --- IMAP ---------------------------------------------------------------------------


def fetch_replies(store: Store, settings: Imap | None, now: datetime, keys: list[bytes] | None = None) -> ReplyReport:
    """Record the replies and mailto: unsubscribes in the IMAP folder of the `imap:` settings (flags untouched)."""
    imap = _require_settings(settings)
    conn = _connect(imap)
    try:
        _login(conn, imap)
        _select(conn, imap)
        return record_replies(store, _fetch_headers(conn, imap), now, SOURCE_IMAP, keys)
    finally:
        _logout(conn)


def fetch_messages(settings: Imap | None) -> list[tuple[str, bytes]]:
    """Every message of the `imap:` folder, whole, as (label, raw bytes); flags untouched (`bounces fetch`)."""
    imap = _require_settings(settings)
    conn = _connect(imap)
    try:
        _login(conn, imap)
        _select(conn, imap)
        status, data = conn.uid("SEARCH", "ALL")
        if status != "OK":
            raise EdumailError(f"{_where(imap)}: SEARCH failed in {imap.folder!r} ({_text(data)})")
        found = []
        for uid in (data[0] or b"").split():
            status, items = conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            if status != "OK":
                raise EdumailError(f"{_where(imap)}: FETCH failed in {imap.folder!r} ({_text(items)})")
            for item in items:
                if isinstance(item, tuple) and len(item) == 2:
                    found.append((f"{imap.host} {imap.folder} uid {uid.decode()}", bytes(item[1])))
        return found
    finally:
        _logout(conn)


def _require_settings(settings: Imap | None) -> Imap:
    if settings is None:
        raise EdumailError("no imap: section in edumail.yaml (host, port, security, username, password_env, folder)")
    if not settings.username:
        raise EdumailError("imap.username is missing in edumail.yaml (the mailbox login)")
    if settings.password() is None:
        raise EdumailError(
            f"no IMAP password: set the environment variable {settings.password_env} (imap.password_env)"
        )
    return settings


def _where(imap: Imap) -> str:
    return f"{imap.host}:{imap.port}"


def _connect(imap: Imap) -> imaplib.IMAP4:
    try:
        if imap.security == "ssl":
            return imaplib.IMAP4_SSL(imap.host, imap.port, ssl_context=ssl.create_default_context(), timeout=30)
        conn = imaplib.IMAP4(imap.host, imap.port, timeout=30)
        if imap.security == "starttls":
            conn.starttls(ssl_context=ssl.create_default_context())
        return conn
    except ssl.SSLError as exc:
        raise EdumailError(
            f"{_where(imap)}: TLS failed ({exc.reason or exc}); check imap.security and imap.port"
        ) from None
    except (OSError, imaplib.IMAP4.error) as exc:
        raise EdumailError(f"{_where(imap)}: cannot connect to the IMAP server ({_reason(exc)})") from None


def _login(conn: imaplib.IMAP4, imap: Imap) -> None:
    try:
        conn.login(imap.username or "", imap.password() or "")
    except imaplib.IMAP4.error:
        raise EdumailError(
            f"{_where(imap)} refused login for {imap.username} (check the password in {imap.password_env})"
        ) from None
    except OSError as exc:
        raise EdumailError(f"{_where(imap)}: connection lost during login ({_reason(exc)})") from None


def _select(conn: imaplib.IMAP4, imap: Imap) -> None:
    status, data = conn.select(_quote(imap.folder), readonly=True)
    if status != "OK":
        raise EdumailError(f"{_where(imap)}: no folder {imap.folder!r} ({_text(data)}); check imap.folder")


def _fetch_headers(conn: imaplib.IMAP4, imap: Imap) -> Iterator[tuple[bytes, Message]]:
    """The reply-relevant headers of every message of the folder, in batches."""
    status, data = conn.uid("SEARCH", "ALL")
    if status != "OK":
        raise EdumailError(f"{_where(imap)}: SEARCH failed in {imap.folder!r} ({_text(data)})")
    uids = (data[0] or b"").split()
    for start in range(0, len(uids), _BATCH):
        batch = b",".join(uids[start : start + _BATCH]).decode()
        status, items = conn.uid("FETCH", batch, f"(UID BODY.PEEK[HEADER.FIELDS ({_FETCH_FIELDS})])")
        if status != "OK":
            raise EdumailError(f"{_where(imap)}: FETCH failed in {imap.folder!r} ({_text(items)})")
        for item in items:
            if isinstance(item, tuple) and len(item) == 2:
                yield item[1], BytesHeaderParser().parsebytes(item[1])


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (OSError, imaplib.IMAP4.error):
        pass


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(data: Any) -> str:
    parts = [d.decode(errors="replace") if isinstance(d, bytes) else str(d) for d in (data or []) if d]
    return " ".join(parts) or "no detail"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
