"""Amazon SES notifications through SNS -> edumail events.

https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
and .../notification-contents.html : the SNS `Message` is JSON with
`eventType` (event publishing) or `notificationType` (identity notifications):
Delivery, Bounce (bounceType Permanent / Transient / Undetermined,
bouncedRecipients with status and diagnosticCode), Complaint, Open, Click;
`mail.tags.edumail_id` is the outbox id the transport sent. The SNS envelope is
verified (sns.py) before this module reads it; its MessageId is the replay key.
"""

from __future__ import annotations

import json
from typing import Any

from edumail import events
from edumail.provider_events import Malformed, ProviderEvent, mapping, timestamp
from edumail.transport.ses import TAG

PROVIDER = "ses"
IGNORED = frozenset({"Send", "Reject", "DeliveryDelay", "Rendering Failure", "RenderingFailure", "Subscription"})


def parse(envelope: dict[str, Any]) -> list[ProviderEvent]:
    """The events of one verified SNS Notification."""
    try:
        message = json.loads(str(envelope.get("Message", "")))
    except ValueError:
        raise Malformed("SNS Message is not JSON") from None
    if not isinstance(message, dict):
        raise Malformed("SNS Message is not a JSON object")
    kind = message.get("eventType") or message.get("notificationType")
    if kind in IGNORED or kind == "AmazonSnsSubscriptionSucceeded":
        return []
    mail = message.get("mail")
    if not isinstance(mail, dict):
        raise Malformed("missing mail")
    base = str(envelope.get("MessageId") or "")
    tags = mapping(mail.get("tags"))
    custom = (tags.get(TAG) or [None])[0] if isinstance(tags.get(TAG), list) else None
    headers = mapping(mail.get("commonHeaders"))
    common = {"custom_id": custom, "message_id": headers.get("messageId")}
    if kind == "Bounce":
        return _bounces(message, base, common)
    if kind == "Complaint":
        block = _block(message, "complaint")
        return [
            _event(
                base,
                i,
                events.COMPLAINED,
                r,
                block.get("timestamp"),
                common,
                {"type": block.get("complaintFeedbackType")},
            )
            for i, r in enumerate(_recipients(block, "complainedRecipients"))
        ]
    if kind == "Delivery":
        block = _block(message, "delivery")
        addresses = block.get("recipients") or mail.get("destination") or []
        return [
            _event(base, i, events.EMAIL_DELIVERED, a, block.get("timestamp"), common, {})
            for i, a in enumerate(addresses)
        ]
    if kind in ("Open", "Click"):
        return [_open_or_click(kind, message, mail, base, common)]
    raise Malformed(f"unknown SES event {kind!r}")


def _block(message: dict[str, Any], name: str) -> dict[str, Any]:
    block = message.get(name)
    if not isinstance(block, dict):
        raise Malformed(f"missing {name}")
    return block


def _recipients(block: dict[str, Any], key: str) -> list[str]:
    found = block.get(key)
    if not isinstance(found, list) or not found:
        raise Malformed(f"missing {key}")
    return [str(r.get("emailAddress", "")) for r in found if isinstance(r, dict)]


def _bounces(message: dict[str, Any], base: str, common: dict[str, Any]) -> list[ProviderEvent]:
    block = _block(message, "bounce")
    kind = "hard" if block.get("bounceType") == "Permanent" else "soft"
    found = []
    for index, recipient in enumerate(block.get("bouncedRecipients") or []):
        if not isinstance(recipient, dict):
            raise Malformed("bad bouncedRecipients")
        data = {
            "kind": kind,
            "type": f"{block.get('bounceType')}/{block.get('bounceSubType')}",
            "status": recipient.get("status"),
            "diagnostic": str(recipient.get("diagnosticCode") or ""),
        }
        found.append(
            _event(
                base,
                index,
                events.BOUNCED,
                str(recipient.get("emailAddress", "")),
                block.get("timestamp"),
                common,
                data,
            )
        )
    if not found:
        raise Malformed("missing bouncedRecipients")
    return found


def _open_or_click(
    kind: str, message: dict[str, Any], mail: dict[str, Any], base: str, common: dict[str, Any]
) -> ProviderEvent:
    block = _block(message, kind.lower())
    destination = mail.get("destination") or [""]
    name = events.EMAIL_OPENED if kind == "Open" else events.EMAIL_CLICKED
    data = {"url": str(block.get("link") or "")} if kind == "Click" else {}
    event = _event(base, 0, name, str(destination[0]), block.get("timestamp"), common, data)
    event.ip, event.agent = block.get("ipAddress"), block.get("userAgent")
    return event


def _event(
    base: str, index: int, name: str, address: str, when: Any, common: dict[str, Any], data: dict[str, Any]
) -> ProviderEvent:
    if not address:
        raise Malformed("missing recipient address")
    return ProviderEvent(
        provider=PROVIDER,
        key=f"{PROVIDER}:{base}:{index}",
        name=name,
        address=address,
        at=timestamp(when),
        custom_id=common["custom_id"],
        message_id=common["message_id"],
        data={k: v for k, v in data.items() if v is not None or k == "status"},
    )
