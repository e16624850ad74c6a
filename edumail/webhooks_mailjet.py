"""Mailjet event API -> edumail events.

https://dev.mailjet.com/email/guides/webhooks/ : a JSON object, or an array
of them when grouping is on, with `event` in sent, open, click, bounce,
blocked, spam, unsub; email, time (Unix), MessageID, CustomID (the outbox
id the transport sent); bounce: hard_bounce, error_related_to, error,
comment; open: ip, agent; click: url; spam: source.
"""

from __future__ import annotations

from typing import Any

from edumail import events
from edumail.provider_events import Malformed, ProviderEvent, event_key, text, timestamp

PROVIDER = "mailjet"
IGNORED = frozenset({"blocked"})
_NAMES = {
    "sent": events.EMAIL_DELIVERED,
    "bounce": events.BOUNCED,
    "spam": events.COMPLAINED,
    "open": events.EMAIL_OPENED,
    "click": events.EMAIL_CLICKED,
    "unsub": events.UNSUBSCRIBED,
}


def parse(payload: Any) -> list[ProviderEvent]:
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise Malformed("expected at least one event")
    found = []
    for item in items:
        if not isinstance(item, dict):
            raise Malformed("expected a JSON object per event")
        kind = text(item, "event")
        if kind in IGNORED:
            continue
        if kind not in _NAMES:
            raise Malformed(f"unknown Mailjet event {kind!r}")
        found.append(_event(item, kind))
    return found


def _event(item: dict[str, Any], kind: str) -> ProviderEvent:
    name = _NAMES[kind]
    data: dict[str, Any] = {"event": kind}
    if name == events.BOUNCED:
        hard = item.get("hard_bounce")
        if not isinstance(hard, bool):
            raise Malformed("bounce without hard_bounce true/false")
        diagnostic = " ".join(str(item.get(k) or "") for k in ("error_related_to", "error", "comment")).strip()
        data.update(kind="hard" if hard else "soft", status=None, diagnostic=diagnostic)
    elif name == events.EMAIL_CLICKED:
        data["url"] = text(item, "url")
    elif name == events.COMPLAINED:
        data["source"] = str(item.get("source") or "")
    message_id = item.get("MessageID") or item.get("Message_GUID")
    return ProviderEvent(
        provider=PROVIDER,
        key=event_key(PROVIDER, item),
        name=name,
        address=text(item, "email"),
        at=timestamp(item.get("time")),
        custom_id=str(item.get("CustomID") or "") or None,
        message_id=None if message_id is None else f"mailjet:{message_id}",
        data=data,
        ip=str(item.get("ip") or "") or None,
        agent=str(item.get("agent") or "") or None,
    )
