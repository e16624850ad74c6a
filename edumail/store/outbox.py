"""SQL for the outbox (mails) and campaigns. Methods are mixed into Store."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store


class OutboxMixin:
    def enqueue_mail(
        self: "Store",
        *,
        message_id: str,
        template: str,
        purpose: str,
        not_before: str,
        now: str,
        contact_id: int | None = None,
        to_email: str | None = None,
        context: dict[str, Any] | None = None,
        journey_id: int | None = None,
        step_id: str | None = None,
        sequence: str | None = None,
        campaign_id: int | None = None,
    ) -> int | None:
        """Queue one mail; None when this journey step or campaign contact already has one."""
        try:
            cursor = self.execute(
                "INSERT INTO mails (message_id, contact_id, to_email, template, purpose, context, journey_id, step_id,"
                " sequence, campaign_id, state, not_before, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (
                    message_id,
                    contact_id,
                    to_email,
                    template,
                    purpose,
                    json.dumps(context or {}, ensure_ascii=False, sort_keys=True, default=str),
                    journey_id,
                    step_id,
                    sequence,
                    campaign_id,
                    not_before,
                    now,
                ),
            )
        except sqlite3.IntegrityError:
            return None
        return int(cursor.lastrowid or 0)

    def mail(self: "Store", mail_id: int) -> dict[str, Any] | None:
        return self.row("SELECT * FROM mails WHERE id = ?", (mail_id,))

    def mail_by_message_id(self: "Store", message_id: str) -> dict[str, Any] | None:
        return self.row("SELECT * FROM mails WHERE message_id = ?", (message_id,))

    def mails_of(self: "Store", contact_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM mails WHERE contact_id = ? ORDER BY queued_at, id", (contact_id,))
