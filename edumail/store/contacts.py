"""SQL for contacts, tags, the consent log, events and the suppression list."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail.clock import to_db

if TYPE_CHECKING:
    from edumail.store import Store

CONTACT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "stage",
    "consent",
    "consent_basis",
    "timezone",
    "fields",
)
# What an import writes when it creates a contact (and imported_at, a time).
IMPORT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "stage",
    "timezone",
    "consent",
    "consent_basis",
    "fields",
    "imported_stage",
)


def _db(value: Any) -> Any:
    return to_db(value) if isinstance(value, datetime) else value


def _text(texts: dict[datetime, str], at: datetime) -> str:
    """to_db(at), remembered in `texts` (imports repeat their times)."""
    found = texts.get(at)
    if found is None:
        found = texts[at] = to_db(at)
    return found


# A contact's soft bounces since its last delivery, one row per mail (SPEC 19). A delivery: a mail to the
# contact (not a staff mail) that went and never bounced, a provider's email_delivered, or an unbounce.
_SOFT_STREAK = """
SELECT MIN(e.at) AS at FROM events e
WHERE e.contact_id = :cid AND e.name = 'bounced' AND json_extract(e.data, '$.kind') = 'soft'
  AND NOT EXISTS (SELECT 1 FROM mails s WHERE s.id = e.mail_id
                  AND (s.to_email IS NOT NULL OR substr(s.template, 1, 2) = '__'))
  AND e.at > COALESCE((SELECT MAX(t) FROM (
      SELECT MAX(m.sent_at) AS t FROM mails m WHERE m.contact_id = :cid AND m.state = 'sent'
        AND m.to_email IS NULL AND substr(m.template, 1, 2) <> '__'
        AND NOT EXISTS (SELECT 1 FROM events b WHERE b.mail_id = m.id AND b.name = 'bounced')
      UNION ALL
      SELECT MAX(d.at) FROM events d WHERE d.contact_id = :cid AND d.name IN ('email_delivered', 'unbounced')
  )), '')
