"""Brevo transactional webhooks -> edumail events.

https://developers.brevo.com/docs/transactional-webhooks : one JSON object per
event, `event` in request, delivered, hard_bounce, soft_bounce, blocked,
invalid_email, deferred, click, opened, unique_opened, proxy_open,
unique_proxy_open, spam, unsubscribed, error; with email, message-id,
X-Mailin-custom (the outbox id the transport sent), ts_event, reason, link.
"""

from __future__ import annotations

from typing import Any

from edumail import events
from edumail.provider_events import Malformed, ProviderEvent, event_key, text, timestamp

PROVIDER = "brevo"
# Events Brevo sends that edumail does not record (the unique_* ones repeat opened / proxy_open).
IGNORED = frozenset({"request", "sent", "deferred", "blocked", "error", "unique_opened", "unique_proxy_open"})
_NAMES = {
    "delivered": events.EMAIL_DELIVERED,
    "hard_bounce": events.BOUNCED,
    "soft_bounce": events.BOUNCED,
    "invalid_email": events.BOUNCED,
    "spam": events.COMPLAINED,
    "complaint": events.COMPLAINED,
    "opened": events.EMAIL_OPENED,
    "proxy_open": events.EMAIL_OPENED,
    "click": events.EMAIL_CLICKED,
    "unsubscribed": events.UNSUBSCRIBED,
}


def parse(payload: Any) -> list[ProviderEvent]:
    items = payload if isinstance(payload, list) else [payload]
    found = []
    for item in items:
        if not isinstance(item, dict):
            raise Malformed("expected a JSON object per event")
        event = _event(item)
        if event is not None:
            found.append(event)
    return found


def _event(item: dict[str, Any]) -> ProviderEvent | None:
    kind = text(item, "event")
    if kind in IGNORED:
        return None
    if kind not in _NAMES:
        raise Malformed(f"unknown Brevo event {kind!r}")
    name = _NAMES[kind]
    when = item.get("ts_event", item.get("ts", item.get("date")))
    data: dict[str, Any] = {"event": kind}
    if name == events.BOUNCED:
        data.update(kind="soft" if kind == "soft_bounce" else "hard", status=None, diagnostic=item.get("reason") or "")
    if name == events.EMAIL_CLICKED:
        data["url"] = text(item, "link")
    custom = item.get("X-Mailin-custom") or item.get("x-mailin-custom")
    return ProviderEvent(
        provider=PROVIDER,
        key=event_key(PROVIDER, item),
        name=name,
        address=text(item, "email"),
        at=timestamp(when),
        custom_id=str(custom) if custom else None,
        message_id=str(item.get("message-id") or "") or None,
        data=data,
        proxy=kind == "proxy_open",
    )
