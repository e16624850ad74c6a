"""The one way a journey ends: logged in journey_log, its queued mail cancelled.

Used by the engine (exit_on, guard, failure, completion), by unsubscribes,
by forget/purge and by bounces.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail import events

if TYPE_CHECKING:
    from edumail.store import Store

JOURNEY = ""  # step id of journey-level log rows (entered, completed, goal, exited from outside)


def end(
    store: Store,
    journey: dict[str, Any],
    reason: str,
    now: datetime,
    *,
    step_id: str = JOURNEY,
    state: str = "exited",
    outcome: str | None = None,
) -> bool:
    """End one active journey (in the caller's transaction); False when it had already ended.

    `exited` (and `failed`, logged as its outcome) cancels the journey's queued mail; `completed`
    lets the last step's mail go.
    """
    stamp = now
    if not store.finish_journey(journey["id"], state, stamp, reason):
        return False
    store.log_step(journey["id"], step_id, stamp, outcome or state, reason)
    if state == "exited":
        store.cancel_journey_mails(journey["id"], f"journey ended: {reason}")
    return True


def end_all(
    store: Store, contact_id: int, *, reason: str, now: datetime, purpose: str | None = events.MARKETING
) -> int:
    """End a contact's active journeys of that purpose (None: all); returns how many ended."""
    ended = 0
    with store.transaction():
        for journey in store.active_journeys_of(contact_id, purpose=purpose):
            ended += end(store, journey, reason, now)
    return ended
