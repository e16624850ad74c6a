"""The preference centre and the unsubscribe page's choices (SPEC 17), given `now`.

A mail names its contact and, for a campaign sent with `--topic` or a sequence
with `topic:`, a topic. From it a person may leave only that topic or
everything, change which topics they receive, and undo an unsubscribe for 30
days. Every change is an entry of the consent log with its proof (IP, user
agent, the mail, the wording shown). Leaving everything is the one opt-out
of `recording.opt_out`, so journeys end and queued mail is cancelled as
for any unsubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import contacts, events, topics

if TYPE_CHECKING:
    from edumail.store import Store

UNDO_DAYS = 30
ALL, TOPIC = "all", "topic"
UNSUBSCRIBE_SOURCE = "unsubscribe link"
PREFERENCES_SOURCE = "preferences page"
UNDO_SOURCE = "unsubscribe undone"
NEWS_WORDING = "Je souhaite recevoir les actualités et offres de formation par e-mail."


@dataclass
class View:
    """What the pages show for one mail's contact."""

    email: str
    receives: bool  # marketing consent
    topic: str | None  # the mail's topic, when it is one of the settings'
    topics: dict[str, bool] = field(default_factory=dict)  # settings topic -> still in
    undo: dict[str, Any] | None = None  # the unsubscribe that may still be undone


def view(store: Store, mail: dict[str, Any], labels: dict[str, str], now: datetime) -> View:
    contact_id = int(mail["contact_id"])
    topic = store.mail_topic(int(mail["id"]))
    return View(
        email=mail["email"],
        receives=mail["consent"] == events.OPTED_IN,
        topic=topic if topic in labels else None,
        topics=topics.current(store, contact_id, list(labels)),
        undo=undoable(store, mail, now),
    )


def unsubscribe(
    store: Store, mail: dict[str, Any], scope: str, *, method: str, proof: dict[str, Any], now: datetime
) -> bool:
    """Leave the mail's topic (scope topic) or all marketing (scope all); False when nothing changed."""
    contact_id = int(mail["contact_id"])
    topic = store.mail_topic(int(mail["id"]))
    if scope == TOPIC and topic:
        with store.transaction():
            if not topics.leave(store, contact_id, topic, now, UNSUBSCRIBE_SOURCE, {**proof, "method": method}):
                return False
            data = {"method": method, "scope": TOPIC, "topic": topic}
            _record_unsubscribed(store, mail, data, now)
        return True
    return opt_out(store, mail, source=UNSUBSCRIBE_SOURCE, method=method, proof=proof, now=now)


def opt_out(
    store: Store, mail: dict[str, Any], *, source: str, method: str, proof: dict[str, Any], now: datetime
) -> bool:
    """All marketing stops (recording.opt_out); the consent it replaces is kept for the undo."""
    from edumail import recording

    contact = store.contact(int(mail["contact_id"]))
    if contact is None:
        return False
    previous = {"consent": contact["consent"], "basis": contact["consent_basis"]}
    data = {"scope": ALL, "previous": previous}
    return recording.opt_out(store, mail, source=source, method=method, proof=proof, now=now, data=data)


def _record_unsubscribed(store: Store, mail: dict[str, Any], data: dict[str, Any], now: datetime) -> None:
    contacts.record_event(
        store,
        int(mail["contact_id"]),
        events.UNSUBSCRIBED,
        at=now,
        data=data,
        source=UNSUBSCRIBE_SOURCE,
        now=now,
        mail_id=int(mail["id"]),
    )


def undoable(store: Store, mail: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The unsubscribe made from this mail, if it is less than 30 days old and nothing changed since."""
    last = store.last_unsubscribe(int(mail["id"]))
    if last is None or now - last["at"] > timedelta(days=UNDO_DAYS):
        return None
    data = last["data"]
    contact_id = int(mail["contact_id"])
    if data.get("scope") == TOPIC:
        still_out = store.topic_states(contact_id).get(str(data.get("topic"))) == topics.OUT
        return last if still_out else None
    changed_since = store.last_consent_at(contact_id)
    if mail["consent"] != events.OPTED_OUT or (changed_since is not None and changed_since > last["at"]):
        return None
    return last


def undo(store: Store, mail: dict[str, Any], *, proof: dict[str, Any], now: datetime) -> bool:
    """Take back the unsubscribe made from this mail (within 30 days); False when there is none to undo."""
    last = undoable(store, mail, now)
    if last is None:
        return False
    contact_id = int(mail["contact_id"])
    data = last["data"]
    proof = {**proof, "undo_of": last["id"]}
    with store.transaction():
        store.mark_unsubscribe_undone(int(last["id"]), now)
        if data.get("scope") == TOPIC:
            topics.join(store, contact_id, str(data["topic"]), now, UNDO_SOURCE, proof)
            return True
        previous = data.get("previous") or {"consent": events.OPTED_IN, "basis": "opt_in"}
        contacts.set_consent(
            store,
            contact_id,
            str(previous.get("consent") or events.UNKNOWN),
            basis=previous.get("basis"),
            now=now,
            source=UNDO_SOURCE,
            proof=proof,
        )
    return True


def save(
    store: Store,
    mail: dict[str, Any],
    labels: dict[str, str],
    posted: dict[str, str],
    *,
    proof: dict[str, Any],
    now: datetime,
) -> None:
    """The preference page's form: one box per topic and "everything" (stop all marketing), or the one
    box "news" when the settings name no topic."""
    if labels:
        chosen = [t for t in labels if posted.get(f"topic_{t}") == "oui"]
        wording = "Je souhaite recevoir par e-mail : " + ", ".join(labels[t] for t in chosen) + "."
    else:
        chosen = ["news"] if posted.get("news") == "on" else []
        wording = NEWS_WORDING
    if posted.get("everything") == "oui" or (mail["consent"] == events.OPTED_IN and not chosen):
        opt_out(store, mail, source=PREFERENCES_SOURCE, method="preferences page", proof=proof, now=now)
        return
    if not chosen:
        return  # not receiving, nothing ticked: nothing to change
    contact_id = int(mail["contact_id"])
    with store.transaction():
        if mail["consent"] != events.OPTED_IN:  # ticking a box is the positive act consent needs
            contacts.set_consent(
                store,
                contact_id,
                events.OPTED_IN,
                basis="opt_in",
                now=now,
                source=PREFERENCES_SOURCE,
                proof={**proof, "form": PREFERENCES_SOURCE, "wording": wording},
            )
        for name in labels:
            if name in chosen:
                topics.join(store, contact_id, name, now, PREFERENCES_SOURCE, proof)
            else:
                topics.leave(store, contact_id, name, now, PREFERENCES_SOURCE, proof)
