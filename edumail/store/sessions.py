"""SQL for training sessions (SPEC 13): the calendar, and the events and journeys that hang on a session.

Takes and returns datetimes (the Store converts them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store

SESSION_COLUMNS = ("formation", "start", "end", "lieu", "formateur", "status", "fields", "cancel_reason")
_DB_NAMES = {"start": "start_at", "end": "end_at"}


def _session(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row["id"],
        "formation": row["formation"],
        "start": row["start_at"],
        "end": row["end_at"],
        "lieu": row["lieu"],
        "formateur": row["formateur"],
        "status": row["status"],
        "fields": json.loads(row["fields"] or "{}"),
        "cancel_reason": row["cancel_reason"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _db_value(key: str, value: Any) -> Any:
    if key == "fields":
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


class SessionsMixin:
    def session(self: Store, session_id: str) -> dict[str, Any] | None:
        return _session(self.row("SELECT * FROM sessions WHERE id = ?", (session_id,)))

    def sessions_by_ids(self: Store, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted(set(ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.query(f"SELECT * FROM sessions WHERE id IN ({marks})", chunk):
                found[row["id"]] = _session(row) or {}
        return found

    def list_sessions(
        self: Store, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Sessions by start; `since` keeps those ending at or after it, `until` those starting before it."""
        sql, params = "SELECT * FROM sessions WHERE 1", []
        if since is not None:
            sql += " AND end_at >= ?"
            params.append(since)
        if until is not None:
            sql += " AND start_at < ?"
            params.append(until)
        return [s for s in (_session(r) for r in self.rows(sql + " ORDER BY start_at, id", params)) if s]

    def insert_session(self: Store, session_id: str, values: dict[str, Any], now: datetime) -> None:
        columns = {_DB_NAMES.get(k, k): _db_value(k, v) for k, v in values.items() if k in SESSION_COLUMNS}
        names = ["id", *columns, "created_at", "updated_at"]
        self.execute(
            f"INSERT INTO sessions ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [session_id, *columns.values(), now, now],
        )

    def update_session(self: Store, session_id: str, changes: dict[str, Any], now: datetime) -> None:
        columns = {_DB_NAMES.get(k, k): _db_value(k, v) for k, v in changes.items() if k in SESSION_COLUMNS}
        if not columns:
            return
        assignments = ", ".join(f"{k} = ?" for k in columns)
        self.execute(
            f"UPDATE sessions SET {assignments}, updated_at = ? WHERE id = ?",
            [*columns.values(), now, session_id],
        )

    def session_field_names(self: Store) -> set[str]:
        """Every custom field name any session has."""
        return {r[0] for r in self.execute("SELECT DISTINCT j.key FROM sessions, json_each(sessions.fields) j")}

    # --- learners and their events ---------------------------------------------------------

    def session_learner_ids(self: Store, session_id: str) -> list[int]:
        """Contacts with at least one event naming this session (forgotten ones left out)."""
        return [
            r[0]
            for r in self.execute(
                "SELECT DISTINCT e.contact_id FROM events e JOIN contacts c ON c.id = e.contact_id"
                " WHERE e.session_id = ? AND c.forgotten_at IS NULL ORDER BY e.contact_id",
                (session_id,),
            )
        ]

    def session_learner_counts(self: Store) -> dict[str, int]:
        return {
            r[0]: r[1]
            for r in self.execute(
                "SELECT session_id, COUNT(DISTINCT contact_id) FROM events WHERE session_id IS NOT NULL"
                " GROUP BY session_id"
            )
        }

    def session_events(self: Store, session_id: str, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """This session's events (by time), optionally only some names; `at` as a datetime, `data` a dict."""
        sql = "SELECT id, contact_id, name, at, data, source FROM events WHERE session_id = ?"
        params: list[Any] = [session_id]
        wanted = sorted(set(names or ()))
        if wanted:
            sql += f" AND name IN ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        found = []
        for row in self.rows(sql + " ORDER BY at, id", params):
            row["data"] = json.loads(row["data"] or "{}")
            found.append(row)
        return found

    def contact_session_ids(self: Store, contact_id: int) -> list[str]:
        """The sessions a contact has events for, by start."""
        return [
            r[0]
            for r in self.execute(
                "SELECT s.id FROM sessions s WHERE s.id IN (SELECT session_id FROM events WHERE contact_id = ?"
                " AND session_id IS NOT NULL) ORDER BY s.start_at, s.id",
                (contact_id,),
            )
        ]

    def session_mails(self: Store, session_id: str) -> list[dict[str, Any]]:
        """Mails of this session's journeys (any state), oldest first; times as datetimes."""
        return self.rows(
            "SELECT m.* FROM mails m JOIN journeys j ON j.id = m.journey_id WHERE j.session_id = ?"
            " ORDER BY m.queued_at, m.id",
            (session_id,),
        )

    def mail_events(self: Store, mail_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """Events attached to these mails (sent, opened, clicked, bounced, delivered...), by mail, in time order."""
        wanted = sorted(set(mail_ids))
        found: dict[int, list[dict[str, Any]]] = {i: [] for i in wanted}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.query(
                f"SELECT mail_id, name, at, machine, data FROM events WHERE mail_id IN ({marks}) ORDER BY at, id", chunk
            ):
                found[row["mail_id"]].append(row)
        return found
