"""Contacts: import, tags, stage, fields, consent and events, and who may receive what.

The consent rule lives here and only here (`may_receive`): the engine, the
campaigns and the delivery workers all ask it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edumail import eventdata, events, plain_address
from edumail.bounce_charge import (
    charged_contact,
    mark_bounced,  # noqa: F401 (SPEC 19's rule; callers say contacts.mark_bounced)
)
from edumail.errors import InputError, NotFound
from edumail.store import Store

# Events that come from edumail's own bookkeeping, not from the person or the
# centre's systems: they are not signs of life for the 3-year purge rule.
_NOT_INBOUND = {
    events.EMAIL_SENT,
    events.EMAIL_OPENED,
    events.BOUNCED,
    events.TAG_ADDED,
    events.TAG_REMOVED,
    events.STAGE_CHANGED,
    events.CONSENT_CHANGED,
    events.UNSUBSCRIBED,
}
CORE_FIELDS = ("email", "first_name", "last_name", "stage", "tags", "consent", "timezone")


@functools.lru_cache(maxsize=4096)
def _valid_domain(domain: str) -> str | None:
    """email_validator's normalized form of a domain, or None; cached, as most contacts share a few domains."""
    plain = plain_address.domain(domain)
    if plain is not None:
        return plain
    from email_validator import EmailNotValidError, validate_email  # noqa: PLC0415 - 28 ms of regexes

    try:
        return str(validate_email(f"a@{domain}", check_deliverability=False).domain).lower()
    except (EmailNotValidError, ValueError):
        return None


def normalize_email(text: str) -> str:
    """A validated, lower-cased address, or InputError saying what is wrong."""
    candidate = (text or "").strip()
    if not candidate:
        raise InputError("empty e-mail address")
    # Imports validate every row: a plain address costs a regex and a cached domain check, the rest
    # (accents, quotes, mistakes) goes through email_validator, which also words the error.
    local, at, domain = candidate.lower().rpartition("@")
    if at and len(candidate) <= 254 and plain_address.plain_local(local):
        valid = _valid_domain(domain)
        if valid is not None:
            return f"{local}@{valid}"
    from email_validator import EmailNotValidError, validate_email  # noqa: PLC0415 - 28 ms of regexes

    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid e-mail address {candidate!r}: {exc}") from None
    return checked.normalized.lower()


def suppression_salt(store: Store) -> str:
    """The project's salt for address hashes, made on first use."""
    salt = store.get_meta("suppression_salt")
    if salt is None:
        with store.transaction():
            salt = store.get_meta("suppression_salt")
            if salt is None:
                salt = secrets.token_hex(16)
                store.set_meta("suppression_salt", salt)
    return salt


def hash_address(salt: str, email: str) -> str:
    """Salted SHA-256 of an address: what the suppression list keeps of a forgotten person."""
    return hashlib.sha256(f"{salt}:{email.strip().lower()}".encode()).hexdigest()


def suppression_hash(store: Store, email: str) -> str:
    """The suppression-list hash of an address in this project."""
    return hash_address(suppression_salt(store), email)


def is_forgotten(store: Store, email: str) -> bool:
    return store.is_suppressed(suppression_hash(store, email))


def require(store: Store, email: str) -> dict[str, Any]:
    """The contact with this address, or NotFound."""
    contact = store.contact_by_email(email)
    if contact is None or contact["forgotten_at"]:
        raise NotFound(f"no contact {email.strip()!r} (see `edumail contacts list`)")
    return contact


def get_or_create(store: Store, email: str, now: datetime, source: str) -> tuple[dict[str, Any], bool]:
    """The contact for an address, created with consent `unknown` if new."""
    address = normalize_email(email)
    found = store.contact_by_email(address)
    if found is not None:
        return found, False
    if is_forgotten(store, address):
        raise InputError(f"{address} asked to be forgotten; edumail will not recreate this contact")
    stamp = now
    with store.transaction():
        contact_id = store.insert_contact({"email": address, "consent": events.UNKNOWN}, stamp)
        store.log_consent(contact_id, stamp, events.UNKNOWN, None, source, {"created_by": source})
    created = store.contact(contact_id)
    assert created is not None
    return created, True


@dataclass
class Found:
    """What record_events_by_address did: how many contacts it created, whose rows it dropped."""

    created: int = 0
    forgotten: frozenset[str] = frozenset()


