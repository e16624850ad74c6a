"""Right of access (export), right to erasure (forget) and the CNIL 3-year purge.

Erasure keeps the rows statistics need (events by name and time, mails by
sequence, step and state) and removes everything that says who the person
was. Only a salted hash of the address survives, on the suppression list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from edumail import contacts as contacts_module
from edumail import journeys
from edumail.errors import InputError, NotFound
from edumail.store import Store

PURGE_AFTER = timedelta(days=3 * 365 + 1)  # 3 years, leap day included
CUSTOMER_STAGES = ("inscrit", "client")


# --- export ----------------------------------------------------------------------


def export(store: Store, email: str, now: datetime) -> dict[str, Any]:
    """Everything stored about one person, as JSON-ready data."""
    contact = find_contact(store, email)
    cid = contact["id"]
    journeys = store.journeys_detail_of(cid)
    steps = store.journey_log_detail_of(cid)
    return {
        "exported_at": now,
        "contact": {**contact, "fields": _json(contact["fields"])},
        "tags": store.tags_detail_of(cid),
        "consent_log": [{**row, "proof": _json(row["proof"])} for row in store.consent_log_detail_of(cid)],
        "events": [
            {**row, "data": _json(row["data"]), "machine": bool(row["machine"])} for row in store.events_of(cid)
        ],
        "journeys": [{**j, "steps": [s for s in steps if s["journey_id"] == j["id"]]} for j in journeys],
        "mails": [_mail_view(m) for m in store.mails_of(cid)],
        "webhooks": [{**t, "payload": _json(t["payload"])} for t in store.tasks_detail_of(cid)],
        "topics": store.topic_states(cid),
        "form_signups": [
            {**f, "topics": _json(f["topics"]), "form_snapshot": _json(f["form_snapshot"])}
            for f in store.form_signups_of(cid)
        ],
    }


def _mail_view(mail: dict[str, Any]) -> dict[str, Any]:
    view = {**mail, "context": _json(mail["context"]), "links": _json(mail["links"], [])}
    return view


def _json(text: str | None, default: Any = None) -> Any:
    try:
        return json.loads(text) if text else ({} if default is None else default)
    except ValueError:
        return text


def find_contact(store: Store, email: str) -> dict[str, Any]:
    """The live contact for an address, or NotFound saying whether it was forgotten."""
    address = (email or "").strip().lower()
    if not address:
        raise InputError("give the contact's e-mail address")
    contact = store.contact_by_email(address)
    if contact is not None and not contact["forgotten_at"]:
        return contact
    gone = store.suppression(contacts_module.suppression_hash(store, address))
    if gone is not None:
        day = f"{gone['at']:%Y-%m-%d}"
        raise NotFound(f"{address} was already forgotten on {day}; nothing is stored about them any more")
    raise NotFound(f"no contact {address!r} (see `edumail contacts list`)")


# --- erasure ---------------------------------------------------------------------


@dataclass
class Erasure:
    """What one erasure changed, for the summary line."""

    contact_id: int
    address: str = ""
    message_ids: list[str] = field(default_factory=list)  # its mails' outbox files go too
    events: int = 0
    mails: int = 0
    cancelled: int = 0
    journeys: int = 0

    def summary(self) -> str:
        return (
            f"contact #{self.contact_id}: personal data erased ({self.events} events, {self.mails} mails"
            f" kept for statistics without the person; {self.cancelled} queued mails cancelled,"
            f" {self.journeys} journeys ended)"
        )


def forget(store: Store, email: str, now: datetime) -> Erasure:
    """Erase a person (right to erasure): anonymise and keep only a salted hash of the address."""
    contact = find_contact(store, email)
    return anonymise(store, contact, now, reason="forgotten", suppress=True)


def anonymise(store: Store, contact: dict[str, Any], now: datetime, *, reason: str, suppress: bool) -> Erasure:
    """Erase the personal data of one contact in every table, in one transaction."""
    cid = contact["id"]
    stamp = now
    digest = contacts_module.suppression_hash(store, contact["email"])
    result = Erasure(cid, contact["email"])
    with store.transaction():
        result.message_ids = store.message_ids_of(cid)
        store.blank_journey_texts_of(cid)
        result.journeys = journeys.end_all(store, cid, reason=reason, now=now, purpose=None)
        result.cancelled = store.cancel_queued_mails_of(cid, reason)
        result.mails = store.blank_mails_of(cid, reason)
        store.blank_tasks_of(cid, reason)
        result.events = store.blank_events_of(cid)
        store.delete_tags_of(cid)
        store.erase_forms_and_topics_of(cid)
        store.blank_consent_log_of(cid)
        store.log_consent(cid, stamp, "opted_out", None, reason, {"command": _COMMANDS[reason]})
        store.anonymise_contact_row(cid, stamp)
        scrub_address(store, contact["email"])
        if suppress:
            store.add_suppression(digest, stamp, reason)
    return result


_COMMANDS = {"forgotten": "contacts forget", "purged": "purge"}
ERASED = "[erased]"


def scrub_address(store: Store, address: str) -> int:
    """The address wherever else it was written (a campaign's `--where email=...`, data, content, another
    contact's field...): replaced by [erased], in every text column of every table. Rows changed."""
    address = address.strip().lower()
    forms = dict.fromkeys([address, json.dumps(address)[1:-1]])  # as typed, and inside JSON text
    needles = {form: re.compile(rf"(?<![\w.%+-]){re.escape(form)}(?![\w-])", re.IGNORECASE) for form in forms}
    return store.scrub_text(needles, ERASED)


# --- purge (CNIL: 3 years without a sign of life) ------------------------------------


@dataclass
class PurgeReport:
    """Who the purge anonymised (or would, in a dry run)."""

    candidates: list[dict[str, Any]] = field(default_factory=list)
    kept: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    dry_run: bool = False
    erasures: list[Erasure] = field(default_factory=list)  # for the files' clean-up


def stale_prospects(store: Store, now: datetime) -> PurgeReport:
    """Prospects whose last sign of life (or creation) is more than 3 years old."""
    report = PurgeReport()
    cutoff = now - PURGE_AFTER
    for row in store.stale_prospects(cutoff, CUSTOMER_STAGES):
        service = store.active_service_sequences_of(row["id"])
        if service:
            report.kept.append((row, f"in service sequence {', '.join(service)}"))
        else:
            report.candidates.append(row)
    return report


def purge(store: Store, now: datetime, *, dry_run: bool) -> PurgeReport:
    """Anonymise the stale prospects; opted-out ones keep a hash so their objection holds."""
    report = stale_prospects(store, now)
    report.dry_run = dry_run
    if dry_run:
        return report
    with store.transaction():
        for row in report.candidates:
            contact = store.contact(row["id"])
            assert contact is not None
            erased = anonymise(store, contact, now, reason="purged", suppress=contact["consent"] == "opted_out")
            report.erasures.append(erased)
    return report
