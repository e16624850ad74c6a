"""Contacts and events from CSV files: `edumail contacts import` and `edumail events import`.

Column names are matched loosely (French and English aliases); each bad row
is reported as file:line and skipped, the rest is imported in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from edumail import clock, csvfile, eventdata, events, import_rules, sessions
from edumail.contacts import (
    clean_tags,
    hash_address,
    normalize_email,
    record_encoded_events,
    record_events_by_address,
    suppression_salt,
)
from edumail.contacts_update import COMPARED, Updates, fields_from_row
from edumail.errors import InputError
from edumail.store import Store
from edumail.store.contacts import session_of


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
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode  # json.dumps(..., options) makes one per call


_Event = tuple[str, str, str, str, "str | None"]  # address, name, then at, data and session as stored
_Encoded = tuple[int, str, str, str, "str | None"]  # an event as the store keeps it (contact id first)
_EVENT_COLUMNS = frozenset(("email", "name", "at"))  # the other columns of an events file are its data


@dataclass
class _Batch:
    """What every row of one import shares."""

    path: Path
    now: datetime
    consent: str | None
    basis: str | None
    source: str
    tags: list[str]
    overwrite_stage: bool
    report: ImportReport
    problems: list[str]


@csvfile.cycle_collector_paused()
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
    header, reader = csvfile.rows(path, _ALIASES)
    columns = {name: _ALIASES.get(name, name) for name in header if name}
    import_rules.check_options(consent, basis, "consent" in columns.values())
    if "email" not in columns.values():
        found = ", ".join(header) or "nothing"
        raise InputError(f"{path}:1: no email column (found: {found}); name one column email")
    problems: list[str] = []
    report = ImportReport(problems=problems)
    batch = _Batch(
        path, now, consent, basis, source or f"import {path.name}", list(tags or []), overwrite_stage, report, problems
    )
    merged = _merge_duplicates(_parse_rows(reader, batch), path.name, problems)
    suppressed, salt = store.suppressed_hashes(), suppression_salt(store)
    new: list[tuple[str, int, dict[str, str]]] = []
    with store.transaction():  # read inside the write transaction: nothing changes them meanwhile
        existing = store.contacts_by_emails(list(merged), COMPARED)
        updates = Updates(store, batch, _tags_named(merged, existing, batch.tags))
        for address, (line, values, duplicates) in merged.items():
            if suppressed and address not in existing and hash_address(salt, address) in suppressed:
                problems.append(f"{path.name}:{line}: {address} asked to be forgotten; not imported")
                report.suppressed += 1 + duplicates
                report.skipped += 1 + duplicates
                continue
            if address not in existing:
                new.append((address, line, values))
                report.updated += duplicates  # later rows for a new address are part of its creation
                continue
            changed = updates.row(line, values, existing[address])
            # Later rows for the same address updated it (or changed nothing).
            if changed:
                report.updated += duplicates
            else:
                report.unchanged += duplicates
        updates.write(store)
        _create_all(store, batch, new)
    return report


def _tags_named(
    merged: dict[str, tuple[int, dict[str, str], int]], existing: dict[str, Any], extra: list[str]
) -> list[str]:
    """Every tag the file's rows for existing contacts (and --tag) name."""
    cells = {merged[address][1].get("tags", "") for address in existing}
    return clean_tags([*cells, *extra])


