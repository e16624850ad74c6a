"""SQL for the tracking area: opens, clicks, unsubscribes and stats. Mixed into Store."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store

# A mail counts as sent once the server accepted it, or once it bounced
# (a refusal at SMTP time leaves it 'failed' with a bounced event).
# Mails to contacts; a staff alert (template __notify__) is about a contact, not to them.
_SENT_MAILS = """
SELECT m.id, m.contact_id, m.sequence, m.step_id, m.campaign_id,
       COALESCE(m.sent_at, m.sending_at, m.queued_at) AS t
FROM mails m
WHERE m.contact_id IS NOT NULL AND m.template <> '__notify__'
  AND (m.state = 'sent' OR EXISTS (SELECT 1 FROM events b WHERE b.mail_id = m.id AND b.name = 'bounced'))
"""

_FLAGGED = f"""
WITH sent AS ({_SENT_MAILS}),
outcomes AS (
  SELECT mail_id,
    MAX(name = 'bounced') AS is_bounced,
    MAX(name IN ('email_opened', 'email_clicked') AND machine = 0) AS is_opened,
    MAX(name = 'email_clicked' AND machine = 0) AS is_clicked,
    MAX(name = 'unsubscribed' AND json_extract(data, '$.undone_at') IS NULL) AS is_unsubscribed,
    MAX(name = 'complained') AS is_complained
  FROM events
  WHERE mail_id IS NOT NULL AND name IN ('bounced', 'email_opened', 'email_clicked', 'unsubscribed', 'complained')
  GROUP BY mail_id
),
flags AS (
  SELECT s.*, o.is_bounced, o.is_opened, o.is_clicked, o.is_unsubscribed, o.is_complained
  FROM sent s LEFT JOIN outcomes o ON o.mail_id = s.id
  WHERE s.t >= :since AND s.t < :until {{where}}
)
SELECT {{group}},
  COUNT(DISTINCT contact_id) AS sent,
  COUNT(DISTINCT CASE WHEN is_bounced THEN contact_id END) AS bounced,
  COUNT(DISTINCT CASE WHEN is_opened THEN contact_id END) AS opened,
  COUNT(DISTINCT CASE WHEN is_clicked THEN contact_id END) AS clicked,
  COUNT(DISTINCT CASE WHEN is_unsubscribed THEN contact_id END) AS unsubscribed,
  COUNT(DISTINCT CASE WHEN is_complained THEN contact_id END) AS complained,
  MIN(id) AS first_mail_id
