"""SQL for the journeys area (enrolment, due steps, exits).

Methods are mixed into Store. Every query that runs on each `edumail run`
is driven by an index (events_name, journeys_due, tasks_due, the UNIQUE keys),
so a run costs what is due, not the whole history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail.clock import to_db
from edumail.store.audience import audience_sql

if TYPE_CHECKING:
    from edumail.conditions import Audience
    from edumail.store import Store


def trigger_key(kind: str, moment: datetime) -> str:
    """The trigger key of a journey entered at `moment` (reenter: one journey per firing/arrival)."""
    return f"{kind}:{to_db(moment)}"


def moment_text(moment: datetime) -> str:
    """A time as the store writes it (UTC, fixed width), for texts that must match stored ones."""
    return to_db(moment)


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class JourneysMixin:
    def journey_steps_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        """Every journey_log entry of a contact, with its sequence name."""
        return self.rows(
            "SELECT j.sequence, l.step_id, l.at, l.outcome, l.reason, l.mail_id FROM journey_log l"
            " JOIN journeys j ON j.id = l.journey_id WHERE j.contact_id = ? ORDER BY l.at, l.id",
            (contact_id,),
        )

    # --- sequences seen -------------------------------------------------------------

    def sequences_seen(self: Store) -> dict[str, dict[str, Any]]:
        """{name: row}, `steps` decoded (None: not recorded yet)."""
        found = {}
        for row in self.rows("SELECT * FROM sequences_seen"):
            row["steps"] = json.loads(row["steps"]) if row.get("steps") else None
            found[row["name"]] = row
        return found

    def add_sequence_seen(self: Store, name: str, now: datetime, first_event_id: int) -> None:
        self.execute(
            "INSERT OR IGNORE INTO sequences_seen (name, first_seen_at, first_event_id, cursor_event_id)"
            " VALUES (?, ?, ?, ?)",
            (name, now, first_event_id, first_event_id),
        )

    def set_sequence_cursor(self: Store, name: str, cursor: int) -> None:
        self.execute(
            "UPDATE sequences_seen SET cursor_event_id = ? WHERE name = ? AND cursor_event_id < ?",
            (cursor, name, cursor),
        )

    def set_sequence_steps(self: Store, name: str, steps: list[list[str]]) -> None:
        """The sequence's steps as this run ran them (live edits compare the file with it)."""
        self.execute(
            "UPDATE sequences_seen SET steps = ? WHERE name = ?", (json.dumps(steps, ensure_ascii=False), name)
        )

    def set_sequence_fired(self: Store, name: str, at: datetime) -> None:
        self.execute("UPDATE sequences_seen SET last_schedule_at = ? WHERE name = ?", (at, name))

    # --- events --------------------------------------------------------------------

    def events_named_between(
        self: Store, names: Iterable[str], after_id: int, upto_id: int, limit: int = 5000
    ) -> list[dict[str, Any]]:
        """Events a person made (never a machine's open or click) with one of these names and
        after_id < id <= upto_id, by id (index events_name)."""
        wanted = sorted(set(names))
        if not wanted:
            return []
        return self.rows(
            f"SELECT id, contact_id, name, at, data FROM events WHERE name IN ({_marks(wanted)})"
            " AND id > ? AND id <= ? AND machine = 0 ORDER BY id LIMIT ?",
            [*wanted, after_id, upto_id, limit],
        )

    def count_events_named(self: Store, name: str, upto_id: int) -> int:
        """Events of that name a person made, up to that id."""
        return int(
            self.scalar("SELECT COUNT(*) FROM events WHERE name = ? AND id <= ? AND machine = 0", (name, upto_id)) or 0
        )

    def event_data(self: Store, event_id: int | None) -> dict[str, Any]:
        if event_id is None:
            return {}
        text = self.scalar("SELECT data FROM events WHERE id = ?", (event_id,))
        return json.loads(text) if text else {}

    def event_data_many(self: Store, event_ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
        wanted = sorted({i for i in event_ids if i is not None})
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for event_id, data in self.execute(f"SELECT id, data FROM events WHERE id IN ({_marks(chunk)})", chunk):
                found[event_id] = json.loads(data) if data else {}
        return found

    def contact_had_event(
        self: Store,
        contact_id: int,
        names: Sequence[str],
        since: datetime,
        exclude_id: int | None,
        session_id: str | None = None,
    ) -> str | None:
        """The first of these events the contact had at or after `since` (not the excluded one), or None.

        With a session (a session journey): only that session's events and those naming no session.
        """
        scope = " AND (session_id IS NULL OR session_id = ?)" if session_id is not None else ""
        return self.scalar(
            f"SELECT name FROM events WHERE contact_id = ? AND name IN ({_marks(names)}) AND at >= ?"
            f" AND id IS NOT ?{scope} ORDER BY at LIMIT 1",
            [contact_id, *names, since, exclude_id, *([session_id] if session_id is not None else [])],
        )

    def active_session_journeys(self: Store, contact_id: int, session_id: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT * FROM journeys WHERE contact_id = ? AND session_id = ? AND state = 'active' ORDER BY id",
            (contact_id, session_id),
        )

    def queued_journey_mails(self: Store, journey_id: int) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT id, step_id, not_before FROM mails WHERE journey_id = ? AND state = 'queued' ORDER BY id",
            (journey_id,),
        )

    def retime_mail(self: Store, mail_id: int, not_before: datetime) -> None:
        self.execute("UPDATE mails SET not_before = ? WHERE id = ? AND state = 'queued'", (not_before, mail_id))

    def step_mail_id(self: Store, journey_id: int, step_id: str) -> int | None:
        return self.scalar("SELECT id FROM mails WHERE journey_id = ? AND step_id = ?", (journey_id, step_id))

    def step_mail_event(self: Store, journey_id: int, step_id: str, *names: str) -> bool:
        """Did a person (not a machine) do one of `names` (open, click) to the mail this step sent?"""
        marks = ", ".join("?" * len(names))
        return (
            self.scalar(
                "SELECT 1 FROM mails m JOIN events e ON e.mail_id = m.id WHERE m.journey_id = ? AND m.step_id = ?"
                f" AND e.name IN ({marks}) AND e.machine = 0 LIMIT 1",
                (journey_id, step_id, *names),
            )
            is not None
        )

    # --- contacts, in bulk -------------------------------------------------------------

    def contacts_by_ids(self: Store, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = sorted(set(ids))
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for row in self.query(f"SELECT * FROM contacts WHERE id IN ({_marks(chunk)})", chunk):
                found[row["id"]] = row
        return found

    def tags_by_ids(self: Store, ids: Iterable[int]) -> dict[int, set[str]]:
        wanted = sorted(set(ids))
        found: dict[int, set[str]] = {i: set() for i in wanted}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for contact_id, tag in self.execute(
                f"SELECT contact_id, tag FROM tags WHERE contact_id IN ({_marks(chunk)})", chunk
            ):
                found[contact_id].add(tag)
        return found

    def segment_arrivals(self: Store, sequence: str, audience: Audience) -> list[int]:
        """Contacts matching the segment who were not members at the last run."""
        where, params = audience_sql(audience)
        return [
            r[0]
            for r in self.execute(
                f"SELECT c.id FROM contacts c WHERE {where} AND NOT EXISTS"
                " (SELECT 1 FROM segment_members m WHERE m.sequence = ? AND m.contact_id = c.id) ORDER BY c.id",
                [*params, sequence],
            )
        ]

    def segment_departures(self: Store, sequence: str, audience: Audience) -> int:
        """Forget the members who no longer match (so that they can arrive again).

        Each member is looked up by id: the work follows the members, not every contact the segment's
        conditions would first select (a stage or a tag held by a fifth of the contacts)."""
        where, params = audience_sql(audience)
        cursor = self.execute(
            f"DELETE FROM segment_members WHERE sequence = ? AND NOT EXISTS (SELECT 1 FROM contacts c"
            f" WHERE c.id = segment_members.contact_id AND {where})",
            [sequence, *params],
        )
        return cursor.rowcount

    def add_segment_members(self: Store, sequence: str, contact_ids: Iterable[int]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO segment_members (sequence, contact_id) VALUES (?, ?)",
            [(sequence, cid) for cid in contact_ids],
        )

    def inactive_contacts(
        self: Store, sequence: str, cutoff: datetime, floor: datetime | None, reenter: bool
    ) -> list[dict[str, Any]]:
        """Contacts with no sign of life since `cutoff` (and since after `floor`), not yet enrolled for it."""
        since = "COALESCE(c.last_inbound_at, c.created_at)"
        key = f"'inactive:' || {since}" if reenter else "'inactive'"
        sql = (
            f"SELECT c.id, {since} AS since FROM contacts c WHERE c.forgotten_at IS NULL AND {since} <= ?"
            f" AND NOT EXISTS (SELECT 1 FROM journeys j WHERE j.sequence = ? AND j.contact_id = c.id"
            f" AND j.trigger_key = {key})"
        )
        params: list[Any] = [cutoff, sequence]
        if floor is not None:
            sql += f" AND {since} > ?"
            params.append(floor)
        return self.rows(sql + " ORDER BY c.id", params)

    def next_inactivity_since(self: Store, after: datetime) -> datetime | None:
        """The earliest last-sign-of-life after `after` (for `plan`: when the next contact turns inactive)."""
        return self.moment(
            "SELECT MIN(COALESCE(last_inbound_at, created_at)) FROM contacts WHERE forgotten_at IS NULL"
            " AND COALESCE(last_inbound_at, created_at) > ?",
            (after,),
        )

    # --- journeys ------------------------------------------------------------------------

    def has_journey(self: Store, sequence: str, contact_id: int) -> bool:
        return (
            self.scalar("SELECT 1 FROM journeys WHERE sequence = ? AND contact_id = ? LIMIT 1", (sequence, contact_id))
            is not None
        )

    def insert_journey(
        self: Store,
        sequence: str,
        contact_id: int,
        trigger_key: str,
        trigger_event_id: int | None,
        started_at: datetime,
        purpose: str,
        session_id: str | None = None,
    ) -> int | None:
        """A new active journey; None when this (sequence, contact, trigger) already has one."""
        cursor = self.execute(
            "INSERT OR IGNORE INTO journeys (sequence, contact_id, trigger_key, trigger_event_id, purpose, started_at,"
            " last_step_at, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (sequence, contact_id, trigger_key, trigger_event_id, purpose, started_at, started_at, session_id),
        )
        return int(cursor.lastrowid or 0) if cursor.rowcount else None

    def journey(self: Store, journey_id: int) -> dict[str, Any] | None:
        return self.row("SELECT * FROM journeys WHERE id = ?", (journey_id,))

    def journeys_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM journeys WHERE contact_id = ? ORDER BY started_at, id", (contact_id,))

    def due_journeys(
        self: Store, sequences: Sequence[str], now: datetime, after_id: int, limit: int
    ) -> list[dict[str, Any]]:
        """Active journeys of these sequences due at `now` (index journeys_due), oldest due first."""
        if not sequences:
            return []
        return self.rows(
            "SELECT * FROM journeys WHERE state = 'active' AND due_at <= ?"
            f" AND sequence IN ({_marks(sequences)}) AND id > ? ORDER BY id LIMIT ?",
            [now, *sequences, after_id, limit],
        )

    def next_due_at(self: Store, sequences: Sequence[str], after: datetime) -> datetime | None:
        if not sequences:
            return None
        return self.moment(
            f"SELECT MIN(due_at) FROM journeys WHERE state = 'active' AND due_at > ? AND sequence IN"
            f" ({_marks(sequences)})",
            [after, *sequences],
        )

    def move_journey(
        self: Store, journey_id: int, last_step_id: str | None, last_step_at: datetime, due_at: datetime | None
    ) -> None:
        """Where a journey stands: the id of the last step it ran, when, and when the next one is due."""
        self.execute(
            "UPDATE journeys SET last_step_id = ?, last_step_at = ?, due_at = ? WHERE id = ?",
            (last_step_id, last_step_at, due_at, journey_id),
        )

    def active_journeys_in(self: Store, sequence: str, after_id: int, limit: int) -> list[dict[str, Any]]:
        """Active journeys of one sequence, by id (to re-time them after an edit)."""
        return self.rows(
            "SELECT * FROM journeys WHERE state = 'active' AND sequence = ? AND id > ? ORDER BY id LIMIT ?",
            (sequence, after_id, limit),
        )

    def sequences_in_flight(self: Store) -> dict[str, int]:
        """{sequence: active journeys}."""
        return {
            r[0]: r[1]
            for r in self.execute("SELECT sequence, COUNT(*) FROM journeys WHERE state = 'active' GROUP BY sequence")
        }

    def waiting_on(self: Store, sequence: str) -> dict[str | None, int]:
        """{last step id run: active journeys} of one sequence (None: no step run yet)."""
        return {
            r[0]: r[1]
            for r in self.execute(
                "SELECT last_step_id, COUNT(*) FROM journeys WHERE state = 'active' AND sequence = ?"
                " GROUP BY last_step_id",
                (sequence,),
            )
        }

    def steps_run(self: Store, journey_id: int) -> set[str]:
        """Ids of the steps a journey ran, skipped or passed (from its log)."""
        return {
            r[0]
            for r in self.execute(
                "SELECT DISTINCT step_id FROM journey_log WHERE journey_id = ? AND step_id != ''"
                " AND outcome IN ('sent', 'done', 'skipped')",
                (journey_id,),
            )
        }

    def finish_journey(self: Store, journey_id: int, state: str, at: datetime, reason: str) -> bool:
        cursor = self.execute(
            "UPDATE journeys SET state = ?, ended_at = ?, end_reason = ?, due_at = NULL WHERE id = ?"
            " AND state = 'active'",
            (state, at, reason, journey_id),
        )
        return cursor.rowcount > 0

    def active_journeys_of(
        self: Store, contact_id: int, sequences: Sequence[str] | None = None, purpose: str | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM journeys WHERE contact_id = ? AND state = 'active'"
        params: list[Any] = [contact_id]
        if purpose is not None:
            sql += " AND purpose = ?"
            params.append(purpose)
        if sequences is not None:
            if not sequences:
                return []
            sql += f" AND sequence IN ({_marks(sequences)})"
            params.extend(sequences)
        return self.rows(sql + " ORDER BY id", params)

    def journeys_reaching_goal(self: Store, contact_id: int, sequence: str, at: datetime) -> list[dict[str, Any]]:
        """Journeys of a contact in a sequence, started by `at`, with no goal logged yet."""
        return self.rows(
            "SELECT * FROM journeys j WHERE contact_id = ? AND sequence = ? AND started_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM journey_log l WHERE l.journey_id = j.id AND l.outcome = 'goal')",
            (contact_id, sequence, at),
        )

    def cancel_journey_mails(self: Store, journey_id: int, reason: str) -> int:
        """Queued, not yet sending, mails of a journey that ended: cancelled."""
        cursor = self.execute(
            "UPDATE mails SET state = 'cancelled', last_error = ? WHERE journey_id = ? AND state = 'queued'",
            (reason, journey_id),
        )
        return cursor.rowcount

    def log_step(
        self: Store,
        journey_id: int,
        step_id: str,
        at: datetime,
        outcome: str,
        reason: str = "",
        mail_id: int | None = None,
    ) -> None:
        self.execute(
            "INSERT INTO journey_log (journey_id, step_id, at, outcome, reason, mail_id) VALUES (?, ?, ?, ?, ?, ?)",
            (journey_id, step_id, at, outcome, reason, mail_id),
        )

    def journey_log(self: Store, journey_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM journey_log WHERE journey_id = ? ORDER BY id", (journey_id,))

    @contextmanager
    def savepoint(self: Store, name: str = "step") -> Iterator[None]:
        """Inside a transaction: undo only this block on error (one journey in a batch)."""
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.execute(f"ROLLBACK TO {name}")
            self.execute(f"RELEASE {name}")
            raise
        self.execute(f"RELEASE {name}")
