"""Topics (SPEC 17): the kinds of marketing a contact can leave one by one.

`topics:` in settings names them. A contact is in every topic until they leave
it (preference page, unsubscribe page); a sequence with `topic:` or a campaign
sent with `--topic` skips who left. Every change is an entry in the consent
log with its proof (the consent state itself is untouched: leaving everything
is an unsubscribe, which sets `opted_out`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store

IN, OUT = "in", "out"


def has_left(store: Store, contact_id: int, topic: str | None) -> bool:
    """True when the contact left this topic (None: a mail without topic)."""
    return topic is not None and store.has_left_topic(contact_id, topic)


def reason_left(topic: str) -> str:
    return f"left topic {topic}"


def leave(store: Store, contact_id: int, topic: str, now: datetime, source: str, proof: dict[str, Any]) -> bool:
    """Leave one topic; logged. False when already out."""
    if store.topic_states(contact_id).get(topic) == OUT:
        return False
    with store.transaction():
        store.set_topic_state(contact_id, topic, OUT, now)
        store.log_topic_change(contact_id, now, source, {**proof, "topic": topic, "change": "left"})
    return True


def join(
    store: Store,
    contact_id: int,
    topic: str,
    now: datetime,
    source: str | None = None,
    proof: dict[str, Any] | None = None,
) -> bool:
    """Come back to a topic left (logged when a source is given); True when the contact had left it.

    Without a source (a confirmed signup) the choice is only written down, so a later form does not
    count the topic as never chosen.
    """
    state = store.topic_states(contact_id).get(topic)
    if state == IN or (state is None and source is not None):
        return False
    with store.transaction():
        store.set_topic_state(contact_id, topic, IN, now)
        if source is not None:
            store.log_topic_change(contact_id, now, source, {**(proof or {}), "topic": topic, "change": "joined"})
    return state == OUT


def current(store: Store, contact_id: int, names: list[str]) -> dict[str, bool]:
    """{topic: still in} for the settings' topics."""
    states = store.topic_states(contact_id)
    return {name: states.get(name) != OUT for name in names}
