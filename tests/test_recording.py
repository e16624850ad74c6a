"""What the tracking server records goes through functions given `now`: no EDUMAIL_NOW needed."""

from __future__ import annotations

import os
from datetime import timedelta

from tracking_support import BROWSER, LATER, LINKS, contact, events_named, sent_mail

from edumail import events, recording
from edumail.store import Store


def test_opens_clicks_and_opt_outs_are_recorded_at_the_given_time(tmp_path) -> None:
    assert "EDUMAIL_NOW" not in os.environ
    store = Store(tmp_path / "e.db")
    mail = store.tracked_mail(sent_mail(store, contact(store, "lea@example.org")))
    assert mail is not None and recording.reachable(mail)
    recording.record_open(store, mail, "192.0.2.1", BROWSER, "GET", LATER)
    recording.record_click(store, mail, (1, LINKS[1], len(LINKS)), "192.0.2.1", BROWSER, "GET", LATER)
    assert recording.opt_out(store, mail, source="unsubscribe link", method="one-click", proof={}, now=LATER)
    for name in (events.EMAIL_OPENED, events.EMAIL_CLICKED, events.UNSUBSCRIBED):
        (event,) = events_named(store, name)
        assert event["at"] == LATER and event["machine"] == 0


def test_a_replayed_click_or_open_within_the_window_is_recorded_once(tmp_path) -> None:
    store = Store(tmp_path / "e.db")
    mail = store.tracked_mail(sent_mail(store, contact(store, "lea@example.org")))
    link = (1, LINKS[1], len(LINKS))
    for minutes in (0, 1, 5, 9):
        recording.record_click(store, mail, link, "192.0.2.1", BROWSER, "GET", LATER + timedelta(minutes=minutes))
        recording.record_open(store, mail, "192.0.2.1", BROWSER, "GET", LATER + timedelta(minutes=minutes))
    assert len(events_named(store, events.EMAIL_CLICKED)) == 1
    assert len(events_named(store, events.EMAIL_OPENED)) == 1
    recording.record_click(store, mail, link, "192.0.2.1", BROWSER, "GET", LATER + recording.REPLAY_WINDOW)
    assert len(events_named(store, events.EMAIL_CLICKED)) == 2
    recording.record_click(store, mail, link, "192.0.2.2", BROWSER, "GET", LATER + recording.REPLAY_WINDOW)
    assert len(events_named(store, events.EMAIL_CLICKED)) == 3
