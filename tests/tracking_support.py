"""Helpers for the tracking, stats and serve tests: sent mails in a real store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edumail import clock, contacts, events
from edumail.store import Store

SECRET = b"test-secret-key-not-for-production"
SENT_AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LATER = SENT_AT + timedelta(hours=2)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
LINKS = ["https://centre.example/programme", "https://centre.example/inscription"]


def contact(store: Store, email: str, consent: str = events.OPTED_IN, at: datetime = SENT_AT) -> int:
    """A contact with this consent (opt_in basis when opted in)."""
    found, _ = contacts.get_or_create(store, email, at - timedelta(days=30), "test")
    if consent != events.UNKNOWN:
        contacts.set_consent(
            store, found["id"], consent, basis=None, now=at - timedelta(days=30), source="test", proof={}
        )
    return int(found["id"])


def sent_mail(
    store: Store,
    contact_id: int,
    *,
    links: list[str] | None = None,
    sent_at: datetime | None = SENT_AT,
    sequence: str | None = None,
    step_id: str | None = None,
    journey_id: int | None = None,
    campaign_id: int | None = None,
    purpose: str = events.MARKETING,
    subject: str = "Votre session approche",
) -> int:
    """A mail queued and (unless sent_at is None) marked sent, with an email_sent event."""
    stamp = clock.to_db(sent_at or SENT_AT)
    mail_id = store.enqueue_mail(
        message_id=f"<{uuid.uuid4().hex}@centre.example>",
        template=step_id or "newsletter",
        purpose=purpose,
        not_before=stamp,
        now=stamp,
        contact_id=contact_id,
        journey_id=journey_id,
        step_id=step_id,
        sequence=sequence,
        campaign_id=campaign_id,
    )
    assert mail_id
    if sent_at is not None:
        store.mark_mail_sent(mail_id, stamp, subject, list(LINKS if links is None else links))
        contacts.record_event(
            store, contact_id, events.EMAIL_SENT, at=sent_at, data={}, source="delivery", now=sent_at, mail_id=mail_id
        )
    return mail_id


def journey(store: Store, sequence: str, contact_id: int, started_at: datetime) -> int:
    """A journey row (what the engine creates on enrolment)."""
    cursor = store.execute(
        "INSERT INTO journeys (sequence, contact_id, trigger_key, started_at) VALUES (?, ?, ?, ?)",
        (sequence, contact_id, f"test:{uuid.uuid4().hex}", clock.to_db(started_at)),
    )
    return int(cursor.lastrowid or 0)


def events_named(store: Store, name: str) -> list[dict[str, Any]]:
    return [dict(row) for row in store.rows("SELECT * FROM events WHERE name = ? ORDER BY id", (name,))]


def write_settings(root: Path, extra: str) -> None:
    path = root / "edumail.yaml"
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
