"""What a provider's webhook says, in edumail's vocabulary, and how it is recorded (SPEC 18).

Each webhooks_PROVIDER.py turns its payload into `ProviderEvent`s (or raises
`Malformed`, answered 400 before anything is written); `record` then writes
them all in one transaction: a payload is recorded entirely or not at all,
and each event's `key` (the provider's event id, or a hash of the event) is
remembered so a replayed webhook records nothing twice. The mail is found by
the outbox id the transport sent (`edumail-ID` custom id / tag / metadata),
else its Message-ID, else the recipient's last mail.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edumail import bots, contacts, events, journeys
from edumail.bounce_charge import is_staff_mail
from edumail.clock import UTC
from edumail.store import Store

DELIVERED = events.EMAIL_DELIVERED
COMPLAINED = events.COMPLAINED
_CUSTOM_ID = re.compile(r"^edumail-(\d{1,18})$")


class Malformed(ValueError):
    """A payload that is not what the provider documents: answered 400, nothing recorded."""


@dataclass
class ProviderEvent:
    provider: str
    key: str  # replay key, unique per provider event
    name: str  # email_delivered, bounced, complained, email_opened, email_clicked, unsubscribed
    address: str
    at: datetime
    custom_id: str | None = None
    message_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ip: str | None = None
    agent: str | None = None
    proxy: bool = False  # the provider says a proxy (Apple MPP, Brevo proxy_open) made this open


@dataclass
class Recorded:
    recorded: int = 0
    replayed: int = 0
    unmatched: int = 0

    def as_json(self) -> dict[str, int]:
        return {"recorded": self.recorded, "replayed": self.replayed, "unmatched": self.unmatched}


def event_key(provider: str, item: Any) -> str:
    """A replay key for a provider event that has no id of its own: a hash of its canonical JSON."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{provider}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def timestamp(value: Any) -> datetime:
    """A Unix time or an ISO 8601 date from a payload (Malformed otherwise)."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str) and value:
            text = value.strip().replace("Z", "+00:00")
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise Malformed(f"expected a date, got {value!r}")


def mapping(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def text(item: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = item.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if required:
        raise Malformed(f"missing {key!r}")
    return ""


def record(store: Store, found: list[ProviderEvent], now: datetime) -> Recorded:
    """Record a payload's events in one transaction (all or nothing), skipping those already seen."""
    result = Recorded()
    with store.transaction():
        for event in found:
            key = f"webhook:{event.key}"
            if store.seen_inbound(key):
                result.replayed += 1
                continue
            match = _match(store, event)
            if match is None:
                result.unmatched += 1
            else:
                _record_one(store, event, match[0], match[1], now)
                result.recorded += 1
            store.mark_inbound_seen(key, now)
    return result


def _match(store: Store, event: ProviderEvent) -> tuple[int, dict[str, Any] | None] | None:
    mail: dict[str, Any] | None = None
    custom = _CUSTOM_ID.match(event.custom_id or "")
    if custom:
        mail = store.mail(int(custom.group(1)))
    if mail is None and event.message_id:
        bare = event.message_id.strip().strip("<>")
        mail = store.mails_by_message_ids([bare]).get(bare)
    if mail is not None and is_staff_mail(mail):  # a staff alert about a contact: its fate is not theirs (SPEC 19)
        return None
    if mail is not None and mail["contact_id"] is not None:
        contact = store.contact(int(mail["contact_id"]))
    else:
        contact = store.contact_by_email(event.address) if event.address else None
        mail = store.last_mail_to(contact["id"]) if contact is not None else None
    if contact is None or contact["forgotten_at"]:
        return None
    return int(contact["id"]), mail


def _record_one(
    store: Store, event: ProviderEvent, contact_id: int, mail: dict[str, Any] | None, now: datetime
) -> None:
    mail_id = int(mail["id"]) if mail else None
    data = {"provider": event.provider, **event.data}
    source = f"{event.provider} webhook"
    machine = False
    if event.name == events.EMAIL_OPENED:
        sent_at = mail["sent_at"] if mail else None
        verdict = "proxy" if event.proxy else bots.open_verdict(event.ip, event.agent or "", "GET", sent_at, event.at)
        if verdict:
            data["machine"] = verdict
            machine = True
    if event.name == events.BOUNCED and mail_id is not None:
        data["mail_id"] = mail_id
    contacts.record_event(
        store, contact_id, event.name, at=event.at, data=data, source=source, now=now, mail_id=mail_id, machine=machine
    )
    if event.name == events.BOUNCED and data.get("kind") in ("hard", "soft"):
        repeated = data["kind"] == "soft" and mail_id is not None and _soft_twice(store, contact_id, mail_id)
        if not repeated:
            contacts.mark_bounced(store, contact_id, str(data["kind"]), now)
    elif event.name == COMPLAINED:
        suppress_complaint(store, contact_id, source=source, proof={"provider": event.provider, **event.data}, now=now)
    elif event.name == events.UNSUBSCRIBED:
        opt_out(store, contact_id, source=source, proof={"provider": event.provider, "mail_id": mail_id}, now=now)


def _soft_twice(store: Store, contact_id: int, mail_id: int) -> bool:
    count = store.scalar(
        "SELECT COUNT(*) FROM events WHERE contact_id = ? AND mail_id = ? AND name = 'bounced'"
        " AND json_extract(data, '$.kind') = 'soft'",
        (contact_id, mail_id),
    )
    return int(count or 0) > 1


def opt_out(store: Store, contact_id: int, *, source: str, proof: dict[str, Any], now: datetime) -> bool:
    """The contact opted out through the provider: consent logged with its proof, marketing journeys ended."""
    with store.transaction():
        changed = contacts.set_consent(
            store, contact_id, events.OPTED_OUT, basis=None, now=now, source=source, proof=proof
        )
        journeys.end_all(store, contact_id, reason="unsubscribed", now=now)
    return changed


def suppress_complaint(store: Store, contact_id: int, *, source: str, proof: dict[str, Any], now: datetime) -> bool:
    """A spam complaint (SPEC 18): marketing to this contact stops at once, as for an unsubscribe.

    The one place a `complained` event suppresses (webhooks here; ARF reports can call it too).
    """
    with store.transaction():
        changed = contacts.set_consent(
            store, contact_id, events.OPTED_OUT, basis=None, now=now, source=source, proof={"complaint": True, **proof}
        )
        journeys.end_all(store, contact_id, reason="complained", now=now)
    return changed