GROUP BY COALESCE(e.mail_id, -e.id) ORDER BY MIN(e.at)
"""


class ContactsMixin:
    # --- contacts -------------------------------------------------------------

    def contact_by_email(self: Store, email: str) -> dict[str, Any] | None:
        return self.row("SELECT * FROM contacts WHERE email = ?", (email.strip().lower(),))

    def contact(self: Store, contact_id: int) -> dict[str, Any] | None:
        return self.row("SELECT * FROM contacts WHERE id = ?", (contact_id,))

    def contacts_by_emails(self: Store, emails: list[str], columns: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        """Existing contacts for many addresses at once (chunked IN queries): these columns (and email), or all."""
        assert set(columns) <= {"id", "imported_stage", *CONTACT_COLUMNS}
        chosen = ", ".join(dict.fromkeys(["email", *columns])) if columns else "*"
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(emails), 500):
            chunk = emails[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.query(f"SELECT {chosen} FROM contacts WHERE email IN ({marks})", chunk):
                found[row["email"]] = row
        return found

    def _pass_over_all(self: Store, emails: list[str]) -> bool:
        """Is one pass over every contact cheaper than looking these addresses up one by one? Yes from a third
        of the contacts on: a lookup costs about three times a row of the pass (and the highest id bounds
        their number without counting them)."""
        return len(emails) > 1500 and len(emails) * 3 >= (self.scalar("SELECT MAX(id) FROM contacts") or 0)

    def contact_ids_by_email(self: Store, emails: list[str]) -> dict[str, int]:
        """{address: id} of the existing contacts among many addresses: chunked IN queries, or one pass over
        the index of addresses (see _pass_over_all)."""
        found: dict[str, int] = {}
        if self._pass_over_all(emails):
            wanted = set(emails)
            for email, contact_id in self.conn.execute("SELECT email, id FROM contacts"):
                if email in wanted:
                    found[email] = contact_id
            return found
        for start in range(0, len(emails), 500):
            chunk = emails[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                self.conn.execute(f"SELECT email, id FROM contacts WHERE email IN ({marks})", chunk).fetchall()
            )
        return found

    def _next_contact_id(self: Store, count: int) -> int:
        """The first of `count` fresh contact ids, as SQLite would number them (inside a write transaction,
        so nobody else can take them): inserting with known ids saves reading them back by address."""
        assert self._depth, "new contact ids are only reserved inside a transaction"
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM contacts").fetchone()[0])

    def insert_bare_contacts(
        self: Store,
        emails: list[str],
        consent: str,
        now: datetime,
        source: str,
        proof: dict[str, Any],
        inbound: list[str | None],
    ) -> int:
        """New contacts known only by address (and their last sign of life, as store text, in the same order),
        each with its consent log entry. Returns the id of the first; the others follow in order."""
        stamp = to_db(now)
        first = self._next_contact_id(len(emails))
        self.conn.executemany(
            "INSERT INTO contacts (id, email, consent, fields, created_at, updated_at, last_inbound_at)"
            " VALUES (?, ?, ?, '{}', ?, ?, ?)",
            (
                (first + i, email, consent, stamp, stamp, at)
                for i, (email, at) in enumerate(zip(emails, inbound, strict=True))
            ),
        )
        shown = json.dumps(proof, ensure_ascii=False, sort_keys=True)
        self.conn.executemany(
            "INSERT INTO consent_log (contact_id, at, consent, basis, source, proof) VALUES (?, ?, ?, NULL, ?, ?)",
            ((first + i, stamp, consent, source, shown) for i in range(len(emails))),
        )
        return first

    def insert_contacts(self: Store, rows: list[tuple[Any, ...]], now: datetime) -> int:
        """Many new contacts at once (imports), each a tuple of IMPORT_COLUMNS then imported_at (text or None).
        Returns the id of the first; the others follow in order."""
        stamp, first = to_db(now), self._next_contact_id(len(rows))
        self.conn.executemany(
            f"INSERT INTO contacts (id, {', '.join(IMPORT_COLUMNS)}, imported_at, created_at, updated_at)"
            f" VALUES (?, {', '.join('?' * len(IMPORT_COLUMNS))}, ?, ?, ?)",
            ((first + i, *row, stamp, stamp) for i, row in enumerate(rows)),
        )
        return first

    def log_consents(
        self: Store, rows: Sequence[tuple[int, str, str | None, dict[str, Any] | str]], at: datetime, source: str
    ) -> None:
        """log_consent for many contacts: (contact id, consent, basis, proof) each; a proof may come as JSON text."""
        stamp, dumps = to_db(at), json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
        self.conn.executemany(
            "INSERT INTO consent_log (contact_id, at, consent, basis, source, proof) VALUES (?, ?, ?, ?, ?, ?)",
            (
                (contact_id, stamp, consent, basis, source, proof if isinstance(proof, str) else dumps(proof))
                for contact_id, consent, basis, proof in rows
            ),
        )

    def tag_pairs(self: Store, tags: list[str]) -> set[tuple[int, str]]:
        """(contact id, tag) of every contact that has one of these tags."""
        marks = ",".join("?" * len(tags))
        return set(self.conn.execute(f"SELECT contact_id, tag FROM tags WHERE tag IN ({marks})", tags).fetchall())

    def update_contact_columns(
        self: Store, columns: tuple[str, ...], rows: list[tuple[Any, ...]], now: datetime
    ) -> None:
        """New values of these columns for many contacts: (*values, contact id) each; updated_at is now."""
        assert set(columns) <= set(CONTACT_COLUMNS)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        stamp = to_db(now)
        self.conn.executemany(
            f"UPDATE contacts SET {assignments}, updated_at = ? WHERE id = ?",
            ((*row[:-1], stamp, row[-1]) for row in rows),
        )

    def set_imported_stages(self: Store, rows: list[tuple[str, int]], at: datetime) -> None:
        """set_imported_stage for many contacts: (stage, contact id) each (updated_at untouched)."""
        stamp = to_db(at)
        self.conn.executemany(
            "UPDATE contacts SET imported_stage = ?, imported_at = ? WHERE id = ?", ((s, stamp, c) for s, c in rows)
        )

    def add_new_tags(self: Store, rows: list[tuple[int, str]], now: datetime) -> None:
        """Tags of contacts that have none yet (just created): (contact id, tag) each."""
        stamp = to_db(now)
        self.conn.executemany(
            "INSERT INTO tags (contact_id, tag, added_at) VALUES (?, ?, ?)", ((c, t, stamp) for c, t in rows)
        )

    def insert_contact(self: Store, values: dict[str, Any], now: datetime) -> int:
        values = {k: v for k, v in values.items() if k in CONTACT_COLUMNS}
        values.setdefault("fields", "{}")
        columns = [*values, "created_at", "updated_at"]
        cursor = self.execute(
            f"INSERT INTO contacts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [*values.values(), now, now],
        )
        return int(cursor.lastrowid or 0)

    def soft_bounce_streak(self: Store, contact_id: int) -> list[datetime]:
        """When each soft bounce since the contact's last delivery came (one per mail), oldest first."""
        return [row["at"] for row in self.query(_SOFT_STREAK, {"cid": contact_id})]

    def clear_soft_bounces(self: Store, contact_id: int) -> None:
        """A mail to the contact went: the soft-bounce count starts again."""
        self.execute("UPDATE contacts SET soft_bounces = 0 WHERE id = ? AND soft_bounces > 0", (contact_id,))

    def clear_soft_bounces_of(self: Store, contact_ids: list[int]) -> None:
        """clear_soft_bounces for many contacts (one statement a few hundred)."""
        for start in range(0, len(contact_ids), 500):
            chunk = contact_ids[start : start + 500]
            self.execute(
                f"UPDATE contacts SET soft_bounces = 0 WHERE soft_bounces > 0 AND id IN ({','.join('?' * len(chunk))})",
                chunk,
            )

    def update_contact(self: Store, contact_id: int, changes: dict[str, Any], now: datetime) -> None:
        allowed = set(CONTACT_COLUMNS) | {"bounced_at", "soft_bounces", "forgotten_at", "last_inbound_at"}
        changes = {k: v for k, v in changes.items() if k in allowed}
        if not changes:
            return
        assignments = ", ".join(f"{k} = ?" for k in changes)
        self.execute(
            f"UPDATE contacts SET {assignments}, updated_at = ? WHERE id = ?",
            [*changes.values(), now, contact_id],
        )

    def touch_inbound_many(self: Store, latest: dict[int, datetime]) -> None:
        """touch_inbound for many contacts: {contact id: latest sign of life}."""
        texts: dict[datetime, str] = {}  # an import repeats its times
        self.touch_inbound_texts({contact_id: _text(texts, at) for contact_id, at in latest.items()})

    def touch_inbound_texts(self: Store, latest: dict[int, str]) -> None:
        """touch_inbound_many with the times as store text (to_db's)."""
        self.conn.executemany(
            "UPDATE contacts SET last_inbound_at = ?1"
            " WHERE id = ?2 AND (last_inbound_at IS NULL OR last_inbound_at < ?1)",
            ((at, contact_id) for contact_id, at in latest.items()),
        )

    def touch_inbound(self: Store, contact_id: int, at: datetime) -> None:
        self.execute(
            "UPDATE contacts SET last_inbound_at = ? WHERE id = ? AND (last_inbound_at IS NULL OR last_inbound_at < ?)",
            (at, contact_id, at),
        )

    def list_contacts(
        self: Store, tag: str | None = None, stage: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        sql = (
            "SELECT c.*, (SELECT group_concat(tag, ',')"
            " FROM (SELECT tag FROM tags WHERE contact_id = c.id ORDER BY tag))"
            " AS tag_list FROM contacts c WHERE c.forgotten_at IS NULL"
        )
        params: list[Any] = []
        if tag:
            sql += " AND EXISTS (SELECT 1 FROM tags t WHERE t.contact_id = c.id AND t.tag = ?)"
            params.append(tag)
        if stage:
            sql += " AND c.stage = ?"
            params.append(stage)
        sql += " ORDER BY c.email"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return self.rows(sql, params)

    def custom_field_names(self: Store) -> set[str]:
        """Every custom field name any contact has."""
        return {r[0] for r in self.execute("SELECT DISTINCT j.key FROM contacts, json_each(contacts.fields) j")}

    def count_contacts(self: Store) -> int:
        return int(self.scalar("SELECT COUNT(*) FROM contacts WHERE forgotten_at IS NULL") or 0)

    # --- tags -------------------------------------------------------------------

    def tags_of(self: Store, contact_id: int) -> list[str]:
        return [r[0] for r in self.execute("SELECT tag FROM tags WHERE contact_id = ? ORDER BY tag", (contact_id,))]

    def add_tag(self: Store, contact_id: int, tag: str, now: datetime) -> bool:
        """True when the tag is new for this contact."""
        try:
            self.execute("INSERT INTO tags (contact_id, tag, added_at) VALUES (?, ?, ?)", (contact_id, tag, now))
        except sqlite3.IntegrityError:
            return False
        return True

    def remove_tag(self: Store, contact_id: int, tag: str) -> bool:
        cursor = self.execute("DELETE FROM tags WHERE contact_id = ? AND tag = ?", (contact_id, tag))
        return cursor.rowcount > 0

    # --- consent log --------------------------------------------------------------

    def log_consent(
        self: Store, contact_id: int, at: datetime, consent: str, basis: str | None, source: str, proof: dict[str, Any]
    ) -> None:
        self.execute(
            "INSERT INTO consent_log (contact_id, at, consent, basis, source, proof) VALUES (?, ?, ?, ?, ?, ?)",
            (contact_id, at, consent, basis, source, json.dumps(proof, ensure_ascii=False, sort_keys=True)),
        )

    def consent_log(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT at, consent, basis, source, proof FROM consent_log WHERE contact_id = ? ORDER BY at, id",
            (contact_id,),
        )

    # --- events ---------------------------------------------------------------------

    def insert_events(
        self: Store, rows: list[tuple[int, str, datetime, dict[str, Any]]], source: str, recorded_at: datetime
    ) -> None:
        """Many events of one source at once: (contact id, name, at, data) each."""
        dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
        times: dict[datetime, str] = {}  # an import repeats its times (`now` for stage and tag events)
        texts: dict[tuple[Any, ...], str] = {}  # and its small payloads ({"tag": "vip"})

        def text_of(at: datetime) -> str:
            found = times.get(at)
            if found is None:
                found = times[at] = to_db(at)
            return found

        def data_of(data: dict[str, Any]) -> str:
            key = tuple(data.items())
            try:
                found = texts.get(key)
            except TypeError:  # a list or a mapping among the values: not worth a key
                return dumps(data)
            if found is None:
                found = dumps(data)
                if len(texts) < 10_000:
                    texts[key] = found
            return found

        self.insert_encoded_events(
            ((contact_id, name, text_of(at), data_of(data), session_of(data)) for contact_id, name, at, data in rows),
            source,
            recorded_at,
        )

    def insert_encoded_events(
        self: Store, rows: Iterable[tuple[int, str, str, str, str | None]], source: str, recorded_at: datetime
    ) -> None:
        """insert_events with each row already as the store keeps it: (contact id, name, at as to_db's text,
        data as JSON text, session_of(data))."""
        recorded = to_db(recorded_at)
        self.conn.executemany(
            "INSERT INTO events (contact_id, name, at, recorded_at, data, source, mail_id, machine, session_id)"
            " VALUES (?1, ?2, ?3, ?6, ?4, ?7, NULL, 0, ?5)",
            ((*row, recorded, source) for row in rows),
        )

    def insert_sent_events(self: Store, rows: list[tuple[int, dict[str, Any], int]], at: datetime) -> None:
        """Delivery's email_sent events, all at `at`: (contact id, data, mail id) each."""
        stamp, dumps = to_db(at), json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
        self.conn.executemany(
            "INSERT INTO events (contact_id, name, at, recorded_at, data, source, mail_id, machine, session_id)"
            " VALUES (?1, 'email_sent', ?2, ?2, ?3, 'delivery', ?4, 0, ?5)",
            [(contact_id, stamp, dumps(data), mail_id, session_of(data)) for contact_id, data, mail_id in rows],
        )

    def insert_event(
        self: Store,
        contact_id: int,
        name: str,
        at: datetime,
        data: dict[str, Any],
        source: str,
        recorded_at: datetime,
        mail_id: int | None = None,
        machine: bool = False,
    ) -> int:
        cursor = self.execute(
            "INSERT INTO events (contact_id, name, at, recorded_at, data, source, mail_id, machine, session_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                contact_id,
                name,
                at,
                recorded_at,
                json.dumps(data, ensure_ascii=False, sort_keys=True),
                source,
                mail_id,
                int(machine),
                session_of(data),
            ),
        )
        return int(cursor.lastrowid or 0)

    def events_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT id, name, at, recorded_at, data, source, mail_id, machine FROM events"
            " WHERE contact_id = ? ORDER BY at, id",
            (contact_id,),
        )

    def max_event_id(self: Store) -> int:
        return int(self.scalar("SELECT COALESCE(MAX(id), 0) FROM events") or 0)

    # --- suppression list --------------------------------------------------------------

    def is_suppressed(self: Store, digest: str) -> bool:
        return self.scalar("SELECT 1 FROM suppressions WHERE hash = ?", (digest,)) is not None

    def suppressed_hashes(self: Store) -> set[str]:
        return {r[0] for r in self.execute("SELECT hash FROM suppressions")}

    def add_suppression(self: Store, digest: str, at: datetime, reason: str) -> None:
        self.execute("INSERT OR IGNORE INTO suppressions (hash, at, reason) VALUES (?, ?, ?)", (digest, at, reason))


def session_of(data: dict[str, Any]) -> str | None:
    """The session an event's data names (SPEC 13), kept in its own indexed column."""
    session = data.get("session")
    return None if session in (None, "") else str(session)
