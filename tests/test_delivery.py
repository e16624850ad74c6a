# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Delivery: draining the outbox into a real SMTP server, each fault ending as SPEC section 6 says."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import NOW, add_contacts, make_project, queue, states

from edumail import clock, contacts, delivery, events
from edumail.delivery import BACKOFF, MAX_ATTEMPTS, RateLimiter, deliver
from edumail.transport import TEMPORARY, SendFailure
from edumail.transport.memory import MemoryTransport


@pytest.fixture
def smtp_project(tmp_path: Path, smtp_server: SmtpTestServer):  # noqa: F811
    def make(**options):
        return make_project(tmp_path / "centre", extra=smtp_server.settings_yaml(**options))

    return make


def events_named(project, name: str) -> list[dict]:
    return project.store().rows("SELECT * FROM events WHERE name = ? ORDER BY id", (name,))


# --- the happy path -------------------------------------------------------------


def test_due_mails_are_sent_once_over_one_reused_connection(smtp_project, smtp_server):
    project = smtp_project(concurrency=1)
    queue(project, add_contacts(project, 5))
    report = deliver(project, now=NOW)
    assert (report.sent, report.failed, report.deferred) == (5, 0, 0)
    assert len(smtp_server.messages) == 5
    assert smtp_server.connections == 1
    assert states(project) == {"sent": 5}
    again = deliver(project, now=NOW + timedelta(hours=1))
    assert again.total == 0 and len(smtp_server.messages) == 5


def test_each_sent_mail_records_an_email_sent_event_with_its_mail_id(smtp_project):
    project = smtp_project()
    mail_ids = queue(project, add_contacts(project, 2))
    deliver(project, now=NOW)
    sent = events_named(project, events.EMAIL_SENT)
    assert sorted(e["mail_id"] for e in sent) == sorted(mail_ids)
    assert json.loads(sent[0]["data"])["template"] == "session"


def test_mails_not_yet_due_stay_queued(smtp_project, smtp_server):
    project = smtp_project()
    queue(project, add_contacts(project, 1), not_before=clock.to_db(NOW + timedelta(hours=2)))
    assert deliver(project, now=NOW).total == 0
    assert deliver(project, now=NOW + timedelta(hours=2)).sent == 1


def test_the_original_links_are_stored_by_index_for_the_click_tracker(smtp_project, smtp_server):
    project = smtp_project()
    (mail_id,) = queue(project, add_contacts(project, 1))
    deliver(project, now=NOW)
    mail = project.store().mail(mail_id)
    assert json.loads(mail["links"]) == [
        "https://centre.example/programme?id=7&x=1",
        "https://centre.example/inscription",
    ]
    assert mail["subject"] == "Zoé, votre session approche"


def test_concurrency_opens_that_many_connections(smtp_project, smtp_server):
    project = smtp_project(concurrency=4)
    queue(project, add_contacts(project, 40))
    report = deliver(project, now=NOW)
    assert report.sent == 40 and smtp_server.connections == 4
    assert sorted(smtp_server.recipients()) == sorted(f"contact{n}@example.org" for n in range(40))


def test_limit_sends_at_most_that_many(smtp_project, smtp_server):
    project = smtp_project(concurrency=2)
    queue(project, add_contacts(project, 10))
    assert deliver(project, now=NOW, limit=3).sent == 3
    assert states(project) == {"sent": 3, "queued": 7}


def test_dry_run_builds_everything_and_changes_nothing(smtp_project, smtp_server):
    project = smtp_project()
    queue(project, add_contacts(project, 3))
    report = deliver(project, now=NOW, dry_run=True)
    assert report.dry_run and report.sent == 3
    assert smtp_server.messages == [] and states(project) == {"queued": 3}


def test_a_server_that_closes_idle_connections_gets_a_new_one(smtp_project, smtp_server):
    smtp_server.max_per_connection = 3  # Yahoo-style: closes without an error
    project = smtp_project(concurrency=1)
    queue(project, add_contacts(project, 7))
    report = deliver(project, now=NOW)
    assert report.sent == 7 and report.deferred == 0
    assert smtp_server.connections == 3


# --- temporary failures -------------------------------------------------------------


