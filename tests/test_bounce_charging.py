# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""SPEC 19: who a bounce is charged to (issue 13 points 1-4).

Only a refusal of the contact's own address at RCPT TO, or a DSN for a mail to
the contact, counts against that contact. Staff mail, the relay's refusals and
retries of a mail scheduled long ago never do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_bounces import dsn, write_mbox
from test_delivery_support import NOW, add_contacts, make_project, queue

from edumail import clock
from edumail.delivery import deliver
from edumail.message import new_message_id
from edumail.project import Project

STAFF = "equipe@centre.exmple"  # the typo of a staff address in a notify: step


def bounced(project: Project) -> list[dict]:
    return project.store().rows("SELECT * FROM events WHERE name = 'bounced' ORDER BY id")


def contact_state(project: Project, contact_id: int) -> tuple:
    contact = project.store().contact(contact_id)
    assert contact is not None
    return contact["bounced_at"], contact["soft_bounces"]


def queue_staff_alert(project: Project, contact_id: int, message_id: str | None = None) -> int:
    """The alert a `notify:` step queues: about the contact, to the staff address."""
    store = project.store()
    with store.transaction():
        mail_id = store.enqueue_mail(
            message_id=message_id or new_message_id("centre.example"),
            template="__notify__",
            purpose="service",
            not_before=NOW,
            now=NOW,
            contact_id=contact_id,
            to_email=STAFF,
            context={"subject": "[edumail] Zoé Martin : convocation", "body": "Zoé vient de s'inscrire."},
            step_id="convocation:notify",
            sequence="inscription",
        )
    assert mail_id
    return mail_id


