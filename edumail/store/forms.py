"""SQL for topics (who left which kind of marketing), form signups, and campaign extras."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store


class FormsMixin:
    # --- topics -------------------------------------------------------------------

    def topic_states(self: Store, contact_id: int) -> dict[str, str]:
        """{topic: 'in' | 'out'} for the topics this contact chose or left."""
        return {
            r[0]: r[1]
            for r in self.execute("SELECT topic, state FROM topic_choices WHERE contact_id = ?", (contact_id,))
        }

    def set_topic_state(self: Store, contact_id: int, topic: str, state: str, at: datetime) -> None:
        self.execute(
            "INSERT INTO topic_choices (contact_id, topic, state, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(contact_id, topic) DO UPDATE SET state = excluded.state, at = excluded.at",
            (contact_id, topic, state, at),
        )

    def left_topic_ids(self: Store, topic: str) -> set[int]:
        """Contacts who left this topic."""
        return {
            r[0]
            for r in self.execute("SELECT contact_id FROM topic_choices WHERE topic = ? AND state = 'out'", (topic,))
        }

    def has_left_topic(self: Store, contact_id: int, topic: str) -> bool:
        found = self.scalar(
            "SELECT 1 FROM topic_choices WHERE contact_id = ? AND topic = ? AND state = 'out'", (contact_id, topic)
        )
        return found is not None

    def log_topic_change(self: Store, contact_id: int, at: datetime, source: str, proof: dict[str, Any]) -> None:
        """A consent-log entry for a topic left or joined: the consent itself stays as it is."""
        self.execute(
            "INSERT INTO consent_log (contact_id, at, consent, basis, source, proof)"
            " SELECT id, ?, consent, consent_basis, ?, ? FROM contacts WHERE id = ?",
            (at, source, json.dumps(proof, ensure_ascii=False, sort_keys=True), contact_id),
        )

    def mail_topic(self: Store, mail_id: int) -> str | None:
        """The topic a mail belongs to: its campaign's --topic, else the sequence's (kept in its context)."""
        return self.scalar(
            "SELECT COALESCE(c.topic, json_extract(m.context, '$.topic')) FROM mails m"
            " LEFT JOIN campaigns c ON c.id = m.campaign_id WHERE m.id = ?",
            (mail_id,),
        )

    def last_unsubscribe(self: Store, mail_id: int) -> dict[str, Any] | None:
        """The latest `unsubscribed` event made from this mail and not undone: {id, at (datetime), data (dict)}."""
        row = self.row(
            "SELECT id, at, data FROM events WHERE mail_id = ? AND name = 'unsubscribed'"
            " AND json_extract(data, '$.undone_at') IS NULL ORDER BY id DESC LIMIT 1",
            (mail_id,),
        )
        if row is None:
            return None
        return {"id": row["id"], "at": row["at"], "data": json.loads(row["data"] or "{}")}

    def mark_unsubscribe_undone(self: Store, event_id: int, now: datetime) -> None:
        """The event stays as proof of what happened; `undone_at` takes it out of the stats' unsubscribes."""
        self.execute(
            "UPDATE events SET data = json_set(data, '$.undone_at', ?) WHERE id = ?", (now.isoformat(), event_id)
        )

    def last_consent_at(self: Store, contact_id: int) -> datetime | None:
        """When the contact's consent log last changed."""
        return self.moment("SELECT MAX(at) FROM consent_log WHERE contact_id = ?", (contact_id,))

    # --- form signups -------------------------------------------------------------------

    def insert_form_signup(
        self: Store,
        contact_id: int,
        form: str,
        at: datetime,
        *,
        ip: str | None,
        user_agent: str,
        wording: str,
        topics: list[str],
        snapshot: dict[str, Any],
        event_id: int | None,
    ) -> int:
        cursor = self.execute(
            "INSERT INTO form_signups (contact_id, form, at, ip, user_agent, wording, topics, form_snapshot, event_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                contact_id,
                form,
                at,
                ip,
                user_agent,
                wording,
                json.dumps(topics, ensure_ascii=False),
                json.dumps(snapshot, ensure_ascii=False, sort_keys=True),
                event_id,
            ),
        )
        return int(cursor.lastrowid or 0)

    def pending_form_signup(self: Store, contact_id: int) -> dict[str, Any] | None:
        """The latest signup of this contact not yet confirmed, with `at` as a datetime and topics a list."""
        row = self.row(
            "SELECT * FROM form_signups WHERE contact_id = ? AND confirmed_at IS NULL ORDER BY id DESC LIMIT 1",
            (contact_id,),
        )
        if row is None:
            return None
        row["topics"] = json.loads(row["topics"] or "[]")
        row["form_snapshot"] = json.loads(row["form_snapshot"] or "{}")
        return row

    def confirm_form_signups(self: Store, contact_id: int, at: datetime) -> None:
        self.execute(
            "UPDATE form_signups SET confirmed_at = ? WHERE contact_id = ? AND confirmed_at IS NULL",
            (at, contact_id),
        )

    def form_signups_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM form_signups WHERE contact_id = ? ORDER BY id", (contact_id,))

    def erase_forms_and_topics_of(self: Store, contact_id: int) -> None:
        """Right to erasure: the signups' IP, user agent and form lose their content; topic choices go."""
        self.execute(
            "UPDATE form_signups SET ip = NULL, user_agent = '', wording = '', topics = '[]', form_snapshot = '{}'"
            " WHERE contact_id = ?",
            (contact_id,),
        )
        self.execute("DELETE FROM topic_choices WHERE contact_id = ?", (contact_id,))

    # --- campaign extras (SPEC 16) ----------------------------------------------------

    def campaign_extras(self: Store, campaign_id: int) -> dict[str, Any]:
        """{data, content, until, topic} of a campaign: what its mails render with and when they expire."""
        row = self.row("SELECT data, content, until, topic FROM campaigns WHERE id = ?", (campaign_id,))
        if row is None:
            return {"data": {}, "content": None, "until": None, "topic": None}
        return {
            "data": json.loads(row["data"] or "{}"),
            "content": row["content"],
            "until": row["until"] or None,
            "topic": row["topic"],
        }

    def set_campaign_extras(
        self: Store,
        campaign_id: int,
        *,
        data: dict[str, Any],
        content: str | None,
        until: datetime | None,
        topic: str | None,
    ) -> None:
        self.execute(
            "UPDATE campaigns SET data = ?, content = ?, until = ?, topic = ? WHERE id = ?",
            (
                json.dumps(data, ensure_ascii=False, sort_keys=True),
                content,
                until,
                topic,
                campaign_id,
            ),
        )

    # --- import bookkeeping ---------------------------------------------------------------

    def set_imported_stage(self: Store, contact_id: int, stage: str, at: datetime) -> None:
        """Remember the stage the import file gave (without touching updated_at)."""
        self.execute("UPDATE contacts SET imported_stage = ?, imported_at = ? WHERE id = ?", (stage, at, contact_id))