@pytest.mark.parametrize("reply", ["451 4.3.0 Try again later", "452 4.2.2 Mailbox full", "421 4.7.0 Too busy"])
def test_a_4xx_for_a_recipient_defers_the_mail_which_stays_queued(smtp_project, smtp_server, reply):
    project = smtp_project()
    queue(project, add_contacts(project, 3))
    smtp_server.refuse("contact1@example.org", reply, times=1)
    report = deliver(project, now=NOW)
    assert (report.sent, report.deferred, report.failed) == (2, 1, 0)
    mail = project.store().row("SELECT * FROM mails WHERE state = 'queued'")
    assert mail["attempts"] == 1 and reply.split()[0] in mail["last_error"]
    assert mail["not_before"] == NOW + BACKOFF[0]
    # Not before the backoff; then it goes, with the same Message-ID.
    assert deliver(project, now=NOW + timedelta(minutes=1)).total == 0
    assert deliver(project, now=NOW + BACKOFF[0]).sent == 1
    assert len(smtp_server.messages) == 3
    assert smtp_server.parsed()[-1]["Message-ID"] == mail["message_id"]


def test_a_451_after_data_defers(smtp_project, smtp_server):
    project = smtp_project()
    queue(project, add_contacts(project, 2))
    smtp_server.reply_to_data("451 4.3.0 Local error", times=1)
    report = deliver(project, now=NOW)
    assert (report.sent, report.deferred) == (1, 1)


def test_a_connection_dropped_mid_data_defers_and_the_rest_goes_on(smtp_project, smtp_server):
    project = smtp_project(concurrency=1)
    queue(project, add_contacts(project, 4))
    smtp_server.drop_in_data(times=1)
    report = deliver(project, now=NOW)
    assert (report.sent, report.deferred) == (3, 1)
    assert "dropped the connection" in report.errors[0]
    assert deliver(project, now=NOW + BACKOFF[0]).sent == 1
    assert len({m["Message-ID"] for m in smtp_server.parsed()}) == 4


def test_a_server_slow_to_answer_the_end_of_data_is_waited_for_and_nothing_is_sent_twice(smtp_project, smtp_server):
    """RFC 5321 4.5.3.2.6: 10 minutes for the answer to the final dot, whatever smtp.timeout says."""
    smtp_server.delay = 1.5  # past smtp.timeout: the server is scanning the mail, then accepts it
    project = smtp_project(timeout=1, concurrency=1)
    queue(project, add_contacts(project, 2))
    report = deliver(project, now=NOW)
    assert (report.sent, report.deferred) == (2, 0), report.errors
    assert len(smtp_server.messages) == 2
    assert deliver(project, now=NOW + BACKOFF[0]).total == 0


def test_the_end_of_data_timeout_is_ten_minutes():
    from edumail.transport import smtp

    assert smtp.DATA_END_TIMEOUT == 600


def test_a_server_silent_at_mail_from_past_the_timeout_defers(smtp_project, smtp_server):
    smtp_server.delay_mail = 1.5  # every other stage keeps the short smtp.timeout
    project = smtp_project(timeout=1)
    queue(project, add_contacts(project, 1))
    report = deliver(project, now=NOW)
    assert report.deferred == 1 and report.sent == 0


def test_a_mail_deferred_for_two_days_fails_and_counts_a_soft_bounce(tmp_path):
    project = make_project(tmp_path / "centre")
    (contact_id,) = add_contacts(project, 1)
    queue(project, [contact_id])
    busy = MemoryTransport(
        fault=lambda e: SendFailure(TEMPORARY, "452 4.2.2 Mailbox full", code=452, status="4.2.2", stage="rcpt")
    )
    moment = NOW
    for _ in range(MAX_ATTEMPTS - 1):
        assert deliver(project, now=moment, transport=busy).deferred == 1
        moment = project.store().row("SELECT not_before FROM mails")["not_before"]
    report = deliver(project, now=moment, transport=busy)
    assert report.failed == 1 and report.bounced == 0
    assert "gave up after" in project.store().row("SELECT last_error FROM mails")["last_error"]
    (bounce,) = events_named(project, events.BOUNCED)
    assert json.loads(bounce["data"])["kind"] == "soft"
    assert project.store().contact(contact_id)["soft_bounces"] == 1