def record_events_by_address(
    store: Store, rows: list[tuple[str, str, str, str, str | None]], *, source: str, created_by: str, now: datetime
) -> Found:
    """Many events at once, as record_event_for, each (address, name, then as the store keeps them: at as
    to_db's text, data as JSON text, its session): a new address becomes a contact (consent unknown), a
    forgotten person is not recreated and their rows are dropped (Found.forgotten).

    Each distinct address gets a slot (its rank of first appearance) and the rest works on lists by
    slot: an import names a hundred thousand addresses, and each lookup in a dict that size misses the
    processor's caches."""
    slots: dict[str, int] = {}
    row_slots: list[int] = []
    latest: list[str] = []  # by slot: the last sign of life, as to_db's text (which sorts as the times do)
    for address, name, at, _, _ in rows:
        slot = slots.get(address)
        if slot is None:
            slot = slots[address] = len(latest)
            latest.append("")
        row_slots.append(slot)
        if name not in _NOT_INBOUND and latest[slot] < at:
            latest[slot] = at
    addresses = list(slots)
    with store.transaction():
        known = store.contact_ids_by_email(addresses)
        ids: list[int | None] = [known.get(address) for address in addresses]
        new = [slot for slot, contact_id in enumerate(ids) if contact_id is None]
        forgotten = _forgotten(store, [addresses[slot] for slot in new]) if new else frozenset()
        created = [slot for slot in new if addresses[slot] not in forgotten] if forgotten else new
        first = store.insert_bare_contacts(
            [addresses[slot] for slot in created],
            events.UNKNOWN,
            now,
            created_by,
            {"created_by": created_by},
            inbound=[latest[slot] or None for slot in created],
        )
        for offset, slot in enumerate(created):
            ids[slot] = first + offset
        store.insert_encoded_events(
            [
                (contact_id, *row[1:])
                for slot, row in zip(row_slots, rows, strict=True)
                if (contact_id := ids[slot]) is not None
            ],
            source,
            now,
        )
        fresh = set(created)
        store.touch_inbound_texts(
            {
                contact_id: at
                for slot, at in enumerate(latest)
                if at and slot not in fresh and (contact_id := ids[slot]) is not None
            }
        )
    return Found(len(created), forgotten)


def _forgotten(store: Store, new: list[str]) -> frozenset[str]:
    """The new addresses of people who asked to be forgotten (SPEC 20: never recreated)."""
    suppressed = store.suppressed_hashes()
    if not suppressed:
        return frozenset()
    salt = suppression_salt(store)
    return frozenset(address for address in new if hash_address(salt, address) in suppressed)


def record_events(
    store: Store, rows: list[tuple[int, str, datetime, dict[str, Any]]], *, source: str, now: datetime
) -> None:
    """record_event for many (contact id, name, at, data) rows of one source, in one transaction."""
    latest: dict[int, datetime] = {}
    for contact_id, name, at, _ in rows:
        if name not in _NOT_INBOUND and (contact_id not in latest or latest[contact_id] < at):
            latest[contact_id] = at
    with store.transaction():
        store.insert_events(rows, source, now)
        store.touch_inbound_many(latest)


def record_encoded_events(
    store: Store, rows: list[tuple[int, str, str, str, str | None]], *, source: str, now: datetime
) -> None:
    """record_events with each row as the store keeps it: (contact id, name, at as to_db's text, data as JSON
    text, its session)."""
    latest: dict[int, str] = {}  # to_db's text sorts as the times do
    for contact_id, name, at, _, _ in rows:
        if name not in _NOT_INBOUND and latest.get(contact_id, "") < at:
            latest[contact_id] = at
    with store.transaction():
        store.insert_encoded_events(rows, source, now)
        store.touch_inbound_texts(latest)


def record_event(
    store: Store,
    contact_id: int,
    name: str,
    *,
    at: datetime,
    data: dict[str, Any] | None = None,
    source: str,
    now: datetime,
    mail_id: int | None = None,
    machine: bool = False,
) -> int:
    """Record one event for a contact; returns its id."""
    stamp = at
    with store.transaction():
        event_id = store.insert_event(
            contact_id, name, stamp, data or {}, source, now, mail_id=mail_id, machine=machine
        )
        if name not in _NOT_INBOUND and not machine:
            store.touch_inbound(contact_id, stamp)
    return event_id


def record_sent(store: Store, mail: dict[str, Any], *, at: datetime, data: dict[str, Any]) -> None:
    """A mail the server accepted: its contact's email_sent event, and the soft-bounce streak it ends (SPEC 19).

    The journal calls it when it replays a mail a full disk kept aside; delivery records its mails by batch.
    """
    record_sent_many(store, [(mail, data)], at=at)


def record_sent_many(store: Store, sent: list[tuple[dict[str, Any], dict[str, Any]]], *, at: datetime) -> None:
    """record_sent for many (mail, data), in a few statements: what delivery records after each round."""
    rows = [
        (int(mail["contact_id"]), data, int(mail["id"])) for mail, data in sent if mail.get("contact_id") is not None
    ]
    if not rows:
        return
    with store.transaction():
        store.insert_sent_events(rows, at)
        store.clear_soft_bounces_of([int(mail["contact_id"]) for mail, _ in sent if charged_contact(mail) is not None])


def record_event_for(
    store: Store, email: str, name: str, *, at: datetime, data: dict[str, Any], source: str, now: datetime
) -> int:
    """Record an event by address, creating an unknown contact (consent `unknown`) if needed."""
    if not name or not name.strip():
        raise InputError("an event needs a name")
    eventdata.check_text(name, "name")
    eventdata.check(data)
    from edumail import sessions  # noqa: PLC0415 - sessions builds on this module

    sessions.check_link(store, name.strip(), data)
    contact, _ = get_or_create(store, email, now, source)
    return record_event(store, contact["id"], name.strip(), at=at, data=data, source=source, now=now)