def run_cli(project: Project, *args: str, now: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    env.update({"EDUMAIL_NOW": now, "EDUMAIL_PROJECT": str(project.root), "EDUMAIL_SECRET": "test-secret"})
    return subprocess.run(
        [sys.executable, "-m", "edumail", *args], env=env, capture_output=True, text=True, timeout=120
    )


# --- 1. staff mail never touches a contact --------------------------------------------


def test_a_refused_staff_alert_never_marks_the_contacts_it_was_about(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    people = add_contacts(project, 3)
    queue(project, people, purpose="service")
    alerts = [queue_staff_alert(project, cid) for cid in people]
    smtp_server.refuse(STAFF, "550 5.1.1 <equipe@centre.exmple>: Recipient address rejected")
    report = deliver(project, now=NOW)
    assert report.sent == 3 and report.failed == 3 and report.bounced == 0
    assert sorted(smtp_server.recipients()) == [f"contact{n}@example.org" for n in range(3)]
    for cid in people:
        assert contact_state(project, cid) == (None, 0)
    assert bounced(project) == []
    store = project.store()
    for mail_id in alerts:
        mail = store.mail(mail_id)
        assert mail is not None and mail["state"] == "failed" and "5.1.1" in mail["last_error"]
    # The next mails of these contacts still go.
    smtp_server.reset()
    queue(project, people, purpose="service")
    assert deliver(project, now=NOW + timedelta(minutes=1)).sent == 3


def test_a_dsn_for_a_staff_alert_never_suppresses_the_contact_it_was_about(cli, tmp_path):
    project = make_project(cli.root)
    (cid,) = add_contacts(project, 1)
    alert = queue_staff_alert(project, cid, "<alert-1@centre.example>")
    store = project.store()
    with store.transaction():
        store.mark_mail_sent(alert, NOW, "[edumail] Zoé Martin : convocation", [])
    box = write_mbox(
        tmp_path / "b.mbox",
        dsn([(STAFF, "failed", "5.1.1", "550 5.1.1 no such user")], original_id="<alert-1@centre.example>"),
    )
    result = cli("bounces", "import", str(box), now="2026-03-03T10:00:00Z")
    assert result.exit_code == 0, result.output
    assert "0 contacts suppressed" in result.output and "staff" in result.output
    assert contact_state(project, cid) == (None, 0)
    assert bounced(project) == []


# --- 2. the relay's refusals are never a contact's bounce ------------------------------


def test_a_relay_answering_451_at_mail_from_for_two_days_suppresses_nobody(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    people = add_contacts(project, 3)
    queue(project, people)
    smtp_server.reply_to_mail("451 4.3.0 Local error in processing, try again later")
    moment, stopped = NOW, 0
    for _ in range(21):  # a cron job every 2 h 20 min for two days
        done = run_cli(project, "run", "--once", now=moment.isoformat())
        said = " ".join((done.stdout + done.stderr).split())
        assert "Traceback" not in done.stderr
        if "delivery stopped" in said:  # the run found mails due: the relay refused them all
            stopped += 1
            assert done.returncode == 1, said
            assert "answered 451 4.3.0" in said and "(MAIL FROM contact@centre.example)" in said
            assert "nobody is charged" in said
        else:  # every mail waits for its next retry
            assert done.returncode == 0 and "deferred" not in said, said
        moment += timedelta(minutes=140)
    assert stopped >= 8
    for cid in people:
        assert contact_state(project, cid) == (None, 0)
    assert bounced(project) == []
    store = project.store()
    assert store.outbox_counts() == {"queued": 3}  # never given up: the relay's refusals are not the mail's
    assert store.scalar("SELECT MIN(attempts) FROM mails") >= 8
    smtp_server.reset()  # the relay is back: everything goes at the next retry
    due = max(moment, store.moment("SELECT MAX(not_before) FROM mails"))
    done = run_cli(project, "run", "--once", now=due.isoformat())
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(smtp_server.recipients()) == [f"contact{n}@example.org" for n in range(3)]


def test_a_4xx_at_the_end_of_data_for_two_days_fails_the_mail_without_a_soft_bounce(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    (cid,) = add_contacts(project, 1)
    queue(project, [cid])
    smtp_server.reply_to_data("451 4.3.0 Queue full, try later")
    moment = NOW
    for _ in range(30):
        deliver(project, now=moment)
        mail = project.store().row("SELECT state, not_before FROM mails")
        if mail["state"] != "queued":
            break
        moment = mail["not_before"]
    assert mail["state"] == "failed"
    assert contact_state(project, cid) == (None, 0) and bounced(project) == []


def test_a_451_at_mail_from_for_the_first_mails_of_a_run_stops_it_and_keeps_them_queued(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    queue(project, add_contacts(project, 4))
    smtp_server.reply_to_mail("451 4.3.0 try again later")
    report = deliver(project, now=NOW)
    assert report.stopped and "MAIL FROM" in report.stopped and report.deferred == 3 and report.failed == 0
    store = project.store()
    assert store.outbox_counts() == {"queued": 4}
    assert store.scalar("SELECT first_attempt_at FROM mails WHERE first_attempt_at IS NOT NULL") is None


def test_one_451_at_mail_from_defers_that_mail_and_the_run_goes_on(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    queue(project, add_contacts(project, 4))
    smtp_server.reply_to_mail("451 4.3.0 try again later", times=1, after=1)
    report = deliver(project, now=NOW)
    assert (report.sent, report.deferred, report.stopped) == (3, 1, None)


def test_the_relays_refusals_never_make_a_mail_give_up(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    (cid,) = add_contacts(project, 1)
    queue(project, [cid])
    store = project.store()
    with store.transaction():
        store.execute("UPDATE mails SET attempts = 30, queued_at = ?", (NOW - timedelta(days=9),))
    smtp_server.reply_to_mail("421 4.7.0 Too busy")
    report = deliver(project, now=NOW)
    assert report.deferred == 1 and report.failed == 0
    assert store.outbox_counts() == {"queued": 1} and contact_state(project, cid) == (None, 0)


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("greet", "421 4.3.2 Service not available, closing transmission channel"),
        ("reply_to_ehlo", "421 4.7.0 Too many connections from your host"),
        ("reply_to_ehlo", "451 4.3.0 Temporary server error"),
        ("reply_to_mail", "421 4.7.0 Try again later"),
    ],
)
def test_the_relay_refusing_before_any_recipient_stops_delivery_and_charges_nobody(tmp_path, smtp_server, stage, reply):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    people = add_contacts(project, 3)
    queue(project, people)
    getattr(smtp_server, stage)(reply)
    for hour in range(3):
        report = deliver(project, now=NOW + timedelta(hours=hour))
        assert report.stopped and reply[:3] in report.stopped and "nobody is charged" in report.stopped
        assert (report.sent, report.failed, report.deferred) == (0, 0, 3)
    store = project.store()
    assert store.outbox_counts() == {"queued": 3} and store.scalar("SELECT MAX(attempts) FROM mails") == 3
    assert bounced(project) == [] and all(contact_state(project, cid) == (None, 0) for cid in people)
    smtp_server.reset()
    assert deliver(project, now=NOW + timedelta(hours=4)).sent == 3


def test_a_4xx_at_rcpt_for_two_days_is_a_soft_bounce_of_that_contact(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    (cid, other) = add_contacts(project, 2)
    queue(project, [cid, other])
    smtp_server.refuse("contact0@example.org", "452 4.2.2 Mailbox full")
    moment = NOW
    for _ in range(30):
        deliver(project, now=moment)
        mail = project.store().row("SELECT state, not_before FROM mails WHERE contact_id = ?", (cid,))
        if mail["state"] != "queued":
            break
        moment = mail["not_before"]
    assert mail["state"] == "failed"
    [event] = bounced(project)
    assert event["contact_id"] == cid and json.loads(event["data"])["kind"] == "soft"
    assert contact_state(project, cid) == (None, 1)
    assert contact_state(project, other) == (None, 0)


def soft_dsn(n: int, date: str) -> bytes:
    message = dsn(
        [("marie@example.fr", "failed", "4.2.2", "452 4.2.2 Mailbox full")],
        original_id=f"<mail-{n}@centre.example>",
        message_id=f"<dsn-{n}@mx.example.org>",
    )
    return message.replace(b"Date: Thu, 19 Nov 2026 09:00:05 +0000", f"Date: {date}".encode())


def sent_to(cli, cid: int, n: int, at: str) -> None:
    from mailbox_support import sent_mail

    sent_mail(cli, cid, f"<mail-{n}@centre.example>", at=at)


def test_three_soft_bounces_within_a_week_do_not_suppress(cli, tmp_path):
    from mailbox_support import add_contact, db

    cid = add_contact(cli)
    days = ["Mon, 02 Nov 2026 09:00:00 +0000", "Wed, 04 Nov 2026 09:00:00 +0000", "Fri, 06 Nov 2026 09:00:00 +0000"]
    for n in range(3):
        sent_to(cli, cid, n, f"2026-11-0{2 + 2 * n}T08:00:00")
    box = write_mbox(tmp_path / "b.mbox", *(soft_dsn(n, date) for n, date in enumerate(days)))
    result = cli("bounces", "import", str(box), now="2026-11-06T10:00:00Z")
    assert "3 soft" in result.output and "0 contacts suppressed" in result.output
    contact = db(cli).contact(cid)
    assert contact["bounced_at"] is None and contact["soft_bounces"] == 3


def test_the_third_soft_bounce_seven_days_after_the_first_suppresses(cli, tmp_path):
    from mailbox_support import add_contact, db

    cid = add_contact(cli)
    days = ["Mon, 02 Nov 2026 09:00:00 +0000", "Thu, 05 Nov 2026 09:00:00 +0000", "Tue, 10 Nov 2026 09:00:00 +0000"]
    for n in range(3):
        sent_to(cli, cid, n, f"2026-11-{2 + 4 * n:02d}T08:00:00")
    box = write_mbox(tmp_path / "b.mbox", *(soft_dsn(n, date) for n, date in enumerate(days)))
    result = cli("bounces", "import", str(box), now="2026-11-10T10:00:00Z")
    assert "3 soft" in result.output and "1 contacts suppressed" in result.output
    assert db(cli).contact(cid)["bounced_at"] is not None


def test_a_delivery_between_soft_bounces_starts_the_count_again(cli, tmp_path):
    from mailbox_support import add_contact, db

    cid = add_contact(cli)
    days = ["Mon, 02 Nov 2026 09:00:00 +0000", "Thu, 05 Nov 2026 09:00:00 +0000", "Tue, 10 Nov 2026 09:00:00 +0000"]
    for n in range(3):
        sent_to(cli, cid, n, f"2026-11-{2 + 4 * n:02d}T08:00:00")
    sent_to(cli, cid, 9, "2026-11-07T08:00:00")  # delivered: no bounce ever came for it
    box = write_mbox(tmp_path / "b.mbox", *(soft_dsn(n, date) for n, date in enumerate(days)))
    result = cli("bounces", "import", str(box), now="2026-11-10T10:00:00Z")
    assert "3 soft" in result.output and "0 contacts suppressed" in result.output
    contact = db(cli).contact(cid)
    assert contact["bounced_at"] is None and contact["soft_bounces"] == 1


# --- 3. the retry age counts from the first attempt ------------------------------------


def test_a_campaign_scheduled_three_days_ahead_is_retried_after_one_421(cli, smtp_server):
    project = make_project(cli.root, extra=smtp_server.settings_yaml())
    (cid,) = add_contacts(project, 1)
    later = NOW + timedelta(days=3)
    result = cli("send", "session", "--at", later.isoformat(), now=NOW.isoformat())
    assert result.exit_code == 0, result.output
    smtp_server.refuse("contact0@example.org", "421 4.7.0 Try again later", times=1)
    assert cli("run", "--once", now=later.isoformat()).exit_code in (0, 1)
    mail = project.store().row("SELECT * FROM mails")
    assert mail["state"] == "queued" and "gave up" not in (mail["last_error"] or "")
    assert bounced(project) == [] and contact_state(project, cid) == (None, 0)
    retry = cli("run", "--once", now=(later + timedelta(minutes=10)).isoformat())
    assert retry.exit_code == 0, retry.output
    assert project.store().row("SELECT state FROM mails")["state"] == "sent"
    assert smtp_server.recipients() == ["contact0@example.org"]


def test_marketing_mail_waiting_for_the_send_window_over_a_weekend_is_retried(cli, smtp_server):
    window = 'send_window:\n  days: [mon, tue, wed, thu, fri]\n  hours: "08:00-18:00"\n'
    project = make_project(cli.root, extra=smtp_server.settings_yaml() + window)
    (cid,) = add_contacts(project, 1)
    friday_evening = NOW - timedelta(days=3) + timedelta(hours=10)  # Friday 2026-02-27 19:00 UTC, window closed
    result = cli("send", "session", now=friday_evening.isoformat())
    assert result.exit_code == 0, result.output
    mail = project.store().row("SELECT * FROM mails")
    assert mail["state"] == "queued" and mail["not_before"] > friday_evening + timedelta(days=2)
    smtp_server.refuse("contact0@example.org", "451 4.7.1 Greylisted, try again in 5 minutes", times=1)
    opening = mail["not_before"]
    cli("run", "--once", now=opening.isoformat())
    mail = project.store().row("SELECT * FROM mails")
    assert mail["state"] == "queued" and mail["attempts"] == 1
    assert bounced(project) == [] and contact_state(project, cid) == (None, 0)
    assert cli("run", "--once", now=(opening + timedelta(minutes=10)).isoformat()).exit_code == 0
    assert smtp_server.recipients() == ["contact0@example.org"]


# --- 4. contacts unbounce ------------------------------------------------------------------


def test_unbounce_lifts_the_suppression_and_outbox_retry_sends_the_failed_mails(cli, smtp_server):
    project = make_project(cli.root, extra=smtp_server.settings_yaml())
    (cid,) = add_contacts(project, 1)
    queue(project, [cid], purpose="service")
    smtp_server.refuse("contact0@example.org", "550 5.1.1 No such user", times=1)
    deliver(project, now=NOW)
    assert contact_state(project, cid)[0] is not None
    kept = cli("outbox", "retry", now=NOW.isoformat())
    assert "bounced" in kept.output and project.store().outbox_counts() == {"failed": 1}

    later = (NOW + timedelta(hours=1)).isoformat()
    done = cli("contacts", "unbounce", "contact0@example.org", "--reason", "address fixed on the phone", now=later)
    assert done.exit_code == 0, done.output
    assert contact_state(project, cid) == (None, 0)
    shown = cli("contacts", "show", "contact0@example.org", now=later)
    assert "unbounce" in shown.output and "address fixed on the phone" in shown.output

    retried = cli("outbox", "retry", now=later)
    assert retried.exit_code == 0, retried.output
    assert cli("run", "--once", now=later).exit_code == 0
    assert smtp_server.recipients() == ["contact0@example.org"]
    assert project.store().outbox_counts() == {"sent": 1}


def test_unbounce_also_clears_soft_bounces(cli, tmp_path):
    from mailbox_support import add_contact, db

    cid = add_contact(cli)
    sent_to(cli, cid, 0, "2026-11-02T08:00:00")
    box = write_mbox(tmp_path / "b.mbox", soft_dsn(0, "Mon, 02 Nov 2026 09:00:00 +0000"))
    cli("bounces", "import", str(box), now="2026-11-02T10:00:00Z")
    assert db(cli).contact(cid)["soft_bounces"] == 1
    done = cli("contacts", "unbounce", "marie@example.fr", "--reason", "mailbox emptied", now="2026-11-03T10:00:00Z")
    assert done.exit_code == 0, done.output
    assert db(cli).contact(cid)["soft_bounces"] == 0


def test_unbounce_of_an_unknown_address_or_a_contact_not_bounced_is_a_clear_error(cli):
    project = make_project(cli.root)
    add_contacts(project, 1)
    unknown = cli("contacts", "unbounce", "nobody@example.org", "--reason", "x", now=NOW.isoformat())
    assert unknown.exit_code == 1 and "nobody@example.org" in unknown.output
    assert "Traceback" not in unknown.output and len(unknown.output.strip().splitlines()) == 1
    fine = cli("contacts", "unbounce", "contact0@example.org", "--reason", "x", now=NOW.isoformat())
    assert fine.exit_code == 1 and "not bounced" in fine.output
    empty = cli("contacts", "unbounce", "contact0@example.org", "--reason", " ", now=NOW.isoformat())
    assert empty.exit_code != 0


def test_unbounce_via_the_real_cli_exits_1_for_an_unknown_address(tmp_path):
    project = make_project(tmp_path / "centre")
    done = run_cli(project, "contacts", "unbounce", "ghost@example.org", "--reason", "typo", now=NOW.isoformat())
    assert done.returncode == 1 and "ghost@example.org" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_5_1_1_for_the_whole_message_at_data_fails_it_without_suppressing_anyone(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    (cid, other) = add_contacts(project, 2)
    queue(project, [cid, other])
    smtp_server.reply_to_data("550 5.1.1 Relay rejected the message", times=1)
    report = deliver(project, now=NOW)
    assert (report.sent, report.failed, report.bounced) == (1, 1, 0)
    assert bounced(project) == [] and contact_state(project, cid) == (None, 0)


def test_a_staff_answer_to_a_notify_alert_is_not_the_contacts_reply(cli, tmp_path):
    from mailbox_support import add_contact, db, events_named
    from test_replies import reply

    cid = add_contact(cli)
    store = db(cli)
    stamp = clock.parse_iso("2026-11-18T09:00:00", clock.UTC)
    with store.transaction():
        alert = store.enqueue_mail(
            message_id="<mail-1@centre.example>",
            template="__notify__",
            purpose="service",
            not_before=stamp,
            now=stamp,
            contact_id=cid,
            to_email=STAFF,
            context={"subject": "[edumail] Marie", "body": "Marie s'est inscrite."},
        )
        store.mark_mail_sent(alert, stamp, "[edumail] Marie", [])
    result = cli("inbox", "import", str(write_mbox(tmp_path / "r.mbox", reply())), now="2026-11-20T10:00:00Z")
    assert "0 replies recorded" in result.output, result.output
    assert events_named(cli, cid, "replied") == []