def test_many_deferrals_in_a_row_pause_the_run(tmp_path):
    project = make_project(tmp_path / "centre")
    queue(project, add_contacts(project, 30))
    busy = MemoryTransport(fault=lambda e: SendFailure(TEMPORARY, "421 4.7.0 slow down", code=421))
    report = deliver(project, now=NOW, transport=busy)
    assert report.deferred == delivery.DEFERRALS_TO_PAUSE
    assert report.stopped and "deferred" in report.stopped
    assert states(project) == {"queued": 30}


# --- permanent failures -------------------------------------------------------------


def test_a_550_5_1_1_fails_the_mail_and_suppresses_the_address(smtp_project, smtp_server):
    project = smtp_project()
    ids = add_contacts(project, 3)
    queue(project, ids)
    smtp_server.refuse("contact1@example.org", "550 5.1.1 <contact1@example.org>: no such user")
    report = deliver(project, now=NOW)
    assert (report.sent, report.failed, report.bounced) == (2, 1, 1)
    (bounce,) = events_named(project, events.BOUNCED)
    data = json.loads(bounce["data"])
    assert bounce["contact_id"] == ids[1] and data["kind"] == "hard" and data["status"] == "5.1.1"
    assert "no such user" in data["diagnostic"]
    contact = project.store().contact(ids[1])
    assert contact["bounced_at"] and contacts.may_receive(contact, events.SERVICE) == "bounced"
    # A later mail to that address is cancelled, never sent.
    queue(project, [ids[1]], purpose="service")
    assert deliver(project, now=NOW + timedelta(hours=1)).cancelled == 1
    assert "contact1@example.org" not in smtp_server.recipients()


def test_a_5xx_that_is_not_about_the_address_fails_without_suppressing(smtp_project, smtp_server):
    project = smtp_project()
    ids = add_contacts(project, 2)
    queue(project, ids)
    smtp_server.reply_to_data("552 5.3.4 Message too big", times=1)
    report = deliver(project, now=NOW)
    assert (report.sent, report.failed, report.bounced) == (1, 1, 0)
    assert not events_named(project, events.BOUNCED)


def test_a_554_5_7_1_policy_block_stops_everything_and_leaves_the_rest_queued(smtp_project, smtp_server):
    project = smtp_project(concurrency=1)
    queue(project, add_contacts(project, 10))
    smtp_server.reply_to_data("554 5.7.1 Message rejected: IP on blocklist", times=1)
    report = deliver(project, now=NOW)
    assert report.sent == 0 and report.failed == 0
    assert report.stopped and "554 5.7.1 Message rejected: IP on blocklist" in report.stopped
    assert "DKIM" in report.stopped and "10 mails still queued" in report.stopped
    assert states(project) == {"queued": 10}
    assert not events_named(project, events.BOUNCED)
    # Once fixed, the next run sends them all.
    assert deliver(project, now=NOW).sent == 10


def test_one_recipient_refused_by_policy_fails_alone_and_the_queue_goes_on(smtp_project, smtp_server):
    project = smtp_project(concurrency=1)
    ids = add_contacts(project, 200)
    queue(project, ids)
    smtp_server.refuse("contact0@example.org", "550 5.7.1 <contact0@example.org>: recipient refuses mail from you")
    report = deliver(project, now=NOW)
    assert (report.sent, report.failed, report.bounced) == (199, 1, 0) and not report.stopped
    failed = project.store().rows("SELECT * FROM mails WHERE state = 'failed'")
    assert len(failed) == 1 and failed[0]["contact_id"] == ids[0] and failed[0]["attempts"] == 1
    assert "5.7.1" in failed[0]["last_error"] and "this recipient" in failed[0]["last_error"]
    assert not events_named(project, events.BOUNCED)  # never charged to the contact (SPEC 19)
    assert project.store().contact(ids[0])["bounced_at"] is None