def add_tags(store: Store, contact_id: int, tags: list[str], now: datetime, source: str) -> list[str]:
    """Add tags; records `tag_added` for each new one. Returns the tags added."""
    added = []
    with store.transaction():
        for tag in clean_tags(tags):
            if store.add_tag(contact_id, tag, now):
                record_event(store, contact_id, events.TAG_ADDED, at=now, data={"tag": tag}, source=source, now=now)
                added.append(tag)
    return added


def remove_tags(store: Store, contact_id: int, tags: list[str], now: datetime, source: str) -> list[str]:
    """Remove tags; records `tag_removed` for each one present. Returns the tags removed."""
    removed = []
    with store.transaction():
        for tag in clean_tags(tags):
            if store.remove_tag(contact_id, tag):
                record_event(store, contact_id, events.TAG_REMOVED, at=now, data={"tag": tag}, source=source, now=now)
                removed.append(tag)
    return removed


def set_stage(store: Store, contact_id: int, stage: str, now: datetime, source: str) -> bool:
    """Change the CRM stage; records `stage_changed` {from, to}. False when unchanged."""
    stage = stage.strip()
    contact = store.contact(contact_id)
    if contact is None:
        raise NotFound(f"no contact #{contact_id}")
    if contact["stage"] == stage:
        return False
    with store.transaction():
        store.update_contact(contact_id, {"stage": stage}, now)
        record_event(
            store,
            contact_id,
            events.STAGE_CHANGED,
            at=now,
            data={"from": contact["stage"], "to": stage},
            source=source,
            now=now,
        )
    return True


def set_fields(store: Store, contact_id: int, values: dict[str, Any], now: datetime) -> None:
    """Set custom fields (core columns first_name, last_name, timezone are set directly)."""
    contact = store.contact(contact_id)
    if contact is None:
        raise NotFound(f"no contact #{contact_id}")
    fields = json.loads(contact["fields"] or "{}")
    direct: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("first_name", "last_name", "timezone"):
            direct[key] = "" if value is None else str(value)
        elif key in ("email", "stage", "consent", "tags"):
            raise InputError(f"field {key!r} cannot be set this way (use the stage/tag/consent commands)")
        else:
            fields[key] = value
    direct["fields"] = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    with store.transaction():
        store.update_contact(contact_id, direct, now)


def set_consent(
    store: Store,
    contact_id: int,
    consent: str,
    *,
    basis: str | None,
    now: datetime,
    source: str,
    proof: dict[str, Any],
) -> bool:
    """Change consent, log it with its proof, record `consent_changed`. False when unchanged."""
    if consent not in events.CONSENT_STATES:
        raise InputError(f"consent must be one of {', '.join(events.CONSENT_STATES)}, not {consent!r}")
    if basis is not None and basis not in events.BASES:
        raise InputError(f"consent basis must be one of {', '.join(events.BASES)}, not {basis!r}")
    if consent == events.OPTED_IN and basis is None:
        basis = "opt_in"
    if consent != events.OPTED_IN:
        basis = None
    contact = store.contact(contact_id)
    if contact is None:
        raise NotFound(f"no contact #{contact_id}")
    if contact["consent"] == consent and contact["consent_basis"] == basis:
        return False
    stamp = now
    with store.transaction():
        store.update_contact(contact_id, {"consent": consent, "consent_basis": basis}, stamp)
        store.log_consent(contact_id, stamp, consent, basis, source, proof)
        record_event(
            store,
            contact_id,
            events.CONSENT_CHANGED,
            at=now,
            data={"from": contact["consent"], "to": consent, "basis": basis, "source": source},
            source=source,
            now=now,
        )
    return True


def may_receive(contact: dict[str, Any], purpose: str) -> str | None:
    """None when a mail of this purpose may go to this contact, else the reason it may not."""
    if contact.get("forgotten_at"):
        return "forgotten"
    if contact.get("bounced_at"):
        return "bounced"
    if purpose == events.SERVICE:
        return None
    if contact.get("consent") == events.OPTED_OUT:
        return "opted out"
    if contact.get("consent") != events.OPTED_IN or not contact.get("consent_basis"):
        return "no marketing consent"
    return None


def template_view(contact: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    """What templates see as `contact`: core fields, tags, and custom fields flattened in."""
    view: dict[str, Any] = json.loads(contact.get("fields") or "{}")
    view.update(
        {
            "email": contact["email"],
            "first_name": contact.get("first_name") or "",
            "last_name": contact.get("last_name") or "",
            "stage": contact.get("stage") or "",
            "tags": list(tags),
            "consent": contact.get("consent") or events.UNKNOWN,
            "timezone": contact.get("timezone") or "",
        }
    )
    return view


def display_name(contact: dict[str, Any]) -> str:
    return " ".join(p for p in (contact.get("first_name") or "", contact.get("last_name") or "") if p).strip()


def clean_tags(tags: list[str]) -> list[str]:
    result = []
    for tag in tags:
        for part in str(tag).split(","):
            part = part.strip()
            if part and part not in result:
                result.append(part)
    return result
