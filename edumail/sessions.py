"""Training sessions (SPEC 13): the centre's calendar as records.

Import (CSV from a spreadsheet), `set`, `cancel` and the API all go through
`upsert`: a moved session records `session_changed` for each learner, a
cancelled one `session_cancelled`; the engine re-times or ends their session
journeys at the next run. A learner is a contact with an event naming the
session (`session: ID` in its data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from edumail import clock, contacts, csvfile, events
from edumail.errors import InputError, NotFound
from edumail.store import Store

PLANNED = "planned"
CANCELLED = "cancelled"
STATUSES = (PLANNED, CANCELLED)
TEXT_FIELDS = ("formation", "lieu", "formateur")
CORE = ("id", "formation", "start", "end", "lieu", "formateur", "status")
# What templates read as `session.*` besides its custom fields (see `view`).
VIEW_FIELDS = (*CORE, "cancel_reason")
MOVES = ("start", "end")  # changes that re-time journeys and record session_changed
# Events about one session: they must name it, and it must exist.
NEEDS_SESSION = (events.PRESENT, events.ABSENT, events.EVALUATION_COMPLETEE)

_STATUS_WORDS = {
    "planned": PLANNED,
    "prevue": PLANNED,
    "planifiee": PLANNED,
    "confirmee": PLANNED,
    "cancelled": CANCELLED,
    "canceled": CANCELLED,
    "annulee": CANCELLED,
}
_ALIASES = {
    "id": "id",
    "code": "id",
    "session": "id",
    "id_session": "id",
    "code_session": "id",
    "formation": "formation",
    "intitule": "formation",
    "start": "start",
    "debut": "start",
    "date_debut": "start",
    "date_de_debut": "start",
    "end": "end",
    "fin": "end",
    "date_fin": "end",
    "date_de_fin": "end",
    "lieu": "lieu",
    "formateur": "formateur",
    "formatrice": "formateur",
    "intervenant": "formateur",
    "status": "status",
    "statut": "status",
    "etat": "status",
}
_FRENCH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T]+(\d{1,2})[:hH](\d{2})(?::(\d{2}))?)?$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def parse_when(value: str, tz: Any) -> datetime:
    """`14/10/2026 09:30` (or `09h30`, or a date alone) or ISO 8601, local to `tz`; returns UTC."""
    text = str(value).strip()
    found = _FRENCH.match(text)
    if found:
        day, month, year, hour, minute, second = (int(g) if g else 0 for g in found.groups())
        try:
            moment = datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(clock.UTC)
        except ValueError:
            raise InputError(f"{value!r} is not a date (day/month/year: 14/10/2026 09:30)") from None
    else:
        try:
            moment = clock.parse_iso(text, tz)
        except InputError:
            raise InputError(f"{value!r} is not a date (expected 14/10/2026 09:30 or 2026-10-14T09:30)") from None
    if not 1900 <= moment.year <= 2199:
        raise InputError(f"{value!r}: the year must be between 1900 and 2199")
    return moment


def check_id(value: object) -> str:
    text = str(value or "").strip()
    if not text:
        raise InputError("a session needs an id (the centre's code, e.g. EXCEL-2026-12-LYON)")
    if not _ID.match(text):
        raise InputError(f"session id {text!r}: use letters, digits, ., _ and - (no spaces), at most 100 characters")
    return text


def parse_values(raw: dict[str, Any], tz: Any) -> dict[str, Any]:
    """Cells or JSON values -> session values (dates parsed, status checked); empty ones left out."""
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "id" or value is None or (isinstance(value, str) and not value.strip()):
            continue
        if key in MOVES:
            try:
                values[key] = parse_when(str(value), tz)
            except InputError as exc:
                raise InputError(f"{key}: {exc}") from None
        elif key == "status":
            word = csvfile.normalise_header(str(value))
            if word not in _STATUS_WORDS:
                raise InputError(f"unknown status {value!r} (expected planned or cancelled)")
            values["status"] = _STATUS_WORDS[word]
        elif key in TEXT_FIELDS:
            values[key] = str(value).strip()
        else:
            extra[key] = value.strip() if isinstance(value, str) else value
    if extra:
        values["fields"] = extra
    return values


@dataclass
class Change:
    """What one upsert did."""

    session_id: str
    created: bool = False
    moved: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False
    learners: int = 0

    def describe(self, tz: Any) -> str:
        if self.created:
            text = f"{self.session_id}: created"
        elif self.cancelled:
            text = f"{self.session_id}: cancelled"
        elif self.changed:
            text = f"{self.session_id}: " + ", ".join(self._part(name, tz) for name in self.changed)
        else:
            return f"{self.session_id}: unchanged"
        if (self.moved or self.cancelled) and not self.created:
            text += f" ({self.learners} learner(s) told)"
        return text

    def _part(self, name: str, tz: Any) -> str:
        if name in self.moved:
            old, new = self.moved[name]
            return f"{name} {clock.show(old, tz)} -> {clock.show(new, tz)}"
        if name in self.texts:
            return f"{name} -> {self.texts[name] or '(empty)'}"
        return f"{name} changed"


def upsert(
    store: Store, session_id: str, values: dict[str, Any], *, now: datetime, source: str, reason: str | None = None
) -> Change:
    """Create or update one session (in the caller's transaction, or its own)."""
    with store.transaction():
        current = store.session(session_id)
        if current is None:
            return _create(store, session_id, values, now=now, source=source, reason=reason)
        return _update(store, current, values, now=now, source=source, reason=reason)


def _check_span(session_id: str, start: datetime, end: datetime) -> None:
    if end < start:
        raise InputError(f"{session_id}: the end is before the start ({end.isoformat()} < {start.isoformat()})")


def _precheck(current: dict[str, Any] | None, session_id: str, values: dict[str, Any]) -> None:
    """What `upsert` would refuse, found before anything is written."""
    if current is None:
        missing = [k for k in MOVES if k not in values]
        if missing:
            raise InputError(f"{session_id}: a new session needs {' and '.join(missing)}")
        _check_span(session_id, values["start"], values["end"])
        return
    if current["status"] == CANCELLED and values.get("status", CANCELLED) != CANCELLED:
        raise InputError(f"{session_id}: a cancelled session cannot be planned again; give the new one its own id")
    _check_span(session_id, values.get("start", current["start"]), values.get("end", current["end"]))


def _create(
    store: Store, session_id: str, values: dict[str, Any], *, now: datetime, source: str, reason: str | None
) -> Change:
    _precheck(None, session_id, values)
    row = dict(values)
    if row.get("status") == CANCELLED:
        row["cancel_reason"] = reason or ""
    store.insert_session(session_id, row, now)
    return Change(session_id, created=True, cancelled=row.get("status") == CANCELLED)


def _update(
    store: Store, current: dict[str, Any], values: dict[str, Any], *, now: datetime, source: str, reason: str | None
) -> Change:
    session_id = current["id"]
    change = Change(session_id)
    _precheck(current, session_id, values)
    updates: dict[str, Any] = {}
    for key in (*TEXT_FIELDS, *MOVES):
        if key in values and values[key] != current[key]:
            updates[key] = values[key]
            change.changed.append(key)
            if key in TEXT_FIELDS:
                change.texts[key] = values[key]
    if "fields" in values:
        merged = {**current["fields"], **values["fields"]}
        if merged != current["fields"]:
            updates["fields"] = merged
            change.changed.append("fields")
    cancelling = values.get("status") == CANCELLED and current["status"] != CANCELLED
    if cancelling:
        updates.update(status=CANCELLED, cancel_reason=reason or "")
        change.changed.append("status")
    if not updates:
        return change
    store.update_session(session_id, updates, now)
    learners = store.session_learner_ids(session_id)
    change.learners = len(learners)
    for key in MOVES:
        if key in updates:
            change.moved[key] = (current[key], updates[key])
            old, new = current[key].isoformat(), updates[key].isoformat()
            data = {"session": session_id, "field": key, "from": old, "to": new}
            _tell(store, learners, events.SESSION_CHANGED, data, now, source)
    if cancelling:
        change.cancelled = True
        data = {"session": session_id, "reason": reason or ""}
        _tell(store, learners, events.SESSION_CANCELLED, data, now, source)
    return change


def _tell(store: Store, learners: list[int], name: str, data: dict[str, Any], now: datetime, source: str) -> None:
    for contact_id in learners:
        contacts.record_event(store, contact_id, name, at=now, data=dict(data), source=source, now=now)


def cancel(store: Store, session_id: str, *, reason: str | None, now: datetime, source: str = "cli") -> Change:
    """Cancel a session: `session_cancelled` for each learner; their session journeys end at the next run."""
    current = require(store, session_id)
    if current["status"] == CANCELLED:
        raise InputError(f"{session_id}: already cancelled ({current['cancel_reason'] or 'no reason given'})")
    return upsert(store, session_id, {"status": CANCELLED}, now=now, source=source, reason=reason)


def set_fields(store: Store, session_id: str, pairs: dict[str, str], *, now: datetime, tz: Any) -> Change:
    """`sessions set ID start=... lieu=...`: core fields and the custom fields sessions already have."""
    require(store, session_id)
    if not pairs:
        raise InputError("nothing to change: give field=value pairs, e.g. start=2026-12-14T09:30 lieu=Lyon")
    known = set(CORE) | store.session_field_names()
    for key in pairs:
        if key in ("id", "status"):
            hint = "use `edumail sessions cancel ID`" if key == "status" else "an id cannot change"
            raise InputError(f"{key}: cannot be set ({hint})")
        if key not in known:
            choices = ", ".join(sorted(known - {"id", "status"}))
            raise InputError(f"unknown session field {key!r} (known: {choices})")
    values = parse_values(dict(pairs), tz)
    return upsert(store, session_id, values, now=now, source="sessions set")


def require(store: Store, session_id: str) -> dict[str, Any]:
    found = store.session(str(session_id).strip())
    if found is None:
        raise NotFound(f"no session {str(session_id).strip()!r} (see `edumail sessions list`)")
    return found


def session_id_of(data: dict[str, Any]) -> str | None:
    """The session an event's data names, or None."""
    found = data.get("session")
    return None if found is None or str(found).strip() == "" else str(found).strip()


def check_link(store: Store, name: str, data: dict[str, Any]) -> None:
    """An event naming a session must name a known one; attendance and evaluations must name one."""
    linked = data.get("session")
    if linked is None or str(linked).strip() == "":
        if name in NEEDS_SESSION:
            raise InputError(f"a {name!r} event needs the session it is about (data session=ID)")
        return
    if not isinstance(linked, str | int) or isinstance(linked, bool):
        raise InputError("data 'session' must be a session id (text)")
    data["session"] = str(linked).strip()
    if store.session(data["session"]) is None:
        raise InputError(f"unknown session {data['session']!r} (see `edumail sessions list`)")
    if name == events.EVALUATION_COMPLETEE and data.get("note") not in (None, ""):
        try:
            note = float(str(data["note"]).replace(",", "."))
        except ValueError:
            note = -1.0
        if not 0 <= note <= 10:
            raise InputError(f"note {data['note']!r}: expected a number from 0 to 10")


def view(session: dict[str, Any], tz: Any) -> dict[str, Any]:
    """What templates see as `session`: custom fields, then the core ones (times as local ISO text)."""
    found: dict[str, Any] = dict(session.get("fields") or {})
    found.update(
        {
            "id": session["id"],
            "formation": session["formation"],
            "start": session["start"].astimezone(tz).isoformat(),
            "end": session["end"].astimezone(tz).isoformat(),
            "lieu": session["lieu"],
            "formateur": session["formateur"],
            "status": session["status"],
            "cancel_reason": session.get("cancel_reason") or "",
        }
    )
    return found


# --- reading back ----------------------------------------------------------------------------


def learners(store: Store, session_id: str) -> list[dict[str, Any]]:
    """Each learner of a session: contact, attendance, evaluation, and the mails of their session journeys."""
    people = store.contacts_by_ids(store.session_learner_ids(session_id))
    found: dict[int, dict[str, Any]] = {
        cid: {"contact": c, "attendance": [], "evaluation": None, "mails": []} for cid, c in people.items()
    }
    for event in store.session_events(session_id, (events.PRESENT, events.ABSENT, events.EVALUATION_COMPLETEE)):
        entry = found.get(event["contact_id"])
        if entry is None:
            continue
        if event["name"] == events.EVALUATION_COMPLETEE:
            entry["evaluation"] = entry["evaluation"] or event  # the first answer is the proof
        else:
            entry["attendance"].append(event)
    for mail in store.session_mails(session_id):
        if mail["contact_id"] in found:
            found[mail["contact_id"]]["mails"].append(mail)
    return sorted(found.values(), key=lambda e: (e["contact"]["last_name"].lower(), e["contact"]["email"]))


def attendance(entry: dict[str, Any]) -> str:
    """`present`, `absent` (the last word of the centre wins), or '' when nobody said."""
    return entry["attendance"][-1]["name"] if entry["attendance"] else ""


# --- the API ------------------------------------------------------------------------------

API_FIELDS = (*CORE, "reason", "fields")


def from_json(payload: Any, tz: Any) -> tuple[str, dict[str, Any], str | None]:
    """A POST /api/sessions body -> (id, values, cancel reason); InputError for anything off."""
    if not isinstance(payload, dict):
        raise InputError('expected a JSON object {"id", "formation"?, "start"?, "end"?, "lieu"?, ...}')
    unknown = sorted(set(payload) - set(API_FIELDS))
    if unknown:
        raise InputError(
            f"unknown field(s) {', '.join(unknown)} (expected {', '.join(API_FIELDS)}; custom ones go in 'fields')"
        )
    for key in (*CORE, "reason"):
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"'{key}' must be text" + (" (ISO 8601, e.g. 2026-12-14T09:30)" if key in MOVES else ""))
    extra = payload.get("fields") or {}
    if not isinstance(extra, dict):
        raise InputError("'fields' must be a JSON object")
    clash = sorted(set(extra) & set(API_FIELDS))
    if clash:
        raise InputError(f"'fields' may not hold {', '.join(clash)} (give them at the top level)")
    session_id = check_id(payload.get("id"))
    raw = {k: payload.get(k) for k in CORE if k != "id"}
    values = parse_values({**extra, **raw}, tz)
    return session_id, values, payload.get("reason")


