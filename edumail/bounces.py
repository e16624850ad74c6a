"""Delivery status notifications (RFC 3464) -> `bounced` events and suppression.

Reads an mbox file or a Maildir folder (stdlib `mailbox`). Status codes come
from the report itself (RFC 3463: 5.x.x hard, 4.x.x or Action delayed soft,
5.7.x policy: the address is fine, so it is recorded but never suppressed);
flufl.bounce only finds the addresses of bounces that are not RFC 3464.
"""

from __future__ import annotations

import email
import email.errors
import hashlib
import mailbox
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import HeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Any

from edumail import clock, events
from edumail import contacts as contacts_module
from edumail.bounce_charge import charged_contact, is_staff_mail
from edumail.errors import InputError
from edumail.settings import Imap
from edumail.store import Store

SOURCE = "bounces import"
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MSGID = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_ORIGINAL_MSGID = re.compile(r"^message-id:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
_STRUCTURAL = (
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
)
_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status")
_KIND_RANK = {"hard": 0, "policy": 1, "soft": 2}


# --- reading mailboxes ------------------------------------------------------------


def read_mailbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) of each message of an mbox file or a Maildir folder, in order."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder (expected an mbox file or a Maildir folder)")
    if path.is_dir():
        yield from _read_maildir(path)
    else:
        yield from _read_mbox(path)


def _read_maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    if not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise InputError(
            f"{path}: not a Maildir (no cur/ or new/ folder inside); give an mbox file or a Maildir folder"
        )
    box = mailbox.Maildir(str(path), factory=None, create=False)
    for number, key in enumerate(sorted(box.iterkeys()), start=1):
        yield f"{path}: message {number} ({key})", box.get_bytes(key)


def _read_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\r\n")
    if head and not head.startswith(b"From "):
        raise InputError(f"{path}: message 1: not an mbox file (it should start with a 'From ' line)")
    box = mailbox.mbox(str(path), factory=None, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield f"{path}: message {number}", box.get_bytes(key)
    finally:
        box.close()


def parse_message(raw: bytes, label: str) -> Message:
    """Parse one message; a message without headers or with a broken MIME structure is an InputError."""
    msg = email.message_from_bytes(raw)
    if not msg.keys():
        raise InputError(f"{label}: malformed message (no header lines)")
    for part in msg.walk():
        broken = [d for d in getattr(part, "defects", []) if isinstance(d, _STRUCTURAL)]
        if broken:
            raise InputError(f"{label}: malformed message ({type(broken[0]).__name__}: {broken[0]})")
    return msg


def message_key(msg: Message, raw: bytes) -> str:
    """What identifies a message across imports: its Message-ID, else a digest of its bytes."""
    found = _MSGID.search(str(msg.get("Message-ID", "")))
    return found.group(1) if found else "sha256:" + hashlib.sha256(raw).hexdigest()


def message_date(msg: Message, now: datetime) -> datetime:
    """The Date header in UTC (never later than now), else now."""
    try:
        parsed = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return now
    if parsed is None:
        return now
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=clock.UTC)
    return min(parsed.astimezone(clock.UTC), now)


# --- parsing DSNs -------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One recipient a DSN reports as failed or delayed."""

    address: str
    kind: str  # hard | soft | policy
    status: str
    action: str
    diagnostic: str


@dataclass
class Dsn:
    """One delivery status notification: which mail, which recipients failed."""

    label: str
    key: str
    at: datetime
    original_ids: list[str]
    failures: list[Failure]


def parse_dsn(msg: Message, raw: bytes, label: str, now: datetime) -> Dsn | None:
    """The failures a bounce reports, or None when the message is not a bounce."""
    report = _report_part(msg)
    if report is not None:
        failures = _report_failures(report, label)
    else:
        failures = _heuristic_failures(msg)
    if not failures:
        return None
    return Dsn(label, message_key(msg, raw), message_date(msg, now), _original_ids(msg), failures)