FROM flags GROUP BY {{group}} ORDER BY first_mail_id
"""


class TrackingMixin:
    # --- what the tracking server needs ----------------------------------------

    def tracked_mail(self: Store, mail_id: int) -> dict[str, Any] | None:
        """A mail with what the tracker needs of its contact (None if unknown)."""
        return self.row(
            "SELECT m.id, m.contact_id, m.message_id, m.sent_at, m.state, m.purpose, m.links, m.subject,"
            " c.email, c.consent, c.consent_basis, c.forgotten_at"
            " FROM mails m LEFT JOIN contacts c ON c.id = m.contact_id WHERE m.id = ?",
            (mail_id,),
        )

    def recent_click_indexes(self: Store, mail_id: int, since: datetime) -> set[int]:
        """Link indexes of this mail clicked at or after `since` (people and machines)."""
        return {
            int(index)
            for (index,) in self.execute(
                "SELECT DISTINCT json_extract(data, '$.index') FROM events"
                " WHERE mail_id = ? AND name = 'email_clicked' AND at >= ?",
                (mail_id, since),
            )
            if index is not None
        }

    def recent_hit(self: Store, mail_id: int, name: str, index: int | None, client: str, since: datetime) -> bool:
        """This client (salted hash) already opened / clicked link `index` of this mail after `since`."""
        sql = "SELECT 1 FROM events WHERE mail_id = ? AND name = ? AND at > ? AND json_extract(data, '$.client') = ?"
        params: list[Any] = [mail_id, name, since, client]
        if index is not None:
            sql += " AND json_extract(data, '$.index') = ?"
            params.append(index)
        return self.scalar(sql + " LIMIT 1", params) is not None

    def flag_clicks_machine(self: Store, mail_id: int, since: datetime) -> int:
        """Re-flag the clicks of a scanner's burst as machine; returns how many changed."""
        cursor = self.execute(
            "UPDATE events SET machine = 1 WHERE mail_id = ? AND name = 'email_clicked' AND at >= ? AND machine = 0",
            (mail_id, since),
        )
        return cursor.rowcount

    def complaint_recorded(self: Store, contact_id: int, mail_id: int) -> bool:
        """A spam complaint about this mail is already recorded (from a webhook or an earlier report)."""
        return (
            self.scalar(
                "SELECT 1 FROM events WHERE contact_id = ? AND mail_id = ? AND name = 'complained' LIMIT 1",
                (contact_id, mail_id),
            )
            is not None
        )

    # --- what a contact's history needs ----------------------------------------------

    def mail_opened(self: Store, mail_id: int) -> bool:
        """Read by a person: a human open, or a human click (images may have been blocked)."""
        return (
            self.scalar(
                "SELECT 1 FROM events WHERE mail_id = ? AND name IN ('email_opened', 'email_clicked')"
                " AND machine = 0 LIMIT 1",
                (mail_id,),
            )
            is not None
        )

    def mail_clicks(self: Store, mail_id: int) -> list[str]:
        """The URLs of this mail clicked by a human, in order, once each."""
        urls: list[str] = []
        for (data,) in self.execute(
            "SELECT data FROM events WHERE mail_id = ? AND name = 'email_clicked' AND machine = 0 ORDER BY at, id",
            (mail_id,),
        ):
            url = json.loads(data or "{}").get("url")
            if url and url not in urls:
                urls.append(url)
        return urls

    # --- stats -----------------------------------------------------------------------

    def mail_figures(
        self: Store, by: str, since: datetime, until: datetime, sequence: str | None = None
    ) -> list[dict[str, Any]]:
        """Unique-contact figures of sent mails grouped `by` 'step', 'sequence', 'campaign' or 'all' (one row)."""
        group = {"step": "sequence, step_id", "sequence": "sequence", "campaign": "campaign_id", "all": "'all'"}[by]
        where = {"campaign": " AND s.campaign_id IS NOT NULL", "all": ""}.get(by, " AND s.sequence IS NOT NULL")
        params: dict[str, Any] = {"since": since, "until": until}
        if sequence is not None:
            where += " AND s.sequence = :sequence"
            params["sequence"] = sequence
        return self.rows(_FLAGGED.format(group=group, where=where), params)

    def stats_sequence_names(self: Store) -> list[str]:
        """Every sequence that has journeys or mails, in the order first seen."""
        return [
            name
            for (name,) in self.execute(
                "SELECT sequence FROM (SELECT sequence, MIN(started_at) AS first FROM journeys GROUP BY sequence"
                " UNION ALL SELECT sequence, MIN(queued_at) FROM mails WHERE sequence IS NOT NULL GROUP BY sequence)"
                " GROUP BY sequence ORDER BY MIN(first), sequence"
            )
        ]

    def campaigns_all(self: Store) -> list[dict[str, Any]]:
        return self.rows("SELECT id, name, template, scheduled_at, state FROM campaigns ORDER BY scheduled_at, id")

    def journey_conversions(
        self: Store, sequence: str, goal_event: str, within_seconds: float, since: datetime, until: datetime
    ) -> tuple[int, int]:
        """(journeys started in the period, those whose contact had `goal_event` within the window)."""
        found = self.execute(
            "SELECT COUNT(*), COALESCE(SUM(EXISTS (SELECT 1 FROM events e WHERE e.contact_id = j.contact_id"
            " AND e.name = ? AND e.at >= j.started_at"
            " AND julianday(e.at) <= julianday(j.started_at) + ? / 86400.0)), 0)"
            " FROM journeys j WHERE j.sequence = ? AND j.started_at >= ? AND j.started_at < ?",
            (goal_event, within_seconds, sequence, since, until),
        ).fetchone()
        return int(found[0]), int(found[1])

    def journeys_count(self: Store, sequence: str, since: datetime, until: datetime) -> int:
        return int(
            self.scalar(
                "SELECT COUNT(*) FROM journeys WHERE sequence = ? AND started_at >= ? AND started_at < ?",
                (sequence, since, until),
            )
            or 0
        )

    def sends_per_hour(
        self: Store, since: datetime, until: datetime, sequence: str | None = None
    ) -> list[tuple[str, int]]:
        """(UTC hour 'YYYY-MM-DDTHH', mails sent) for mails to contacts."""
        sql = f"WITH sent AS ({_SENT_MAILS}) SELECT substr(t, 1, 13) AS hour, COUNT(*) FROM sent WHERE t >= ? AND t < ?"
        params: list[Any] = [since, until]
        if sequence is not None:
            sql += " AND sequence = ?"
            params.append(sequence)
        return [(h, int(n)) for h, n in self.execute(sql + " GROUP BY hour ORDER BY hour", params)]

    def first_opens_per_hour(
        self: Store, since: datetime, until: datetime, sequence: str | None = None
    ) -> list[tuple[str, int]]:
        """(UTC hour, mails first read by a person that hour), for mails sent in the period."""
        sql = (
            f"WITH sent AS ({_SENT_MAILS}), firsts AS ("
            " SELECT MIN(e.at) AS at FROM events e JOIN sent s ON s.id = e.mail_id"
            " WHERE e.name IN ('email_opened', 'email_clicked') AND e.machine = 0 AND s.t >= ? AND s.t < ?"
        )
        params: list[Any] = [since, until]
        if sequence is not None:
            sql += " AND s.sequence = ?"
            params.append(sequence)
        sql += " GROUP BY e.mail_id) SELECT substr(at, 1, 13) AS hour, COUNT(*) FROM firsts GROUP BY hour ORDER BY hour"
        return [(h, int(n)) for h, n in self.execute(sql, params)]

    def mails_sent_between(self: Store, after: datetime, upto: datetime) -> list[dict[str, Any]]:
        """Mails to contacts sent in (after, upto]: what the demo's simulated readers receive."""
        return self.rows(
            "SELECT id, contact_id, template, purpose, sent_at, links FROM mails"
            " WHERE state = 'sent' AND contact_id IS NOT NULL AND template <> '__notify__'"
            " AND sent_at > ? AND sent_at <= ? ORDER BY sent_at, id",
            (after, upto),
        )