# --- CSV import --------------------------------------------------------------------------


@dataclass
class ImportReport:
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def count(self, what: str) -> int:
        if what == "created":
            return sum(c.created for c in self.changes)
        if what == "cancelled":
            return sum(c.cancelled and not c.created for c in self.changes)
        if what == "moved":
            return sum(bool(c.moved) for c in self.changes)
        if what == "updated":
            return sum(bool(c.changed) and not c.created for c in self.changes)
        return sum(not c.changed and not c.created for c in self.changes)

    def summary(self) -> str:
        parts = [f"{self.count(w)} {w}" for w in ("created", "updated", "unchanged")]
        for extra in ("moved", "cancelled"):
            if self.count(extra):
                parts.append(f"{self.count(extra)} {extra}")
        return ", ".join(parts)


def import_sessions(store: Store, path: Path, *, now: datetime, tz: Any) -> ImportReport:
    """Upsert sessions by id from a CSV; any unreadable row stops the whole file (nothing half-imported)."""
    header, reader = csvfile.rows(path)
    columns = {name: _ALIASES.get(name, name) for name in header if name}
    if "id" not in columns.values():
        found = ", ".join(header) or "nothing"
        raise InputError(f"{path}:1: no id column (found: {found}); name one column id (the session's code)")
    report = ImportReport()
    seen: dict[str, int] = {}
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    for line, row in reader:
        cells = {columns[k]: v for k, v in row.items() if k in columns}
        try:
            csvfile.check(row)
            session_id = check_id(cells.get("id"))
            if session_id in seen:
                raise InputError(f"{session_id} already on line {seen[session_id]} (one row per session)")
            seen[session_id] = line
            values = parse_values(cells, tz)
            if "start" in values and "end" in values:
                _check_span(session_id, values["start"], values["end"])
        except InputError as exc:
            report.problems.append(f"{path.name}:{line}: {exc}")
            continue
        parsed.append((line, session_id, values))
    existing = store.sessions_by_ids(session_id for _, session_id, _ in parsed)
    for line, session_id, values in parsed:
        try:
            _precheck(existing.get(session_id), session_id, values)
        except InputError as exc:
            report.problems.append(f"{path.name}:{line}: {exc}")
    if report.problems:
        report.problems.sort(key=_line_of)
        raise InputError("\n".join([*report.problems, f"{path.name}: nothing imported; correct these lines first"]))
    source = f"sessions import {path.name}"
    with store.transaction():
        for _, session_id, values in parsed:
            report.changes.append(upsert(store, session_id, values, now=now, source=source))
    return report


def _line_of(problem: str) -> int:
    found = re.match(r"^[^:]*:(\d+):", problem)
    return int(found.group(1)) if found else 0
