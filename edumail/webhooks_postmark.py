"""Postmark webhooks -> edumail events.

https://postmarkapp.com/developer/webhooks/webhooks-overview : one JSON object
per event, `RecordType` in Delivery, Bounce, SpamComplaint, Open, Click,
SubscriptionChange; with MessageID (Postmark's), Metadata (the outbox id the
transport sent, `edumail_id`), Recipient or Email, and the event's date.
"""

from __future__ import annotations

from typing import Any

from edumail import events
from edumail.provider_events import Malformed, ProviderEvent, event_key, mapping, text, timestamp
from edumail.transport.postmark import METADATA_KEY

PROVIDER = "postmark"
# Bounce types that mean the address is gone (https://postmarkapp.com/developer/api/bounce-api#bounce-types)
_HARD = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Unknown", "Blocked"})
_NOT_BOUNCES = frozenset({"Transient", "AutoResponder", "Subscribe", "Unsubscribe", "OpenRelayTest", "DnsError"})
_RECORDS = {
    "Delivery": (events.EMAIL_DELIVERED, "Recipient", "DeliveredAt"),
    "Bounce": (events.BOUNCED, "Email", "BouncedAt"),
    "SpamComplaint": (events.COMPLAINED, "Email", "BouncedAt"),
    "Open": (events.EMAIL_OPENED, "Recipient", "ReceivedAt"),
    "Click": (events.EMAIL_CLICKED, "Recipient", "ReceivedAt"),
    "SubscriptionChange": (events.UNSUBSCRIBED, "Recipient", "ChangedAt"),
}


def parse(payload: Any) -> list[ProviderEvent]:
    if not isinstance(payload, dict):
        raise Malformed("expected one JSON object")
    record = text(payload, "RecordType")
    if record not in _RECORDS:
        raise Malformed(f"unknown Postmark RecordType {record!r}")
    name, address_key, at_key = _RECORDS[record]
    data: dict[str, Any] = {"record": record}
    if record == "Bounce":
        kind = str(payload.get("Type") or "")
        if kind in _NOT_BOUNCES:
            return []
        data.update(
            kind="hard" if kind in _HARD else "soft",
            type=kind,
            status=None,
            diagnostic=str(payload.get("Details") or payload.get("Description") or ""),
        )
    elif record == "Click":
        data["url"] = text(payload, "OriginalLink")
    elif record == "SubscriptionChange":
        if not payload.get("SuppressSending") or payload.get("SuppressionReason") != "ManualSuppression":
            return []  # a reactivation, or Postmark's own echo of a bounce / complaint recorded already
    metadata, geo = mapping(payload.get("Metadata")), mapping(payload.get("Geo"))
    ident = payload.get("ID")
    return [
        ProviderEvent(
            provider=PROVIDER,
            key=f"{PROVIDER}:{record}:{ident}" if ident else event_key(PROVIDER, payload),
            name=name,
            address=text(payload, address_key),
            at=timestamp(payload.get(at_key)),
            custom_id=str(metadata.get(METADATA_KEY) or "") or None,
            message_id=f"postmark:{payload.get('MessageID')}",
            data=data,
            ip=str(geo.get("IP") or "") or None,
            agent=str(payload.get("UserAgent") or "") or None,
        )
    ]
