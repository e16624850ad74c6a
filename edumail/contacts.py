"""Contacts: import, tags, stage, fields, consent and events, and who may receive what.

The consent rule lives here and only here (`may_receive`): the engine, the
campaigns and the delivery workers all ask it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

from edumail import clock, events, import_rules, journeys
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


def normalize_email(text: str) -> str:
    """A validated, lower-cased address, or InputError saying what is wrong."""
    candidate = (text or "").strip()
    if not candidate:
        raise InputError("empty e-mail address")
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


def record_event_for(
    store: Store, email: str, name: str, *, at: datetime, data: dict[str, Any], source: str, now: datetime
) -> int:
    """Record an event by address, creating an unknown contact (consent `unknown`) if needed."""
    if not name or not name.strip():
        raise InputError("an event needs a name")
    contact, _ = get_or_create(store, email, now, source)
    return record_event(store, contact["id"], name.strip(), at=at, data=data, source=source, now=now)


def add_tags(store: Store, contact_id: int, tags: list[str], now: datetime, source: str) -> list[str]:
    """Add tags; records `tag_added` for each new one. Returns the tags added."""
    added = []
    with store.transaction():
        for tag in _clean_tags(tags):
            if store.add_tag(contact_id, tag, now):
                record_event(store, contact_id, events.TAG_ADDED, at=now, data={"tag": tag}, source=source, now=now)
                added.append(tag)
    return added


def remove_tags(store: Store, contact_id: int, tags: list[str], now: datetime, source: str) -> list[str]:
    """Remove tags; records `tag_removed` for each one present. Returns the tags removed."""
    removed = []
    with store.transaction():
        for tag in _clean_tags(tags):
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


def mark_bounced(store: Store, contact_id: int, kind: str, now: datetime) -> bool:
    """Count a bounce: hard suppresses at once, the third soft one too. True when now suppressed."""
    contact = store.contact(contact_id)
    if contact is None:
        return False
    stamp = now
    with store.transaction():
        if kind == "hard":
            suppressed = True
            store.update_contact(contact_id, {"bounced_at": contact["bounced_at"] or stamp}, stamp)
        else:
            soft = int(contact["soft_bounces"] or 0) + 1
            changes: dict[str, Any] = {"soft_bounces": soft}
            if soft >= 3 and not contact["bounced_at"]:
                changes["bounced_at"] = stamp
            store.update_contact(contact_id, changes, stamp)
            suppressed = soft >= 3
        if suppressed:
            journeys.end_all(store, contact_id, reason="bounced", now=now, purpose=None)
    return suppressed


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


def _clean_tags(tags: list[str]) -> list[str]:
    result = []
    for tag in tags:
        for part in str(tag).split(","):
            part = part.strip()
            if part and part not in result:
                result.append(part)
    return result


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    kept_opted_out: int = 0
    suppressed: int = 0
    stages_kept: int = 0
    problems: list[str] | None = None

    def summary(self) -> str:
        parts = [f"{self.created} created", f"{self.updated} updated", f"{self.skipped} skipped"]
        if self.unchanged:
            parts.insert(2, f"{self.unchanged} unchanged")
        if self.kept_opted_out:
            parts.append(f"{self.kept_opted_out} kept opted out")
        if self.suppressed:
            parts.append(f"{self.suppressed} refused (forgotten)")
        if self.stages_kept:
            parts.append(
                f"{self.stages_kept} stage{'s' if self.stages_kept != 1 else ''} kept as edumail set "
                "them since the last import (--overwrite-stage takes the file's)"
            )
        return ", ".join(parts)


# --- CSV import ------------------------------------------------------------------

_ALIASES = {
    "email": "email",
    "e_mail": "email",
    "mail": "email",
    "courriel": "email",
    "adresse_email": "email",
    "adresse_e_mail": "email",
    "adresse_mail": "email",
    "first_name": "first_name",
    "firstname": "first_name",
    "prenom": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "nom": "last_name",
    "nom_de_famille": "last_name",
    "stage": "stage",
    "etape": "stage",
    "tags": "tags",
    "tag": "tags",
    "etiquettes": "tags",
    "timezone": "timezone",
    "fuseau_horaire": "timezone",
    **import_rules.COLUMN_ALIASES,
}
_RESERVED = {"consent", "basis", "id", "created_at", "updated_at", "consent_basis", "imported_stage", "imported_at"}


def import_contacts(
    store: Store,
    path: Path,
    *,
    now: datetime,
    consent: str | None = None,
    basis: str | None = None,
    source: str | None = None,
    tags: list[str] | None = None,
    overwrite_stage: bool = False,
) -> ImportReport:
    """Upsert contacts from a CSV file in one transaction; bad rows are reported and skipped."""
    from edumail import csvfile

    header, reader = csvfile.rows(path)
    columns = {name: _ALIASES.get(name, name) for name in header if name}
    import_rules.check_options(consent, basis, "consent" in columns.values())
    if "email" not in columns.values():
        found = ", ".join(header) or "nothing"
        raise InputError(f"{path}:1: no email column (found: {found}); name one column email")
    report = ImportReport(problems=[])
    problems = report.problems
    assert problems is not None
    source_text = source or f"import {path.name}"
    extra_tags = list(tags or [])
    suppressed, salt = store.suppressed_hashes(), suppression_salt(store)
    parsed: list[tuple[int, str, dict[str, str]]] = []
    for line, row in reader:
        values = {columns[k]: v for k, v in row.items() if k in columns}
        try:
            address = normalize_email(values.get("email", ""))
            import_rules.row_consent(values, consent, basis)
        except InputError as exc:
            problems.append(f"{path.name}:{line}: {exc}; row skipped")
            report.skipped += 1
            continue
        if values.get("timezone"):
            try:
                clock.zone(values["timezone"])
            except InputError as exc:
                problems.append(f"{path.name}:{line}: {exc}; row skipped")
                report.skipped += 1
                continue
        parsed.append((line, address, values))
    merged = _merge_duplicates(parsed, path.name, problems)
    existing = store.contacts_by_emails(list(merged))
    with store.transaction():
        for address, (line, values, duplicates) in merged.items():
            if hash_address(salt, address) in suppressed and address not in existing:
                problems.append(f"{path.name}:{line}: {address} asked to be forgotten; not imported")
                report.suppressed += 1 + duplicates
                report.skipped += 1 + duplicates
                continue
            wanted = import_rules.row_consent(values, consent, basis)
            file_stage = values.get("stage", "")
            proof = {"file": path.name, "line": line, "command": "contacts import"}
            if wanted.from_cell:
                proof["column"] = "consent"
            contact = existing.get(address)
            row_tags = _clean_tags([values.get("tags", ""), *extra_tags])
            if contact is None:
                contact_id = _create_from_row(
                    store, address, values, now, wanted.state, wanted.basis, source_text, proof
                )
                report.created += 1
                changed = True
            else:
                if not overwrite_stage and import_rules.keeps_stage(contact, values.get("stage", "")):
                    report.stages_kept += 1
                    values = {k: v for k, v in values.items() if k != "stage"}
                changed = _update_from_row(store, contact, values, now)
                if wanted.state is not None:
                    if contact["consent"] == events.OPTED_OUT and wanted.state != events.OPTED_OUT:
                        report.kept_opted_out += 1
                    elif set_consent(
                        store, contact["id"], wanted.state, basis=wanted.basis, now=now, source=source_text, proof=proof
                    ):
                        changed = True
                contact_id = contact["id"]
                if changed:
                    report.updated += 1
                else:
                    report.unchanged += 1
            if file_stage:
                store.set_imported_stage(contact_id, file_stage, now)
            if (
                row_tags
                and add_tags(store, contact_id, row_tags, now, source_text)
                and contact is not None
                and not changed
            ):
                report.unchanged -= 1
                report.updated += 1
                changed = True
            # Later rows for the same address updated it (or changed nothing).
            if changed:
                report.updated += duplicates
            else:
                report.unchanged += duplicates
    return report


def _merge_duplicates(
    parsed: list[tuple[int, str, dict[str, str]]], file_name: str, problems: list[str]
) -> dict[str, tuple[int, dict[str, str], int]]:
    """One entry per address: (first line, cells with later non-empty ones winning, duplicate rows)."""
    merged: dict[str, tuple[int, dict[str, str], int]] = {}
    for line, address, values in parsed:
        if address not in merged:
            merged[address] = (line, dict(values), 0)
            continue
        first, current, duplicates = merged[address]
        problems.append(f"{file_name}:{line}: {address} already on line {first}; merged into one contact")
        tags = _clean_tags([current.get("tags", ""), values.get("tags", "")])
        current.update({k: v for k, v in values.items() if v})
        current["tags"] = ",".join(tags)
        merged[address] = (first, current, duplicates + 1)
    return merged


def _fields_from_row(values: dict[str, str]) -> dict[str, str]:
    skip = {"email", "first_name", "last_name", "stage", "tags", "timezone"} | _RESERVED
    return {k: v for k, v in values.items() if k not in skip and v != ""}


def _create_from_row(
    store: Store,
    address: str,
    values: dict[str, str],
    now: datetime,
    consent: str | None,
    basis: str | None,
    source: str,
    proof: dict[str, Any],
) -> int:
    state = consent or events.UNKNOWN
    basis = (basis or "opt_in") if state == events.OPTED_IN else None
    stamp = now
    contact_id = store.insert_contact(
        {
            "email": address,
            "first_name": values.get("first_name", ""),
            "last_name": values.get("last_name", ""),
            "stage": values.get("stage", ""),
            "timezone": values.get("timezone") or None,
            "consent": state,
            "consent_basis": basis,
            "fields": json.dumps(_fields_from_row(values), ensure_ascii=False, sort_keys=True),
        },
        stamp,
    )
    store.log_consent(contact_id, stamp, state, basis, source, proof)
    if values.get("stage"):
        record_event(
            store,
            contact_id,
            events.STAGE_CHANGED,
            at=now,
            data={"from": "", "to": values["stage"]},
            source=source,
            now=now,
        )
    return contact_id


def _update_from_row(store: Store, contact: dict[str, Any], values: dict[str, str], now: datetime) -> bool:
    """Apply non-empty cells to an existing contact; True when anything changed."""
    changes: dict[str, Any] = {}
    for key in ("first_name", "last_name", "timezone"):
        if values.get(key) and values[key] != (contact.get(key) or ""):
            changes[key] = values[key]
    fields = json.loads(contact.get("fields") or "{}")
    merged = {**fields, **_fields_from_row(values)}
    if merged != fields:
        changes["fields"] = json.dumps(merged, ensure_ascii=False, sort_keys=True)
    if changes:
        store.update_contact(contact["id"], changes, now)
    changed = bool(changes)
    if values.get("stage") and values["stage"] != contact.get("stage"):
        set_stage(store, contact["id"], values["stage"], now, "import")
        changed = True
    return changed


@dataclass
class EventImportReport:
    recorded: int = 0
    contacts_created: int = 0
    skipped: int = 0
    problems: list[str] | None = None


def import_events(store: Store, path: Path, *, now: datetime, tz: Any) -> EventImportReport:
    """Record events from a CSV (email, name, at, then data columns) in one transaction."""
    from edumail import csvfile

    header, reader = csvfile.rows(path)
    columns = {name: _ALIASES.get(name, name) for name in header if name}
    missing = [c for c in ("email", "name") if c not in columns.values()]
    if missing:
        raise InputError(
            f"{path}:1: missing column {' and '.join(missing)} (expected email, name, at, then data columns)"
        )
    report = EventImportReport(problems=[])
    problems = report.problems
    assert problems is not None
    parsed = []
    for line, row in reader:
        values = {columns[k]: v for k, v in row.items() if k in columns}
        try:
            address = normalize_email(values.get("email", ""))
            name = values.get("name", "").strip()
            if not name:
                raise InputError("empty event name")
            at = clock.parse_iso(values["at"], tz) if values.get("at") else now
        except InputError as exc:
            problems.append(f"{path.name}:{line}: {exc}; row skipped")
            report.skipped += 1
            continue
        data = {k: v for k, v in values.items() if k not in ("email", "name", "at") and v != ""}
        parsed.append((line, address, name, at, data))
    with store.transaction():
        for line, address, name, at, data in parsed:
            try:
                contact, created = get_or_create(store, address, now, f"events import {path.name}")
            except InputError as exc:
                problems.append(f"{path.name}:{line}: {exc}; row skipped")
                report.skipped += 1
                continue
            report.contacts_created += int(created)
            record_event(store, contact["id"], name, at=at, data=data, source=f"import {path.name}", now=now)
            report.recorded += 1
    return report
