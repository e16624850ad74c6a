"""A contact's whole story in time order: consent, events, journey steps, mails."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from edumail import attachments, clock
from edumail.compose import NOTIFY
from edumail.contacts import display_name
from edumail.store import Store


def story(store: Store, contact: dict[str, Any], tz: Any) -> dict[str, Any]:
    """Everything `contacts show` prints, as plain data (times in UTC ISO)."""
    contact_id = contact["id"]
    return {
        "contact": _card(contact),
        "tags": store.tags_of(contact_id),
        "topics": store.topic_states(contact_id),  # topics chosen ("in") or left ("out"); others: never asked
        "consent_log": [
            {**entry, "proof": json.loads(entry["proof"] or "{}")} for entry in store.consent_log(contact_id)
        ],
        "timeline": _timeline(store, contact_id),
    }


def _timeline(store: Store, contact_id: int) -> list[dict[str, Any]]:
    """Events, journey steps and mails of a contact, oldest first."""
    timeline: list[dict[str, Any]] = []
    files: dict[int, list[Any]] = {}  # mail id -> the attachments its email_sent event recorded
    for event in store.events_of(contact_id):
        data = json.loads(event["data"] or "{}")
        if event["name"] == "email_sent" and event["mail_id"] and isinstance(data.get("attachments"), list):
            files[event["mail_id"]] = data["attachments"]
        timeline.append(
            {
                "at": event["at"],
                "kind": "event",
                "name": event["name"],
                "data": data,
                "source": event["source"],
                "machine": bool(event["machine"]),
                "mail_id": event["mail_id"],
            }
        )
    for entry in store.journey_steps_of(contact_id):
        timeline.append(
            {
                "at": entry["at"],
                "kind": "journey",
                "sequence": entry["sequence"],
                "step": entry["step_id"],
                "outcome": entry["outcome"],
                "reason": entry["reason"],
                "mail_id": entry["mail_id"],
            }
        )
    for mail in store.mails_of(contact_id):
        timeline.append(
            {
                "at": mail["sent_at"] or mail["queued_at"],
                "kind": "mail",
                "mail_id": mail["id"],
                "template": mail["template"],
                "to": mail["to_email"],
                "subject": mail["subject"],
                "status": mail["state"],
                "sequence": mail["sequence"],
                "step": mail["step_id"],
                "campaign_id": mail["campaign_id"],
                "error": mail["last_error"],
                "opened": store.mail_opened(mail["id"]),
                "clicked": store.mail_clicks(mail["id"]),
                "attachments": files.get(mail["id"], []),
            }
        )
    timeline.sort(key=lambda item: (item["at"] or _NEVER, _ORDER[item["kind"]]))
    return timeline


def _card(contact: dict[str, Any]) -> dict[str, Any]:
    return {
        "email": contact["email"],
        "name": display_name(contact),
        "first_name": contact["first_name"],
        "last_name": contact["last_name"],
        "stage": contact["stage"],
        "consent": contact["consent"],
        "consent_basis": contact["consent_basis"],
        "timezone": contact["timezone"],
        "fields": json.loads(contact["fields"] or "{}"),
        "created_at": contact["created_at"],
        "bounced_at": contact["bounced_at"],
        "soft_bounces": contact["soft_bounces"],
        "forgotten_at": contact["forgotten_at"],
    }


_ORDER = {"event": 0, "journey": 1, "mail": 2}
_NEVER = datetime.min.replace(tzinfo=clock.UTC)


def describe(item: dict[str, Any]) -> str:
    """One line for a timeline entry."""
    if item["kind"] == "event":
        data = ", ".join(f"{k}={v}" for k, v in item["data"].items())
        flag = " (machine)" if item["machine"] else ""
        return f"{item['name']}{flag}" + (f"  {data}" if data else "")
    if item["kind"] == "journey":
        reason = f": {item['reason']}" if item["reason"] else ""
        where = f"{item['sequence']} / {item['step']}" if item["step"] else item["sequence"]
        return f"{where}: {item['outcome']}{reason}"
    step = str(item.get("step") or "")
    alert = item["template"] == NOTIFY
    if alert:
        step = step.removesuffix(":notify")
    where = f"{item['sequence']} / {step}: " if item.get("sequence") and step else ""
    what = f"staff alert to {item.get('to') or 'the team'}" if alert else f"mail {item['template']}"
    parts = [where + what, item["status"]]
    if item.get("subject"):
        parts.insert(1, f'"{item["subject"]}"')
    if item.get("attachments"):
        parts.append(attachments.summary(item["attachments"]))  # 2 files, 340 KB
    if item.get("opened"):
        parts.append("opened")
    if item.get("clicked"):
        parts.append("clicked " + ", ".join(item["clicked"]))
    if item.get("error"):
        parts.append(item["error"])
    return "  ".join(parts)


def shown_lines(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline for people: a mail's own line stands for its email_sent event and its journey 'sent' row."""
    mails = {item["mail_id"] for item in timeline if item["kind"] == "mail"}
    return [
        item
        for item in timeline
        if not (item["kind"] == "event" and item["name"] == "email_sent" and item["mail_id"] in mails)
        and not (item["kind"] == "journey" and item["outcome"] == "sent" and item["mail_id"] in mails)
    ]


def when(item_at: datetime | None, tz: Any) -> str:
    return clock.show(item_at, tz) if item_at else ""