def _create_all(store: Store, batch: _Batch, new: list[tuple[str, int, dict[str, str]]]) -> None:
    """The new contacts of a file in a few statements: contacts, consent log, stage and tag events."""
    rows: list[tuple[Any, ...]] = []
    consents: list[tuple[str, str | None, str]] = []
    now, stamp = batch.now, clock.to_db(batch.now)
    consent_of: dict[tuple[str | None, str | None], tuple[str, str | None, str]] = {}  # few distinct cells
    fields_of: dict[tuple[tuple[str, str], ...], str] = {}  # and few distinct custom fields
    for address, line, values in new:
        cells = (values.get("consent"), values.get("basis"))
        wanted = consent_of.get(cells)
        if wanted is None:
            wanted = consent_of[cells] = _new_consent(
                batch, import_rules.row_consent(values, batch.consent, batch.basis)
            )
        state, basis, proof = wanted
        stage = values.get("stage", "")
        fields = fields_from_row(values)
        key = tuple(fields.items())
        text = fields_of.get(key)
        if text is None:
            text = fields_of[key] = _JSON(fields)
        row = (address, values.get("first_name", ""), values.get("last_name", ""), stage)
        rows.append((*row, values.get("timezone") or None, state, basis, text, stage or None, stamp if stage else None))
        consents.append((state, basis, proof.replace('"line": 0}', f'"line": {line}}}', 1)))
    first = store.insert_contacts(rows, now)
    store.log_consents([(first + i, *c) for i, c in enumerate(consents)], now, batch.source)
    tags = [
        (first + i, tag)
        for i, (_, _, values) in enumerate(new)
        if batch.tags or values.get("tags")
        for tag in clean_tags([values.get("tags", ""), *batch.tags])
    ]
    store.add_new_tags(tags, now)
    stage_data = {stage: _JSON({"from": "", "to": stage}) for stage in {r[3] for r in rows if r[3]}}  # a few
    stages: list[_Encoded] = [
        (first + i, events.STAGE_CHANGED, stamp, stage_data[r[3]], None) for i, r in enumerate(rows) if r[3]
    ]
    record_encoded_events(store, stages, source=batch.source, now=now)
    tag_data = {tag: _JSON({"tag": tag}) for tag in {tag for _, tag in tags}}
    added: list[_Encoded] = [(cid, events.TAG_ADDED, stamp, tag_data[tag], None) for cid, tag in tags]
    record_encoded_events(store, added, source=batch.source, now=now)
    batch.report.created += len(rows)


def _new_consent(batch: _Batch, wanted: import_rules.RowConsent) -> tuple[str, str | None, str]:
    """(state, basis, proof JSON with line 0) of a new contact; the proof of a row puts in its own line."""
    state = wanted.state or events.UNKNOWN
    basis = (wanted.basis or "opt_in") if state == events.OPTED_IN else None
    proof: dict[str, Any] = {"file": batch.path.name, "line": 0, "command": "contacts import"}
    if wanted.from_cell:
        proof["column"] = "consent"
    return state, basis, _JSON(proof)


def _parse_rows(reader: Any, batch: _Batch) -> list[tuple[int, str, dict[str, str]]]:
    """(line, address, cells) of the rows that can be imported; the others reported and counted as skipped."""
    parsed: list[tuple[int, str, dict[str, str]]] = []
    consents: set[tuple[str | None, str | None]] = set()  # consent cells known to be usable (a file has few)
    for line, values in reader:
        try:
            csvfile.check(values)
            address = normalize_email(values.get("email", ""))
            cells = (values.get("consent"), values.get("basis"))
            if cells not in consents:
                import_rules.row_consent(values, batch.consent, batch.basis)
                consents.add(cells)
            if values.get("timezone"):
                clock.zone(values["timezone"])
        except InputError as exc:
            batch.problems.append(f"{batch.path.name}:{line}: {exc}; row skipped")
            batch.report.skipped += 1
            continue
        parsed.append((line, address, values))
    return parsed


def _merge_duplicates(
    parsed: list[tuple[int, str, dict[str, str]]], file_name: str, problems: list[str]
) -> dict[str, tuple[int, dict[str, str], int]]:
    """One entry per address: (first line, cells with later non-empty ones winning, duplicate rows)."""
    merged: dict[str, tuple[int, dict[str, str], int]] = {}
    for line, address, values in parsed:
        if address not in merged:
            merged[address] = (line, values, 0)  # the row's own dict: nothing else reads it
            continue
        first, current, duplicates = merged[address]
        problems.append(f"{file_name}:{line}: {address} already on line {first}; merged into one contact")
        tags = clean_tags([current.get("tags", ""), values.get("tags", "")])
        current.update({k: v for k, v in values.items() if v})
        current["tags"] = ",".join(tags)
        merged[address] = (first, current, duplicates + 1)
    return merged


@dataclass
class EventImportReport:
    recorded: int = 0
    contacts_created: int = 0
    skipped: int = 0
    problems: list[str] | None = None