def _report_part(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() in _REPORT_TYPES:
            return part
    return None


def _report_failures(report: Message, label: str) -> list[Failure]:
    blocks = [b for b in _status_blocks(report) if b.get("Final-Recipient") or b.get("Original-Recipient")]
    if not blocks:
        raise InputError(f"{label}: malformed delivery report (no recipient block with a Final-Recipient field)")
    failures = []
    for block in blocks:
        failure = _block_failure(block)
        if failure is not None:
            failures.append(failure)
    return failures


def _status_blocks(report: Message) -> list[Message]:
    """The header blocks of a delivery-status part (already split by the parser, or split here)."""
    payload = report.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    data = report.get_payload(decode=True) or b""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [HeaderParser().parsestr(chunk.strip() + "\n") for chunk in chunks if chunk.strip()]


def _block_failure(block: Message) -> Failure | None:
    action = unfold(block.get("Action", "")).lower().split(" ")[0]
    if action in ("delivered", "relayed", "expanded", "delayed"):
        return None  # a delay notice (RFC 3464 `delayed`) says the server is still trying: not a bounce
    address = _address(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
    if not address:
        return None
    diagnostic = unfold(block.get("Diagnostic-Code", ""))
    status = _status(unfold(block.get("Status", ""))) or _status(diagnostic)
    if not status:
        status = "5.0.0"
    return Failure(address, _kind(status, action), status, action or "failed", _strip_type(diagnostic))


def _kind(status: str, action: str) -> str:
    if status.startswith("4."):
        return "soft"
    if status.startswith("5.7."):
        return "policy"
    return "hard"


def _heuristic_failures(msg: Message) -> list[Failure]:
    """A bounce that is not RFC 3464: flufl.bounce finds the addresses, the text may hold a status."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector choking on an odd message: not a bounce we can read
        return []
    status = _status(_text_of(msg))
    failures = []
    for raw, kind in [*((a, "hard") for a in sorted(permanent)), *((a, "soft") for a in sorted(temporary))]:
        address = _address(raw.decode("utf-8", "replace"))
        if not address:
            continue
        code = (
            status
            if status and status[0] == ("5" if kind == "hard" else "4")
            else ("5.0.0" if kind == "hard" else "4.0.0")
        )
        failures.append(Failure(address, _kind(code, "failed"), code, "failed", ""))
    return failures


def _original_ids(msg: Message) -> list[str]:
    """Message-IDs of the returned original: its headers part, else anything that looks like one."""
    found: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            headers = HeaderParser().parsestr(decoded(part))
            found += _MSGID.findall(str(headers.get("Message-ID", "")))
        elif kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found += _MSGID.findall(str(inner[0].get("Message-ID", "")))
    found += _ORIGINAL_MSGID.findall(_text_of(msg))
    for header in ("In-Reply-To", "References"):
        found += _MSGID.findall(str(msg.get(header, "")))
    return list(dict.fromkeys(found))


def _text_of(msg: Message) -> str:
    texts = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            texts.append(decoded(part))
    return "\n".join(texts)


def decoded(part: Message) -> str:
    """A MIME part's text, decoded from its transfer encoding and charset (bad bytes replaced)."""
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    payload = part.get_payload()
    return payload if isinstance(payload, str) else ""


def unfold(value: Any) -> str:
    """A header value on one line, runs of whitespace as one space."""
    return " ".join(str(value or "").split())


def _strip_type(value: str) -> str:
    """`smtp; 550 5.1.1 unknown` -> `550 5.1.1 unknown`."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else value


def _address(value: str) -> str:
    text = _strip_type(unfold(value))
    _, address = parseaddr(text)
    address = (address or text).strip().strip("<>").lower()
    return address if "@" in address else ""


def _status(text: str) -> str:
    found = _STATUS.search(text or "")
    return ".".join(found.groups()) if found else ""


# --- recording ------------------------------------------------------------------------


@dataclass
class BounceReport:
    """The summary of one `bounces import`."""

    messages: int = 0
    hard: int = 0
    soft: int = 0
    policy: list[str] = field(default_factory=list)
    suppressed: int = 0
    unmatched: list[str] = field(default_factory=list)
    already: int = 0
    not_bounces: int = 0
    staff: list[str] = field(default_factory=list)  # DSNs for staff mail: no contact charged (SPEC 19)

    def summary(self) -> str:
        staff = f"; {len(self.staff)} for staff mail (no contact charged)" if self.staff else ""
        return (
            f"{self.messages} messages: {self.hard} hard, {self.soft} soft, {len(self.policy)} policy bounces recorded;"
            f" {self.suppressed} contacts suppressed; {len(self.unmatched)} unmatched;"
            f" {self.already} already imported; {self.not_bounces} not bounces{staff}"
        )


def import_bounces(store: Store, path: Path, now: datetime) -> BounceReport:
    """Record the bounces of a mailbox; the whole file is read and checked before anything is recorded."""
    return record_messages(store, read_mailbox(path), now)


def fetch_bounces(store: Store, settings: Imap | None, now: datetime) -> BounceReport:
    """`bounces fetch`: the DSNs of the IMAP folder of the `imap:` settings, recorded as `bounces import` does."""
    from edumail import replies

    return record_messages(store, replies.fetch_messages(settings), now)


def record_messages(store: Store, messages: Iterable[tuple[str, bytes]], now: datetime) -> BounceReport:
    """Every message is read and checked before anything is recorded; one transaction per DSN."""
    report = BounceReport()
    found: list[Dsn] = []
    for label, raw in messages:
        report.messages += 1
        dsn = parse_dsn(parse_message(raw, label), raw, label, now)
        if dsn is None:
            report.not_bounces += 1
        else:
            found.append(dsn)
    for dsn in found:
        if store.seen_inbound(dsn.key):
            report.already += 1
            continue
        with store.transaction():
            _record_dsn(store, dsn, now, report)
            store.mark_inbound_seen(dsn.key, now)
    return report


def _record_dsn(store: Store, dsn: Dsn, now: datetime, report: BounceReport) -> None:
    mails = store.mails_by_message_ids(dsn.original_ids)
    found = [m for m in (mails.get(i) for i in dsn.original_ids) if m]
    if found and all(is_staff_mail(m) for m in found):  # a `notify:` alert about a contact: never theirs
        report.staff.extend(f"{dsn.label}: {f.address} ({f.status})" for f in dsn.failures)
        return
    mail = next((m for m in found if charged_contact(m) is not None), None)
    per_contact: dict[int, tuple[Failure, dict[str, Any] | None]] = {}
    for failure in dsn.failures:
        matched = _match(store, failure, mail)
        if matched is None:
            report.unmatched.append(f"{dsn.label}: {failure.address} ({failure.status})")
            continue
        contact_id, which = matched
        current = per_contact.get(contact_id)
        if current is None or _KIND_RANK[failure.kind] < _KIND_RANK[current[0].kind]:
            per_contact[contact_id] = (failure, which)
    for contact_id, (failure, which) in per_contact.items():
        _record_failure(store, contact_id, failure, which, dsn, now, report)


def _match(store: Store, failure: Failure, mail: dict[str, Any] | None) -> tuple[int, dict[str, Any] | None] | None:
    """(contact id, mail) for a failure: by the original Message-ID, else by address."""
    if mail is not None:
        contact = store.contact(mail["contact_id"])
    else:
        contact = store.contact_by_email(failure.address)
    if contact is None or contact["forgotten_at"]:
        return None
    return contact["id"], mail if mail is not None else store.last_mail_to(contact["id"])


def _record_failure(
    store: Store,
    contact_id: int,
    failure: Failure,
    mail: dict[str, Any] | None,
    dsn: Dsn,
    now: datetime,
    report: BounceReport,
) -> None:
    mail_id = mail["id"] if mail else None
    repeated_soft = failure.kind == "soft" and mail_id is not None and store.soft_bounce_recorded(contact_id, mail_id)
    data = {"kind": failure.kind, "status": failure.status, "diagnostic": failure.diagnostic, "action": failure.action}
    if mail_id is not None:
        data["mail_id"] = mail_id
    contacts_module.record_event(
        store, contact_id, events.BOUNCED, at=dsn.at, data=data, source=SOURCE, now=now, mail_id=mail_id
    )
    if failure.kind == "policy":
        report.policy.append(f"{dsn.label}: {failure.address} {failure.status} {failure.diagnostic}".rstrip())
        return
    if failure.kind == "hard":
        report.hard += 1
    else:
        report.soft += 1
    before = store.contact(contact_id)
    if repeated_soft or (before is not None and before["bounced_at"]):
        return
    if contacts_module.mark_bounced(store, contact_id, failure.kind, now):
        report.suppressed += 1
