"""SQL for access, erasure and purge (GDPR), bounces and replies. Mixed into Store."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail.clock import to_db

if TYPE_CHECKING:
    from edumail.store import Store

CLEAN_META = "erasure.clean"  # set when no free page can hold bytes deleted before secure_delete was on


class GdprMixin:
    # --- right of access --------------------------------------------------------

    def tags_detail_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT tag, added_at FROM tags WHERE contact_id = ? ORDER BY tag", (contact_id,))

    def consent_log_detail_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT id, at, consent, basis, source, proof FROM consent_log WHERE contact_id = ? ORDER BY at, id",
            (contact_id,),
        )

    def journeys_detail_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM journeys WHERE contact_id = ? ORDER BY started_at, id", (contact_id,))

    def journey_log_detail_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT l.* FROM journey_log l JOIN journeys j ON j.id = l.journey_id"
            " WHERE j.contact_id = ? ORDER BY l.at, l.id",
            (contact_id,),
        )

    def tasks_detail_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT t.* FROM tasks t JOIN journeys j ON j.id = t.journey_id WHERE j.contact_id = ? ORDER BY t.id",
            (contact_id,),
        )

    def suppression(self: Store, digest: str) -> dict[str, Any] | None:
        return self.row("SELECT hash, at, reason FROM suppressions WHERE hash = ?", (digest,))

    # --- erasure ------------------------------------------------------------------

    def anonymise_contact_row(self: Store, contact_id: int, now: datetime) -> None:
        """Blank the person in the contacts row; consent becomes opted_out."""
        self.execute(
            "UPDATE contacts SET email = ?, first_name = '', last_name = '', timezone = NULL, fields = '{}',"
            " consent = 'opted_out', consent_basis = NULL, forgotten_at = ?, updated_at = ? WHERE id = ?",
            (f"forgotten-{contact_id}@invalid", now, now, contact_id),
        )

    def delete_tags_of(self: Store, contact_id: int) -> int:
        return self.execute("DELETE FROM tags WHERE contact_id = ?", (contact_id,)).rowcount

    def blank_events_of(self: Store, contact_id: int) -> int:
        """Keep each event's name and time (statistics), drop what it said and where it came from."""
        return self.execute(
            "UPDATE events SET data = '{}', source = 'erased' WHERE contact_id = ?", (contact_id,)
        ).rowcount

    def blank_consent_log_of(self: Store, contact_id: int) -> int:
        return self.execute(
            "UPDATE consent_log SET proof = '{}', source = 'erased' WHERE contact_id = ?", (contact_id,)
        ).rowcount

    def cancel_queued_mails_of(self: Store, contact_id: int, reason: str) -> int:
        return self.execute(
            "UPDATE mails SET state = 'cancelled', last_error = ? WHERE contact_id = ? AND state = 'queued'",
            (reason, contact_id),
        ).rowcount

    def blank_mails_of(self: Store, contact_id: int, reason: str) -> int:
        """Keep the mails for statistics, without the address, rendering context, subject or server reply.

        A server's reply or an earlier cancellation may quote the address or a field: only the
        cancellations this erasure made keep their reason.
        """
        return self.execute(
            "UPDATE mails SET to_email = NULL, context = '{}', subject = NULL,"
            " last_error = CASE WHEN state = 'cancelled' AND last_error IN (?, ?) THEN last_error ELSE NULL END"
            " WHERE contact_id = ?",
            (reason, f"journey ended: {reason}", contact_id),
        ).rowcount

    def message_ids_of(self: Store, contact_id: int) -> list[str]:
        """The Message-IDs of every mail to (or about, for staff alerts) the contact: their outbox files."""
        return [r[0] for r in self.execute("SELECT message_id FROM mails WHERE contact_id = ?", (contact_id,))]

    def blank_tasks_of(self: Store, contact_id: int, reason: str) -> int:
        """Webhook payloads carry the contact, a CRM's error may quote it: blank them; pending ones will not run."""
        return self.execute(
            "UPDATE tasks SET payload = '{}', state = CASE WHEN state = 'pending' THEN 'failed' ELSE state END,"
            " last_error = CASE WHEN state = 'pending' THEN ? ELSE NULL END"
            " WHERE journey_id IN (SELECT id FROM journeys WHERE contact_id = ?)",
            (reason, contact_id),
        ).rowcount

    def blank_journey_texts_of(self: Store, contact_id: int) -> None:
        """Journey log reasons and end reasons may quote a field or event value (an `at:` that is not a date,
        an error): blanked, outcomes and times kept. Call before ending the journeys, whose reason is kept."""
        journeys = "SELECT id FROM journeys WHERE contact_id = ?"
        self.execute(f"UPDATE journey_log SET reason = '' WHERE journey_id IN ({journeys})", (contact_id,))
        self.execute("UPDATE journeys SET end_reason = '' WHERE contact_id = ? AND state != 'active'", (contact_id,))

    def scrub_text(self: Store, needles: dict[str, re.Pattern[str]], replacement: str) -> int:
        """Replace each pattern in every text column of every table, on the rows that hold its needle (any
        case; one scan per table). Returns the rows changed.

        The safety net of an erasure: an address typed into a campaign's `--where`, a campaign's data or
        content, another contact's fields, a reply's key... wherever a column (today's or a future one) keeps it.
        """
        changed = 0
        for table in self.table_names():
            columns = self.text_columns(table)
            if not columns:
                continue
            tests = [f"\"{c}\" LIKE ? ESCAPE '\\'" for c in columns for _ in needles]  # LIKE: ASCII case ignored
            params = [_like(n) for _ in columns for n in needles]
            listed = ", ".join(f'"{c}"' for c in columns)
            found = self.execute(f'SELECT rowid, {listed} FROM "{table}" WHERE {" OR ".join(tests)}', params)
            for rowid, *values in found.fetchall():
                scrubbed = {c: _sub_all(v, needles.values(), replacement) for c, v in zip(columns, values, strict=True)}
                edits = {c: v for c, v in scrubbed.items() if v != values[columns.index(c)]}
                if edits:
                    sets = ", ".join(f'"{c}" = ?' for c in edits)
                    self.execute(f'UPDATE "{table}" SET {sets} WHERE rowid = ?', (*edits.values(), rowid))
                    changed += 1
        return changed

    def table_names(self: Store) -> list[str]:
        """The tables that have rowids (every table of edumail), without SQLite's own."""
        return [
            r[0]
            for r in self.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " AND sql NOT LIKE '%WITHOUT ROWID%' ORDER BY name"
            )
        ]

    def text_columns(self: Store, table: str) -> list[str]:
        return [
            r[1]
            for r in self.execute(f'PRAGMA table_info("{table}")')
            if r[2].upper() in ("", "TEXT") or "CHAR" in r[2].upper() or "CLOB" in r[2].upper()
        ]

    # --- what is left in the files -----------------------------------------------------

    def checkpoint_truncate(self: Store, wait: float) -> bool:
        """Copy the WAL into the database and truncate it to 0 bytes; False when readers kept it for `wait` s.

        A reader still using the WAL (a long `run`, a tool with a read open) blocks the truncation: the
        attempt is repeated with a short busy timeout until `wait` has passed.
        """
        deadline = time.monotonic() + wait
        usual = self.conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self.conn.execute("PRAGMA busy_timeout = 500")
        try:
            while True:
                busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy or time.monotonic() >= deadline:
                    return not busy
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(usual)}")

    def vacuum_once(self: Store) -> bool:
        """Rebuild a database that was written before secure_delete was on, whose free pages may still hold
        deleted bytes; once done (or for a database created with it), never again. True when it ran."""
        if self.get_meta(CLEAN_META):
            return False
        self.conn.execute("VACUUM")
        self.set_meta(CLEAN_META, "1")
        return True

    # --- purge ----------------------------------------------------------------------

    def stale_prospects(self: Store, cutoff: datetime, customer_stages: tuple[str, ...]) -> list[dict[str, Any]]:
        """Contacts not forgotten, not customers, whose last sign of life (or creation) is before `cutoff`."""
        marks = ",".join("?" * len(customer_stages))
        return self.rows(
            "SELECT id, email, stage, consent, consent_basis, created_at, last_inbound_at,"
            " COALESCE(last_inbound_at, created_at) AS last_sign FROM contacts"
            " WHERE forgotten_at IS NULL AND COALESCE(last_inbound_at, created_at) < ?"
            f" AND lower(trim(stage)) NOT IN ({marks}) AND COALESCE(consent_basis, '') != 'customer'"
            " ORDER BY last_sign, id",
            (cutoff, *customer_stages),
        )

    def active_service_sequences_of(self: Store, contact_id: int) -> list[str]:
        return [
            r[0]
            for r in self.execute(
                "SELECT DISTINCT sequence FROM journeys"
                " WHERE contact_id = ? AND state = 'active' AND purpose = 'service' ORDER BY sequence",
                (contact_id,),
            )
        ]

    # --- bounces and replies ------------------------------------------------------------

    def mails_by_message_ids(self: Store, message_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Mails by bare Message-ID (stored with or without angle brackets)."""
        if not message_ids:
            return {}
        candidates = [*message_ids, *(f"<{m}>" for m in message_ids)]
        marks = ",".join("?" * len(candidates))
        found: dict[str, dict[str, Any]] = {}
        for row in self.query(f"SELECT * FROM mails WHERE message_id IN ({marks})", candidates):
            found[row["message_id"].strip().strip("<>")] = row
        return found

    def last_mail_to(self: Store, contact_id: int) -> dict[str, Any] | None:
        """The contact's most recent mail that left (sent or sending), never a staff alert about them."""
        return self.row(
            "SELECT * FROM mails WHERE contact_id = ? AND state IN ('sent', 'sending')"
            " AND to_email IS NULL AND substr(template, 1, 2) <> '__'"
            " ORDER BY COALESCE(sent_at, queued_at) DESC, id DESC LIMIT 1",
            (contact_id,),
        )

    def soft_bounce_recorded(self: Store, contact_id: int, mail_id: int) -> bool:
        return (
            self.scalar(
                "SELECT 1 FROM events WHERE contact_id = ? AND mail_id = ? AND name = 'bounced'"
                " AND json_extract(data, '$.kind') = 'soft' LIMIT 1",
                (contact_id, mail_id),
            )
            is not None
        )

    def seen_inbound(self: Store, key: str) -> bool:
        """A DSN or reply already processed (its key is kept in meta)."""
        return self.get_meta(f"seen:{key}") is not None

    def mark_inbound_seen(self: Store, key: str, at: datetime) -> None:
        self.set_meta(f"seen:{key}", to_db(at))


def _sub_all(value: Any, patterns: Any, replacement: str) -> Any:
    if not isinstance(value, str):
        return value
    for pattern in patterns:
        value = pattern.sub(replacement, value)
    return value


def _like(needle: str) -> str:
    """A LIKE pattern for `needle` anywhere: its own % and _ taken literally."""
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