def test_a_policy_refusal_for_every_recipient_stops_delivery_and_keeps_the_mails(smtp_project, smtp_server):
    project = smtp_project(concurrency=1)
    ids = add_contacts(project, 20)
    queue(project, ids)
    for n in range(20):
        smtp_server.refuse(f"contact{n}@example.org", "554 5.7.1 Service unavailable; client host blocked")
    report = deliver(project, now=NOW)
    assert report.stopped and "5.7.1" in report.stopped and report.sent == 0
    assert states(project) == {"queued": 20}  # the relay's problem: nothing is failed, all wait for the fix


def test_a_policy_block_at_mail_from_stops_the_run(smtp_project, smtp_server):
    project = smtp_project(concurrency=2)
    queue(project, add_contacts(project, 6))
    smtp_server.reply_to_mail("550 5.7.515 Access denied, sending domain does not pass DMARC")
    report = deliver(project, now=NOW)
    assert report.stopped and "5.7.515" in report.stopped
    assert states(project) == {"queued": 6}


def test_a_refused_login_stops_the_run_and_never_shows_the_password(tmp_path, smtp_server, monkeypatch):
    smtp_server.require_auth("contact@centre.example", "the-right-one")
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml(username="contact@centre.example"))
    monkeypatch.setenv("EDUMAIL_SMTP_PASSWORD", "s3cret-wrong")
    queue(project, add_contacts(project, 3))
    report = deliver(project, now=NOW)
    assert report.stopped
    assert f"{smtp_server.host}:{smtp_server.port} refused login for contact@centre.example" in report.stopped
    assert "EDUMAIL_SMTP_PASSWORD" in report.stopped and "s3cret-wrong" not in report.stopped
    assert states(project) == {"queued": 3}


def test_a_good_login_sends(tmp_path, smtp_server, monkeypatch):
    smtp_server.require_auth("contact@centre.example", "the-right-one")
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml(username="contact@centre.example"))
    monkeypatch.setenv("EDUMAIL_SMTP_PASSWORD", "the-right-one")
    queue(project, add_contacts(project, 2))
    assert deliver(project, now=NOW).sent == 2


def test_an_unreachable_server_stops_before_touching_any_mail(tmp_path):
    extra = "transport: smtp\nsmtp:\n  host: 127.0.0.1\n  port: 9\n  security: none\n  timeout: 2\n"
    project = make_project(tmp_path / "centre", extra=extra)
    queue(project, add_contacts(project, 3))
    report = deliver(project, now=NOW)
    assert report.stopped and "cannot connect to 127.0.0.1:9" in report.stopped
    assert project.store().row("SELECT SUM(attempts) AS n FROM mails")["n"] == 0


def test_many_permanent_refusals_in_a_row_stop_the_run(tmp_path):
    project = make_project(tmp_path / "centre")
    queue(project, add_contacts(project, 40))
    refusing = MemoryTransport(fault=lambda e: SendFailure("permanent", "550 relay not permitted", code=550))
    report = deliver(project, now=NOW, transport=refusing)
    assert report.failed == delivery.REFUSALS_TO_STOP and report.stopped
    assert states(project)["queued"] == 40 - delivery.REFUSALS_TO_STOP


# --- consent at send time -------------------------------------------------------------


def test_a_queued_mail_to_someone_who_unsubscribed_since_is_cancelled(tmp_path):
    project = make_project(tmp_path / "centre")
    ids = add_contacts(project, 2)
    queue(project, ids)
    store = project.store()
    store.update_contact(ids[0], {"consent": "opted_out"}, "2026-03-02T08:00:00.000000Z")
    memory = MemoryTransport()
    report = deliver(project, now=NOW, transport=memory)
    assert (report.sent, report.cancelled) == (1, 1)
    cancelled = store.row("SELECT * FROM mails WHERE contact_id = ?", (ids[0],))
    assert cancelled["state"] == "cancelled" and cancelled["last_error"] == "opted out"


def test_service_mail_reaches_an_opted_out_contact(tmp_path):
    project = make_project(tmp_path / "centre")
    ids = add_contacts(project, 1, consent="opted_out")
    queue(project, ids, purpose="service")
    memory = MemoryTransport()
    assert deliver(project, now=NOW, transport=memory).sent == 1
    (msg,) = memory.messages()
    assert msg["Auto-Submitted"] == "auto-generated" and msg["List-Unsubscribe-Post"] is None


