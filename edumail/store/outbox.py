"""SQL for the outbox (mails). Methods are mixed into Store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail.clock import to_db

_MARK_SENT = (
    "UPDATE mails SET state = 'sent', sent_at = ?, attempts = attempts + 1, subject = ?, links = ?,"
    " last_error = NULL WHERE id = ?"
)
# The next due mails to 'sending'. `+state`: the outer UPDATE finds its rows by primary key; with
# the index on state it would walk every queued mail at each claim (a 100,000-mail campaign).
CLAIM = (
    "UPDATE mails SET state = 'sending', sending_at = :now WHERE id IN ("
    " SELECT id FROM mails WHERE state = 'queued' AND not_before <= :now ORDER BY not_before, id LIMIT :n"
    ") AND +state = 'queued' RETURNING *"
)

if TYPE_CHECKING:
    from edumail.store import Store


class OutboxMixin:
    def enqueue_mail(
        self: Store,
        *,
        message_id: str,
        template: str,
        purpose: str,
        not_before: datetime,
        now: datetime,
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
                " sequence, campaign_id, state, not_before, queued_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
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

    def mail(self: Store, mail_id: int) -> dict[str, Any] | None:
        return self.row("SELECT * FROM mails WHERE id = ?", (mail_id,))

    def mails_of(self: Store, contact_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM mails WHERE contact_id = ? ORDER BY queued_at, id", (contact_id,))

    # --- delivery: claiming and recording ------------------------------------------

    def recover_sending_mails(self: Store) -> list[dict[str, Any]]:
        """Mails a crashed run left in 'sending': back to queued (same Message-ID); returns them."""
        rows = self.rows("SELECT id, message_id, sending_at FROM mails WHERE state = 'sending'")
        self.execute("UPDATE mails SET state = 'queued' WHERE state = 'sending'")
        return rows

    def count_due_mails(self: Store, now: datetime) -> int:
        return int(self.scalar("SELECT COUNT(*) FROM mails WHERE state = 'queued' AND not_before <= ?", (now,)) or 0)

    def claim_due_mails(self: Store, now: datetime, count: int) -> list[dict[str, Any]]:
        """Up to `count` due queued mails, in sending order, switched to 'sending' in one statement."""
        rows = self.rows(CLAIM, {"now": now, "n": count})
        return sorted(rows, key=lambda row: (row["not_before"], row["id"]))

    def peek_due_mails(self: Store, now: datetime, limit: int | None = None) -> list[dict[str, Any]]:
        """Due queued mails, in sending order, without claiming them (dry runs)."""
        sql = "SELECT * FROM mails WHERE state = 'queued' AND not_before <= ? ORDER BY not_before, id"
        params: list[Any] = [now]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self.rows(sql, params)

    def mark_mail_sent(self: Store, mail_id: int, sent_at: datetime, subject: str, links: list[str]) -> None:
        self.execute(_MARK_SENT, (sent_at, subject, json.dumps(links, ensure_ascii=False), mail_id))

    def mark_mails_sent(self: Store, sent: list[tuple[int, str, list[str]]], sent_at: datetime) -> None:
        """mark_mail_sent for many (mail id, subject, links)."""
        stamp = to_db(sent_at)
        self.conn.executemany(
            _MARK_SENT,
            [(stamp, subject, json.dumps(links, ensure_ascii=False), mail_id) for mail_id, subject, links in sent],
        )

    def mark_mail_accepted(self: Store, mail_id: int, sent_at: datetime) -> None:
        """The least a full disk may still take: the row rewritten in place, the rest kept in the journal."""
        self.execute(
            "UPDATE mails SET state = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ? AND state = 'sending'",
            (sent_at, mail_id),
        )

    def complete_sent_mail(self: Store, mail_id: int, sent_at: datetime, subject: str, links: list[str]) -> None:
        """mark_mail_sent for a mail already marked accepted (its attempt counted once)."""
        self.execute(
            "UPDATE mails SET attempts = attempts + (state = 'sending'), state = 'sent', sent_at = ?, subject = ?,"
            " links = ?, last_error = NULL WHERE id = ?",
            (sent_at, subject, json.dumps(links, ensure_ascii=False), mail_id),
        )

    def defer_mail(
        self: Store, mail_id: int, not_before: datetime, error: str, first_attempt: datetime | None = None
    ) -> None:
        """A temporary failure: stays queued, one more attempt counted, later; the first attempt's time kept."""
        self.execute(
            "UPDATE mails SET state = 'queued', attempts = attempts + 1, not_before = ?, last_error = ?,"
            " first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ?",
            (not_before, error, first_attempt, mail_id),
        )

    def release_mail(self: Store, mail_id: int, error: str | None = None) -> None:
        """Back to queued untouched (the run stopped before trying it, or stopped because of it)."""
        self.execute(
            "UPDATE mails SET state = 'queued', last_error = COALESCE(?, last_error)"
            " WHERE id = ? AND state = 'sending'",
            (error, mail_id),
        )

    def fail_mail(self: Store, mail_id: int, error: str, *, attempted: bool = True) -> None:
        self.execute(
            "UPDATE mails SET state = 'failed', attempts = attempts + ?, last_error = ? WHERE id = ?",
            (int(attempted), error, mail_id),
        )

    def cancel_mail(self: Store, mail_id: int, reason: str) -> None:
        self.execute("UPDATE mails SET state = 'cancelled', last_error = ? WHERE id = ?", (reason, mail_id))

    # --- `edumail outbox` -------------------------------------------------------------

    def outbox_counts(self: Store) -> dict[str, int]:
        return {r["state"]: r["n"] for r in self.rows("SELECT state, COUNT(*) AS n FROM mails GROUP BY state")}

    def outbox_list(self: Store, states: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(states))
        return self.rows(
            "SELECT m.id, m.state, m.template, m.purpose, m.attempts, m.not_before, m.queued_at, m.last_error,"
            " m.sequence, m.step_id, COALESCE(c.email, m.to_email) AS email, k.name AS campaign"
            " FROM mails m LEFT JOIN contacts c ON c.id = m.contact_id LEFT JOIN campaigns k ON k.id = m.campaign_id"
            f" WHERE m.state IN ({marks}) ORDER BY m.state, m.not_before, m.id LIMIT ?",
            [*states, limit],
        )

    def failed_mails(self: Store) -> list[dict[str, Any]]:
        """Failed mails with their contact's suppression state, for `outbox retry`."""
        return self.rows(
            "SELECT m.id, m.purpose, m.last_error, m.contact_id, c.bounced_at, c.forgotten_at, c.consent,"
            " c.consent_basis FROM mails m LEFT JOIN contacts c ON c.id = m.contact_id WHERE m.state = 'failed'"
            " ORDER BY m.id"
        )

    def campaign_waiting(self: Store, campaign_id: int) -> tuple[int, datetime | None]:
        """Queued mails of a campaign and the earliest time one of them may go."""
        where = "FROM mails WHERE campaign_id = ? AND state = 'queued'"
        count = int(self.scalar(f"SELECT COUNT(*) {where}", (campaign_id,)) or 0)  # noqa: S608 - constant text
        return count, self.moment(f"SELECT MIN(not_before) {where}", (campaign_id,))  # noqa: S608

    def requeue_mails(self: Store, mail_ids: list[int], now: datetime) -> None:
        for mail_id in mail_ids:
            self.requeue_mail(mail_id, now)

    def requeue_mail(self: Store, mail_id: int, now: datetime) -> None:
        self.execute(
            "UPDATE mails SET state = 'queued', attempts = 0, first_attempt_at = NULL, not_before = ?,"
            " last_error = NULL WHERE id = ? AND state = 'failed'",
            (now, mail_id),
        )

    def marketing_counts(
        self: Store, since: datetime, contact_ids: Iterable[int] | None = None, exclude_campaign: int | None = None
    ) -> dict[int, int]:
        """Marketing mails per contact queued since `since` and not failed or cancelled (sequences and campaigns)."""
        sql = (
            "SELECT contact_id, COUNT(*) FROM mails WHERE purpose = 'marketing' AND contact_id IS NOT NULL"
            " AND state IN ('queued', 'sending', 'sent') AND queued_at >= ?"
            " AND (campaign_id IS NULL OR campaign_id != ?)"
        )
        params: list[Any] = [since, exclude_campaign or 0]
        if contact_ids is not None:
            wanted = sorted(set(contact_ids))
            sql += f" AND contact_id IN ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        return {r[0]: r[1] for r in self.execute(sql + " GROUP BY contact_id", params)}
