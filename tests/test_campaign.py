# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""`edumail send` campaigns and `edumail outbox`, through the CLI, into a real SMTP server."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import NOW, add_contacts, make_project, queue
from typer.testing import CliRunner

from edumail import clock
from edumail.cli import app
from edumail.settings import SendWindow

NOW_ISO = "2026-03-02T09:00:00Z"  # Monday 10:00 in Paris


class Run:
    def __init__(self, root: Path):
        self.root = root
        self.runner = CliRunner()

    def __call__(self, *args: str, now: str = NOW_ISO, env: dict | None = None):
        return self.runner.invoke(app, ["--project", str(self.root), *args], env={"EDUMAIL_NOW": now, **(env or {})})


@pytest.fixture
def centre(tmp_path: Path, smtp_server: SmtpTestServer):  # noqa: F811
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml(concurrency=4))
    return project, Run(project.root)


def test_a_1000_mail_campaign_arrives_with_every_header_right(centre, smtp_server):
    project, run = centre
    add_contacts(project, 1000, first_name="Zoé", last_name="Dupont, Jean")
    result = run("send", "session")
    assert result.exit_code == 0, result.output
    assert "1000 sent" in result.output
    assert len(smtp_server.messages) == 1000
    assert sorted(smtp_server.recipients()) == sorted(f"contact{n}@example.org" for n in range(1000))
    ids = set()
    for received in smtp_server.messages:
        msg = message_from_bytes(received.data, policy=policy.default)
        for name in ("From", "To", "Date", "Message-ID", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"):
            assert len(msg.get_all(name) or []) == 1, name
        assert msg["From"] == "Centre de formation Exemple <contact@centre.example>"
        (to,) = msg["To"].addresses
        assert to.display_name == "Zoé Dupont, Jean" and to.addr_spec == received.rcpt_tos[0]
        assert msg["Message-ID"].endswith("@centre.example>")
        assert msg["List-Unsubscribe"].startswith("<https://mail.centre.example/u/")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Precedence"] == "bulk"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert received.mail_from == "contact@centre.example"
        ids.add(msg["Message-ID"])
    assert len(ids) == 1000
    campaign = project.store().campaign_by_name("session-2026-03-02")
    assert campaign["state"] == "done"


def test_running_the_same_send_again_sends_nothing_twice(centre, smtp_server):
    project, run = centre
    add_contacts(project, 5)
    assert run("send", "session").exit_code == 0
    again = run("send", "session")
    assert again.exit_code == 0, again.output
    assert "0 queued, 5 already queued by an earlier run" in again.output
    assert len(smtp_server.messages) == 5


def test_only_contacts_with_marketing_consent_get_a_campaign(centre, smtp_server):
    project, run = centre
    add_contacts(project, 2)
    add_contacts(project, 1, consent="unknown", start=10)
    add_contacts(project, 1, consent="opted_out", start=20)
    result = run("send", "session")
    assert "1 no marketing consent" in result.output and "1 opted out" in result.output
    assert sorted(smtp_server.recipients()) == ["contact0@example.org", "contact1@example.org"]


def test_tag_stage_and_where_select_the_audience(centre, smtp_server):
    project, run = centre
    add_contacts(project, 2, tags=["webinar"], fields=json.dumps({"ville": "Lyon"}))
    add_contacts(project, 2, start=10, tags=["webinar"], fields=json.dumps({"ville": "Paris"}))
    add_contacts(project, 2, start=20, fields=json.dumps({"ville": "Lyon"}))
    project.store().execute(
        "UPDATE contacts SET stage = 'prospect' WHERE email IN"
        " ('contact0@example.org', 'contact10@example.org', 'contact20@example.org')"
    )
    result = run("send", "session", "--tag", "webinar", "--where", "ville=Lyon", "--stage", "prospect")
    assert result.exit_code == 0, result.output
    assert smtp_server.recipients() == ["contact0@example.org"]


def test_dry_run_lists_recipients_and_queues_nothing(centre, smtp_server):
    project, run = centre
    add_contacts(project, 3)
    result = run("send", "session", "--dry-run")
    assert result.exit_code == 0
    assert "3 would queue" in result.output and "contact0@example.org" in result.output
    assert smtp_server.messages == [] and project.store().outbox_counts() == {}
    assert project.store().campaign_by_name("session-2026-03-02") is None


def test_limit_caps_the_campaign_and_a_rerun_completes_it(centre, smtp_server):
    project, run = centre
    add_contacts(project, 5)
    assert "2 queued" in run("send", "session", "--limit", "2").output
    assert "2 queued" not in run("send", "session", "--limit", "2").output
    assert len(smtp_server.messages) == 2
    run("send", "session")
    assert len(smtp_server.messages) == 5


def test_at_in_the_future_schedules_for_a_later_run(centre, smtp_server):
    project, run = centre
    add_contacts(project, 2)
    result = run("send", "session", "--at", "2026-03-03T10:00")
    assert result.exit_code == 0 and "Scheduled for 2026-03-03 10:00" in result.output
    assert smtp_server.messages == []
    campaign = project.store().campaign_by_name("session-2026-03-03")
    assert campaign["state"] == "scheduled"
    rows = project.store().rows("SELECT not_before FROM mails")
    assert {r["not_before"] for r in rows} == {clock.from_db("2026-03-03T09:00:00.000000Z")}


def test_the_campaign_name_can_be_given_and_must_not_clash(centre):
    project, run = centre
    add_contacts(project, 1)
    assert run("send", "session", "--name", "rentree").exit_code == 0
    clash = run("send", "forgetful", "--name", "rentree")
    assert clash.exit_code == 1 and "already exists" in clash.output


def test_an_unknown_template_is_an_error_listing_the_templates(centre):
    _, run = centre
    result = run("send", "sesion")
    assert result.exit_code == 1 and "unknown template 'sesion'" in result.output and "session" in result.output


def test_contacts_over_the_weekly_marketing_limit_are_skipped(tmp_path, smtp_server):  # noqa: F811
    extra = smtp_server.settings_yaml() + "limits:\n  marketing_per_week: 1\n"
    project = make_project(tmp_path / "centre", extra=extra)
    ids = add_contacts(project, 2)
    queue(project, [ids[0]], not_before=clock.from_db("2026-03-01T09:00:00.000000Z"))
    project.store().execute("UPDATE mails SET state = 'sent', sent_at = not_before")
    result = Run(project.root)("send", "session")
    assert "1 over limits.marketing_per_week" in result.output
    assert smtp_server.recipients() == ["contact1@example.org"]


def test_a_failure_exits_1_and_says_how_to_retry_then_retry_requeues(centre, smtp_server):
    project, run = centre
    add_contacts(project, 3)
    smtp_server.reply_to_data("552 5.3.4 Message too big", times=1)
    result = run("send", "session")
    assert result.exit_code == 1
    assert "2 sent, 1 failed" in result.output and "edumail outbox retry" in result.output
    listing = run("outbox", "--failed")
    assert listing.exit_code == 0 and "552 5.3.4" in listing.output
    retry = run("outbox", "retry")
    assert retry.exit_code == 0 and "1 failed mail queued again" in retry.output
    assert project.store().outbox_counts() == {"sent": 2, "queued": 1}


def test_retry_leaves_hard_bounces_failed(centre, smtp_server):
    project, run = centre
    add_contacts(project, 2)
    smtp_server.refuse("contact0@example.org", "550 5.1.1 no such user")
    result = run("send", "session")
    assert result.exit_code == 1 and "1 bounced" in result.output
    retry = run("outbox", "retry")
    assert "0 failed mails queued again" in retry.output and "bounced" in retry.output


def test_a_policy_block_exits_1_with_what_the_server_said(centre, smtp_server):
    project, run = centre
    add_contacts(project, 4)
    smtp_server.reply_to_data("554 5.7.1 Service unavailable; client host blocked")
    result = run("send", "session")
    assert result.exit_code == 1
    assert "554 5.7.1 Service unavailable; client host blocked" in result.output
    assert "4 mails still queued" in result.output
    assert "4 queued" in run("outbox").output


def test_outbox_lists_queued_mails_and_when_they_go(tmp_path):
    project = make_project(tmp_path / "centre")
    queue(project, add_contacts(project, 1), not_before=clock.from_db("2026-03-05T08:00:00.000000Z"))
    result = Run(project.root)("outbox")
    assert result.exit_code == 0
    assert (
        "1 queued" in result.output and "contact0@example.org" in result.output and "2026-03-05 09:00" in result.output
    )


def test_outbox_is_empty_at_first(tmp_path):
    project = make_project(tmp_path / "centre")
    result = Run(project.root)("outbox")
    assert result.exit_code == 0 and "empty" in result.output


# --- the send window -------------------------------------------------------------------------


def test_next_opening_is_now_inside_the_window_and_the_next_morning_outside():
    window = SendWindow(days=("mon", "tue", "wed", "thu", "fri"), hours="08:00-19:00")
    tz = clock.zone("Europe/Paris")
    assert window.next_opening(NOW, tz) == NOW
    friday_night = clock.parse_iso("2026-03-06T20:00", tz)
    assert window.next_opening(friday_night, tz) == clock.parse_iso("2026-03-09T08:00", tz)


def test_a_campaign_outside_the_send_window_waits_for_the_opening(tmp_path):
    extra = 'send_window:\n  days: [mon, tue, wed, thu, fri]\n  hours: "08:00-19:00"\n'
    project = make_project(tmp_path / "centre", extra=extra)
    add_contacts(project, 1)
    result = Run(project.root)("send", "session", now="2026-03-07T10:00:00Z")  # a Saturday
    assert result.exit_code == 0, result.output
    assert "1 mail waits for the send window (mon-fri 08:00-19:00)" in result.output
    assert "it opens on Mon 2026-03-09 at 08:00 (Europe/Paris)" in result.output
    assert "the next `edumail run` after that sends" in result.output
    assert project.store().row("SELECT not_before FROM mails")["not_before"] == clock.from_db(
        "2026-03-09T07:00:00.000000Z"
    )
