"""ARF feedback reports (RFC 5965) -> `complained` events and suppression (SPEC 18).

A report is a multipart/report; report-type=feedback-report with a
message/feedback-report part (Feedback-Type, Original-Rcpt-To...) and the
mail complained about as message/rfc822 or text/rfc822-headers, as Yahoo,
Microsoft JMRP and relays send them. The mail is found by our Message-ID in
the returned headers, else the contact by Original-Rcpt-To or the original
To (then its last mail). Marketing stops at once through
provider_events.suppress_complaint, the function webhooks use too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from edumail import bounces, contacts, events, provider_events
from edumail.errors import InputError
from edumail.store import Store

SOURCE = "complaints import"
_MSGID = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


@dataclass
class Complaint:
    """One feedback report: who complained about which mail."""

    label: str
    key: str
    at: datetime
    feedback_type: str
    original_ids: list[str]
    addresses: list[str]
    user_agent: str = ""


@dataclass
class ComplaintReport:
    """The summary of one `complaints import`."""

    messages: int = 0
    recorded: int = 0
    suppressed: int = 0
    already: int = 0
    not_reports: int = 0
    unmatched: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.messages} messages: {self.recorded} complaint{'' if self.recorded == 1 else 's'} recorded;"
            f" {self.suppressed} contacts suppressed; {len(self.unmatched)} unmatched;"
            f" {self.already} already imported; {self.not_reports} not a feedback report;"
            f" {len(self.unreadable)} unreadable"
        )

    @property
    def done_all(self) -> bool:
        return not self.unmatched and not self.unreadable


def import_complaints(store: Store, path: Path, now: datetime) -> ComplaintReport:
    """Record the complaints of an mbox file or a Maildir folder."""
    return record_messages(store, bounces.read_mailbox(path), now)


def record_messages(store: Store, messages: Iterable[tuple[str, bytes]], now: datetime) -> ComplaintReport:
    """Each readable report is recorded in its own transaction; an unreadable one is listed and skipped."""
    report = ComplaintReport()
    for label, raw in messages:
        report.messages += 1
        try:
            complaint = parse_report(bounces.parse_message(raw, label), raw, label, now)
        except InputError as exc:
            report.unreadable.append(f"{exc}; skipped")
            continue
        if complaint is None:
            report.not_reports += 1
            continue
        if store.seen_inbound(complaint.key):
            report.already += 1
            continue
        with store.transaction():
            _record(store, complaint, now, report)
            store.mark_inbound_seen(complaint.key, now)
    return report


# --- parsing -------------------------------------------------------------------------------


def is_feedback_report(msg: Message) -> bool:
    return msg.get_content_type() == "multipart/report" and (
        str(msg.get_param("report-type", "") or "").lower() == "feedback-report"
    )


def parse_report(msg: Message, raw: bytes, label: str, now: datetime) -> Complaint | None:
    """The complaint an ARF report makes, or None when the message is not a feedback report."""
    if not is_feedback_report(msg):
        return None
    fields = _feedback_fields(msg)
    if fields is None:
        raise InputError(f"{label}: malformed feedback report (no message/feedback-report part)")
    returned = _returned_headers(msg)
    ids = _MSGID.findall(str(returned.get("Message-ID", ""))) if returned is not None else []
    addresses = _addresses(fields.get_all("Original-Rcpt-To") or [])
    if returned is not None:
        addresses += [a for a in _addresses(returned.get_all("To") or []) if a not in addresses]
    if not ids and not addresses:
        raise InputError(f"{label}: malformed feedback report (no original Message-ID, Original-Rcpt-To or To)")
    return Complaint(
        label=label,
        key="arf:" + bounces.message_key(msg, raw),
        at=bounces.message_date(msg, now),
        feedback_type=bounces.unfold(fields.get("Feedback-Type", "")).lower() or "abuse",
        original_ids=list(dict.fromkeys(ids)),
        addresses=addresses,
        user_agent=bounces.unfold(fields.get("User-Agent", "")),
    )


def _feedback_fields(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        return HeaderParser().parsestr(bounces.decoded(part).strip() + "\n")
    return None


def _returned_headers(msg: Message) -> Message | None:
    """The headers of the mail complained about (message/rfc822 or text/rfc822-headers)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            return HeaderParser().parsestr(bounces.decoded(part))
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
    return None


def _addresses(values: list[Any]) -> list[str]:
    found = []
    for _, address in getaddresses([bounces.unfold(v) for v in values]):
        address = address.strip().strip("<>").lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


# --- recording -------------------------------------------------------------------------------


def _record(store: Store, complaint: Complaint, now: datetime, report: ComplaintReport) -> None:
    matched = _match(store, complaint)
    if matched is None:
        wanted = ", ".join([*(f"<{i}>" for i in complaint.original_ids), *complaint.addresses])
        report.unmatched.append(f"{complaint.label}: no mail or contact of this project for {wanted}")
        return
    contact_id, mail = matched
    mail_id = int(mail["id"]) if mail else None
    if mail_id is not None and store.complaint_recorded(contact_id, mail_id):
        report.already += 1
        return
    data: dict[str, Any] = {"feedback_type": complaint.feedback_type, "report": complaint.key[len("arf:") :]}
    if complaint.user_agent:
        data["reporter"] = complaint.user_agent
    contacts.record_event(
        store, contact_id, events.COMPLAINED, at=complaint.at, data=data, source=SOURCE, now=now, mail_id=mail_id
    )
    report.recorded += 1
    proof = {"report": data["report"], "mail_id": mail_id, "feedback_type": complaint.feedback_type}
    if provider_events.suppress_complaint(store, contact_id, source=SOURCE, proof=proof, now=now):
        report.suppressed += 1


def _match(store: Store, complaint: Complaint) -> tuple[int, dict[str, Any] | None] | None:
    """(contact id, mail): by our Message-ID, else by the recipient's address and its last mail."""
    mails = store.mails_by_message_ids(complaint.original_ids)
    for message_id in complaint.original_ids:
        mail = mails.get(message_id)
        if mail is not None and mail["contact_id"] is not None and mail["template"] != "__notify__":
            contact = store.contact(int(mail["contact_id"]))
            if contact is not None and not contact["forgotten_at"]:
                return int(contact["id"]), mail
    if mails:
        return None  # one of our mails, but a staff notice or a forgotten person: nobody to charge
    for address in complaint.addresses:
        contact = store.contact_by_email(address)
        if contact is not None and not contact["forgotten_at"]:
            return int(contact["id"]), store.last_mail_to(int(contact["id"]))
    return None