@csvfile.cycle_collector_paused()
def import_events(
    store: Store,
    path: Path,
    *,
    now: datetime,
    tz: Any,
    warn: Callable[[str, dict[str, Any]], list[str]] | None = None,
) -> EventImportReport:
    """Record events from a CSV (email, name, at, then data columns) in one transaction."""
    _, keys, reader = csvfile.cells(path, _ALIASES)
    missing = [c for c in ("email", "name") if c not in keys]
    if missing:
        raise InputError(
            f"{path}:1: missing column {' and '.join(missing)} (expected email, name, at, then data columns)"
        )
    report = EventImportReport(problems=[])
    problems = report.problems
    assert problems is not None
    parsed = _parse_events(store, reader, keys, path.name, now, tz, report)
    source, created_by = f"import {path.name}", f"events import {path.name}"
    found = record_events_by_address(
        store, [row for _, row, _ in parsed], source=source, created_by=created_by, now=now
    )
    report.contacts_created, report.recorded = found.created, len(parsed)
    for line, (address, *_), _ in parsed if found.forgotten else ():
        if address in found.forgotten:
            problems.append(
                f"{path.name}:{line}: {address} asked to be forgotten; edumail will not recreate this contact;"
                " row skipped"
            )
            report.skipped += 1
            report.recorded -= 1
    if warn is not None:
        _warn(parsed, found.forgotten, warn, path.name, problems)
    return report


def _warn(
    parsed: list[tuple[int, _Event, dict[str, Any]]],
    forgotten: frozenset[str],
    warn: Callable[[str, dict[str, Any]], list[str]],
    file_name: str,
    problems: list[str],
) -> None:
    """The warnings of the recorded rows; they depend on the name and the keys given."""
    warnings: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for line, (address, name, *_), data in parsed:
        if address not in forgotten:
            key = (name, tuple(data))
            found = warnings.get(key)
            if found is None:
                found = warnings[key] = warn(name, data)
            if found:
                problems.extend(f"{file_name}:{line}: warning: {w}; recorded" for w in found)


def _parse_events(
    store: Store, reader: Any, keys: list[str], file_name: str, now: datetime, tz: Any, report: EventImportReport
) -> list[tuple[int, _Event, dict[str, Any]]]:
    """(line, event, data) of the rows that can be recorded; the others reported and skipped.
    A file repeats its times and its data: each distinct text is parsed, checked and encoded once."""
    assert report.problems is not None
    parsed = []
    times: dict[str, str] = {}
    addresses: dict[str, str] = {}
    encoded: dict[tuple[Any, ...], tuple[str, str | None]] = {}  # (name, *data items): (JSON, session)
    now_text = clock.to_db(now)
    column = {key: i for i, key in enumerate(keys) if key}  # as in a row's dict: the last of a name wins
    email, name_at, at_at = column["email"], column["name"], column.get("at")
    data_at = [(key, i) for key, i in column.items() if key not in _EVENT_COLUMNS]
    width = len(keys)
    for line, cells in reader:
        try:
            csvfile.check(cells)
            if len(cells) < width:  # a short row: its missing cells are empty
                cells += [""] * (width - len(cells))
            raw = cells[email]
            address = addresses.get(raw) or _address(addresses, raw)
            name = cells[name_at]
            if not name:
                raise InputError("empty event name")
            text = cells[at_at] if at_at is not None else ""
            at = (times.get(text) or _time(times, text, tz)) if text else now_text
            data = {key: cells[i] for key, i in data_at if cells[i]}
            key = (name, *data.items())
            data_text, session = encoded.get(key) or _encode(store, encoded, key, name, data)
        except InputError as exc:
            report.problems.append(f"{file_name}:{line}: {exc}; row skipped")
            report.skipped += 1
            continue
        parsed.append((line, (address, name, at, data_text, session), data))
    return parsed


def _encode(
    store: Store,
    encoded: dict[tuple[Any, ...], tuple[str, str | None]],
    key: tuple[Any, ...],
    name: str,
    data: dict[str, Any],
) -> tuple[str, str | None]:
    """(JSON, session) of an event's data once checked: its values, and the session it names."""
    eventdata.check(data)
    sessions.check_link(store, name, data)
    found = (_JSON(data), session_of(data))
    if len(encoded) < 100_000:
        encoded[key] = found
    return found


def _address(addresses: dict[str, str], raw: str) -> str:
    address = normalize_email(raw)
    if len(addresses) < 100_000:
        addresses[raw] = address
    return address


def _time(times: dict[str, str], text: str, tz: Any) -> str:
    at = clock.to_db(clock.parse_iso(text, tz))
    if len(times) < 100_000:
        times[text] = at
    return at