def test_a_template_error_fails_that_mail_with_the_reason(tmp_path):
    project = make_project(tmp_path / "centre")
    (project.root / "templates" / "broken.html").write_text("---\nsubject: x\n---\n{{ event.nope }}\n")
    queue(project, add_contacts(project, 1), template="broken")
    report = deliver(project, now=NOW, transport=MemoryTransport())
    assert report.failed == 1
    assert "templates/broken.html" in project.store().row("SELECT last_error FROM mails")["last_error"]


# --- crash recovery and the lock -----------------------------------------------------------


def test_a_mail_left_sending_by_a_crash_is_sent_again_with_its_message_id(tmp_path):
    project = make_project(tmp_path / "centre")
    (mail_id,) = queue(project, add_contacts(project, 1))
    store = project.store()
    store.execute("UPDATE mails SET state = 'sending', sending_at = ? WHERE id = ?", (clock.to_db(NOW), mail_id))
    store.execute(
        "INSERT INTO locks VALUES ('delivery', 'elsewhere-not-this-host:1:x', ?, ?)",
        (clock.to_db(NOW), "2000-01-01T00:00:00.000000Z"),
    )  # an expired lock of a dead run
    memory = MemoryTransport()
    report = deliver(project, now=NOW, transport=memory)
    assert report.recovered == 1 and report.sent == 1
    assert memory.sent[0].message_id == store.mail(mail_id)["message_id"]


def test_a_run_leaves_the_outbox_alone_while_another_live_process_delivers(tmp_path):
    project = make_project(tmp_path / "centre")
    queue(project, add_contacts(project, 1))
    store = project.store()
    store.execute(
        "INSERT INTO locks VALUES ('delivery', 'elsewhere-not-this-host:1:x', ?, ?)",
        (clock.to_db(NOW), "2999-01-01T00:00:00.000000Z"),
    )
    report = deliver(project, now=NOW, transport=MemoryTransport())
    assert report.busy and report.sent == 0 and states(project) == {"queued": 1}


def test_the_lock_of_a_dead_local_process_is_taken_over(tmp_path):
    import socket

    project = make_project(tmp_path / "centre")
    queue(project, add_contacts(project, 1))
    dead_pid = 2**22 + 12345  # above the usual pid range: not a live process
    project.store().execute(
        "INSERT INTO locks VALUES ('delivery', ?, ?, ?)",
        (f"{socket.gethostname()}:{dead_pid}:x", clock.to_db(NOW), "2999-01-01T00:00:00.000000Z"),
    )
    assert deliver(project, now=NOW, transport=MemoryTransport()).sent == 1


# --- rate limit -------------------------------------------------------------------------


def test_the_rate_limiter_spaces_sends_evenly():
    fake = [1000.0]
    limiter = RateLimiter(600, clock_fn=lambda: fake[0])  # one every 0.1 s
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_the_rate_limiter_allows_a_burst_of_one_per_worker():
    fake = [1000.0]
    limiter = RateLimiter(60, burst=4, clock_fn=lambda: fake[0])
    assert [limiter.reserve() for _ in range(5)] == pytest.approx([0, 0, 0, 0, 1.0])


def test_the_rate_limit_carries_over_to_the_next_run():
    fake = [1000.0]
    first = RateLimiter(60, clock_fn=lambda: fake[0])
    for _ in range(3):
        first.reserve()
    second = RateLimiter(60, start=first.tat, clock_fn=lambda: fake[0])
    assert second.reserve() == pytest.approx(3.0)


def test_the_rate_limit_is_kept_across_runs_in_the_store(tmp_path):
    project = make_project(tmp_path / "centre")
    queue(project, add_contacts(project, 3))
    deliver(project, now=NOW, transport=MemoryTransport(rate_per_minute=6000))
    saved = float(project.store().get_meta("delivery.rate_tat"))
    assert saved > 0


def test_a_real_rate_limit_paces_delivery(smtp_project, smtp_server):
    project = smtp_project(concurrency=2, rate_per_minute=1200)  # 20 a second
    queue(project, add_contacts(project, 12))
    report = deliver(project, now=NOW)
    assert report.sent == 12
    assert report.seconds >= 0.45  # 12 mails at 20/s with a burst of 2: at least 0.5 s
