"""Who a bounce is charged to (SPEC 19), the soft-bounce rule, and `contacts unbounce`.

Only a refusal of the contact's own address counts against the contact: a 5xx
(or, after two days of retries, a 4xx) at RCPT TO, or a DSN for a mail to them.
A staff mail (a `notify:` alert, an `alerts:` mail) is about a contact, never to
them: its refusals and DSNs touch no contact. The relay's refusals (connection,
login, MAIL FROM, the whole message at DATA) are never anyone's bounce.

A hard bounce suppresses at once. Soft bounces suppress at the third spread
over at least 7 days with no delivery in between: a mail to the contact that
went and never bounced, a provider's `email_delivered`, or an unbounce starts
the count again.
"""

from __future__ import annotations

import getpass
from datetime import datetime, timedelta
from typing import Any

from edumail import journeys
from edumail.errors import InputError
from edumail.store import Store

SOFT_TO_SUPPRESS = 3
SOFT_SPREAD = timedelta(days=7)
UNBOUNCED = "unbounced"  # the event `contacts unbounce` logs: who, why, what was lifted


def is_staff_mail(mail: dict[str, Any]) -> bool:
    """A mail to the team about a contact (a `notify:` alert, an `alerts:` mail), not to the contact."""
    return bool(mail.get("to_email")) or str(mail.get("template") or "").startswith("__")


def charged_contact(mail: dict[str, Any] | None) -> int | None:
    """The contact a refusal of this mail counts against: None for staff mail or a mail to nobody."""
    if mail is None or mail.get("contact_id") is None or is_staff_mail(mail):
        return None
    return int(mail["contact_id"])


def mark_bounced(store: Store, contact_id: int, kind: str, now: datetime) -> bool:
    """Count a bounce already recorded as an event: True when the contact is now suppressed.

    Hard suppresses at once; soft at the third of a streak spread over at least 7 days.
    """
    contact = store.contact(contact_id)
    if contact is None:
        return False
    with store.transaction():
        if kind == "hard":
            suppressed = True
            store.update_contact(contact_id, {"bounced_at": contact["bounced_at"] or now}, now)
        else:
            streak = store.soft_bounce_streak(contact_id)
            suppressed = bool(contact["bounced_at"]) or (
                len(streak) >= SOFT_TO_SUPPRESS and streak[-1] - streak[0] >= SOFT_SPREAD
            )
            changes: dict[str, Any] = {"soft_bounces": len(streak)}
            if suppressed and not contact["bounced_at"]:
                changes["bounced_at"] = now
            store.update_contact(contact_id, changes, now)
        if suppressed:
            journeys.end_all(store, contact_id, reason="bounced", now=now, purpose=None)
    return suppressed


def unbounce(store: Store, contact: dict[str, Any], *, reason: str, now: datetime, by: str | None = None) -> str:
    """Lift a bounce suppression (and the soft count), logged with who, when and why; returns what was lifted."""
    why = reason.strip()
    email = contact["email"]
    if not why:
        raise InputError("--reason is empty: say why the bounce is lifted (it is logged), e.g. --reason 'fixed typo'")
    if not contact["bounced_at"] and not contact["soft_bounces"]:
        raise InputError(f"{email} is not bounced: nothing to lift (`edumail contacts show {email}` tells its story)")
    lifted = "bounce suppression" if contact["bounced_at"] else f"{contact['soft_bounces']} soft bounce(s)"
    data = {"reason": why, "by": by or _who(), "lifted": lifted}
    with store.transaction():
        store.insert_event(contact["id"], UNBOUNCED, now, data, "cli", now)
        store.update_contact(contact["id"], {"bounced_at": None, "soft_bounces": 0}, now)
    return lifted


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without passwd entry)
        return "unknown"
