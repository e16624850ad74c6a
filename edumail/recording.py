"""What the tracking server records: opens, clicks, unsubscribes, consent changes, posted events.

The HTTP handlers (tracking.py) parse and answer; these functions record,
each given `now`, so the demo and tests call them with a simulated time.

One client (same IP and user agent) hitting one open or click token again
within REPLAY_WINDOW of its last recorded hit is a replay (a reload, a
preview pane, a script hammering a link): the handler still answers, but
nothing is recorded. The client is kept in the event's data only as a salted
hash (`client`), so a replay can be recognised without storing IP or agent.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from edumail import bots, contacts, events, journeys
from edumail.store import Store

UNSUBSCRIBE_SOURCE = "unsubscribe link"
REPLAY_WINDOW = timedelta(minutes=10)


def client_key(store: Store, ip: str | None, agent: str) -> str:
    """A salted hash of (IP, user agent): tells a replay from another client, stores neither."""
    salt = contacts.suppression_salt(store)
    return hashlib.sha256(f"{salt}\n{ip or ''}\n{agent}".encode()).hexdigest()[:20]


def _replayed(store: Store, mail: dict[str, Any], event: str, index: int | None, client: str, now: datetime) -> bool:
    return store.recent_hit(mail["id"], event, index, client, now - REPLAY_WINDOW)


def reachable(mail: dict[str, Any]) -> bool:
    """A mail whose contact still exists (not forgotten, not a staff notice)."""
    return mail["contact_id"] is not None and not mail["forgotten_at"]


def _record_tracked(
    store: Store, mail: dict[str, Any], event: str, data: dict[str, Any], verdict: str | None, now: datetime
) -> None:
    """An open or click seen by the tracking server, flagged machine when there is a verdict."""
    contacts.record_event(
        store,
        mail["contact_id"],
        event,
        at=now,
        data=data,
        source="tracking",
        now=now,
        mail_id=mail["id"],
        machine=verdict is not None,
    )


def record_open(store: Store, mail: dict[str, Any], ip: str | None, agent: str, method: str, now: datetime) -> bool:
    """An open of a tracked mail (flagged machine when a proxy or scanner made it); False for a replay."""
    verdict = bots.open_verdict(ip, agent, method, mail["sent_at"], now)
    client = client_key(store, ip, agent)
    data = {"machine": verdict} if verdict else {}
    if bots.is_google_proxy(agent):
        data["proxy"] = "google"
    data["client"] = client
    with store.transaction():
        if _replayed(store, mail, events.EMAIL_OPENED, None, client, now):
            return False
        _record_tracked(store, mail, events.EMAIL_OPENED, data, verdict, now)
    return True


def record_click(
    store: Store,
    mail: dict[str, Any],
    link: tuple[int, str, int],
    ip: str | None,
    agent: str,
    method: str,
    now: datetime,
) -> bool:
    """A click on link (index, url, how many links the mail has); a burst on every link is a scanner.

    False for a replay (this client already clicked this link within REPLAY_WINDOW): nothing recorded.
    """
    index, url, count = link
    verdict = bots.click_verdict(ip, agent, method, mail["sent_at"], now)
    client = client_key(store, ip, agent)
    data: dict[str, Any] = {"url": url, "index": index, "client": client}
    with store.transaction():
        if _replayed(store, mail, events.EMAIL_CLICKED, index, client, now):
            return False
        burst_start = now - bots.BURST_WINDOW
        recent = store.recent_click_indexes(mail["id"], burst_start) | {index}
        if bots.all_links_burst(count, recent):
            store.flag_clicks_machine(mail["id"], burst_start)
            verdict = verdict or "all-links"
        if verdict:
            data["machine"] = verdict
        _record_tracked(store, mail, events.EMAIL_CLICKED, data, verdict, now)
    return True


def opt_out(
    store: Store,
    mail: dict[str, Any],
    *,
    source: str,
    method: str,
    proof: dict[str, Any],
    now: datetime,
    data: dict[str, Any] | None = None,
) -> bool:
    """The contact of `mail` opts out: consent logged, `unsubscribed` recorded (`data` added to its data),
    marketing journeys ended."""
    with store.transaction():
        changed = contacts.set_consent(
            store, mail["contact_id"], events.OPTED_OUT, basis=None, now=now, source=source, proof=proof
        )
        if not changed:
            return False
        contacts.record_event(
            store,
            mail["contact_id"],
            events.UNSUBSCRIBED,
            at=now,
            data={"method": method, **(data or {})},
            source=source,
            now=now,
            mail_id=mail["id"],
        )
        journeys.end_all(store, mail["contact_id"], reason="unsubscribed", now=now)
    return True


def opt_in(store: Store, contact_id: int, *, source: str, proof: dict[str, Any], now: datetime) -> bool:
    """The contact gives its consent (opt_in), with the proof of where and how."""
    return contacts.set_consent(store, contact_id, events.OPTED_IN, basis="opt_in", now=now, source=source, proof=proof)


def record_posted_event(
    store: Store, address: str, name: str, at: datetime | None, data: dict[str, Any], now: datetime
) -> tuple[int, bool]:
    """An event posted to the API: (event id, whether its contact was created)."""
    existed = store.contact_by_email(address) is not None
    event_id = contacts.record_event_for(store, address, name, at=at or now, data=data, source="api", now=now)
    return event_id, not existed
