"""`edumail bounces import`: RFC 3464 DSNs from mbox files and Maildirs."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from mailbox_support import add_contact, db, events_named, sent_mail

from edumail import bounces, clock, contacts
from edumail.errors import InputError

NOW = "2026-11-20T10:00:00+00:00"


# --- fixtures built in the test ------------------------------------------------------


def dsn(
    recipients: list[tuple[str, str, str, str]],
    *,
    original_id: str | None = "<mail-1@centre.example>",
    message_id: str = "<dsn-1@mx.example.org>",
    headers_part: str = "text/rfc822-headers",
) -> bytes:
    """A DSN in the RFC 3464 layout: text, delivery-status blocks, the returned headers."""
    blocks = "Reporting-MTA: dns; mx.example.org\nArrival-Date: Thu, 19 Nov 2026 09:00:00 +0000\n"
    for address, action, status, diagnostic in recipients:
        blocks += (
            f"\nFinal-Recipient: rfc822; {address}\nAction: {action}\nStatus: {status}\n"
            f"Diagnostic-Code: smtp; {diagnostic}\n"
        )
    original = "From: contact@centre.example\nTo: someone\nSubject: Bienvenue\n"
    if original_id:
        original += f"Message-ID: {original_id}\n"
    if headers_part == "message/rfc822":
        original += "\nle corps du message\n"
    text = (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n"
        f"To: contact@centre.example\n"
        f"Subject: Undelivered Mail Returned to Sender\n"
        f"Date: Thu, 19 Nov 2026 09:00:05 +0000\n"
        f"Message-ID: {message_id}\n"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"\n'
        f"\n"
        f"--BOUND\nContent-Type: text/plain; charset=us-ascii\n\nThis is the mail system at host mx.example.org.\n\n"
        f"--BOUND\nContent-Type: message/delivery-status\n\n{blocks}\n"
        f"--BOUND\nContent-Type: {headers_part}\n\n{original}\n"
        f"--BOUND--\n"
    )
    return text.encode()


def hard(address: str = "marie@example.fr", status: str = "5.1.1", **kw) -> bytes:
    return dsn([(address, "failed", status, f"550 {status} <{address}>: Recipient address rejected")], **kw)


def write_mbox(path: Path, *messages: bytes) -> Path:
    box = mailbox.mbox(str(path))
    for message in messages:
        box.add(message)
    box.flush()
    box.close()
    return path


def write_maildir(path: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(str(path), create=True)
    for message in messages:
        box.add(message)
    return path


def bounced_events(cli, contact_id: int) -> list[dict]:
    return events_named(cli, contact_id, "bounced")


# --- behaviour ------------------------------------------------------------------------


def test_hard_bounce_matched_by_message_id_is_recorded_and_suppresses(cli, tmp_path):
    cid = add_contact(cli)
    mail_id = sent_mail(cli, cid)
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", hard())), now=NOW)
    assert result.exit_code == 0, result.output
    assert "1 hard" in result.output and "1 contacts suppressed" in result.output
    [event] = bounced_events(cli, cid)
    assert event["mail_id"] == mail_id
    assert event["data"]["kind"] == "hard" and event["data"]["status"] == "5.1.1"
    assert "Recipient address rejected" in event["data"]["diagnostic"]
    assert contacts.may_receive(db(cli).contact(cid), "marketing") == "bounced"


def test_hard_bounce_also_stops_service_mail(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", hard())), now=NOW)
    assert contacts.may_receive(db(cli).contact(cid), "service") == "bounced"


def test_bounce_is_matched_by_message_id_even_when_the_address_differs(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", hard("alias@forward.example"))), now=NOW)
    assert len(bounced_events(cli, cid)) == 1


def test_bounce_without_original_headers_is_matched_by_address_to_the_last_mail(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid, "<old@centre.example>")
    last = sent_mail(cli, cid, "<new@centre.example>")
    cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", hard(original_id=None))), now=NOW)
    [event] = bounced_events(cli, cid)
    assert event["mail_id"] == last


def test_returned_message_as_message_rfc822_is_matched(cli, tmp_path):
    cid = add_contact(cli)
    mail_id = sent_mail(cli, cid)
    path = write_mbox(tmp_path / "b.mbox", hard("x@elsewhere.example", headers_part="message/rfc822"))
    cli("bounces", "import", str(path), now=NOW)
    assert bounced_events(cli, cid)[0]["mail_id"] == mail_id


def test_message_id_stored_without_brackets_still_matches(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid, "mail-1@centre.example")
    cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", hard("x@elsewhere.example"))), now=NOW)
    assert len(bounced_events(cli, cid)) == 1


def test_soft_bounce_is_recorded_without_suppressing(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    message = dsn([("marie@example.fr", "failed", "4.2.2", "452 4.2.2 Mailbox full")])
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", message)), now=NOW)
    assert "1 soft" in result.output
    assert bounced_events(cli, cid)[0]["data"]["kind"] == "soft"
    contact = db(cli).contact(cid)
    assert contact["soft_bounces"] == 1 and contact["bounced_at"] is None


def test_a_delay_notice_is_not_a_bounce(cli, tmp_path):
    """Issue 13 point 5: `Action: delayed` (4.2.2) is the server still trying, not a bounce."""
    cid = add_contact(cli)
    sent_mail(cli, cid)
    message = dsn([("marie@example.fr", "delayed", "4.2.2", "mailbox full, still trying")])
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", message)), now=NOW)
    assert result.exit_code == 0, result.output
    assert "0 soft" in result.output and "1 not bounces" in result.output
    assert bounced_events(cli, cid) == []
    contact = db(cli).contact(cid)
    assert contact["soft_bounces"] == 0 and contact["bounced_at"] is None


def test_three_soft_bounces_of_three_mails_over_a_week_suppress(cli, tmp_path):
    """SPEC 19: the third soft bounce suppresses when the three are spread over at least 7 days."""
    cid = add_contact(cli)
    messages = []
    for n, day in enumerate(("Wed, 18 Nov 2026", "Sun, 22 Nov 2026", "Wed, 25 Nov 2026")):
        sent_mail(cli, cid, f"<mail-{n}@centre.example>")
        message = dsn(
            [("marie@example.fr", "failed", "4.2.2", "mailbox full")],
            original_id=f"<mail-{n}@centre.example>",
            message_id=f"<dsn-{n}@mx.example.org>",
        )
        messages.append(message.replace(b"Thu, 19 Nov 2026 09:00:05", f"{day} 10:00:00".encode()))
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", *messages)), now="2026-11-26T10:00:00Z")
    assert "3 soft" in result.output and "1 contacts suppressed" in result.output
    assert db(cli).contact(cid)["bounced_at"] is not None


def test_repeated_delay_notices_never_suppress(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    notices = [
        dsn([("marie@example.fr", "delayed", "4.4.1", "no answer")], message_id=f"<delay-{n}@mx.example.org>")
        for n in range(3)
    ]
    cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", *notices)), now=NOW)
    contact = db(cli).contact(cid)
    assert bounced_events(cli, cid) == []
    assert contact["soft_bounces"] == 0 and contact["bounced_at"] is None


def test_policy_block_is_recorded_but_never_suppresses(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    message = hard(status="5.7.1", original_id="<mail-1@centre.example>")
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", message)), now=NOW)
    assert "1 policy" in result.output and "5.7.1" in result.output
    assert bounced_events(cli, cid)[0]["data"]["kind"] == "policy"
    assert contacts.may_receive(db(cli).contact(cid), "marketing") is None


def test_delivered_action_is_not_a_bounce(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    message = dsn([("marie@example.fr", "delivered", "2.0.0", "250 ok")])
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", message)), now=NOW)
    assert "1 not bounces" in result.output
    assert bounced_events(cli, cid) == []


def test_dsn_matching_nothing_is_counted_and_reported(cli, tmp_path):
    message = hard("nobody@example.org", original_id="<unknown@elsewhere>")
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", message)), now=NOW)
    assert result.exit_code == 1  # SPEC 11: a message left unrecorded needs a look
    assert "1 unmatched" in result.output
    assert "nobody@example.org (5.1.1)" in result.output and "message 1" in result.output


def test_reimport_does_not_count_the_same_dsn_twice(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    path = write_mbox(tmp_path / "b.mbox", dsn([("marie@example.fr", "failed", "4.2.2", "full")]))
    cli("bounces", "import", str(path), now=NOW)
    result = cli("bounces", "import", str(path), now=NOW)
    assert "1 already imported" in result.output
    assert db(cli).contact(cid)["soft_bounces"] == 1
    assert len(bounced_events(cli, cid)) == 1


def test_maildir_folder_is_read(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    result = cli("bounces", "import", str(write_maildir(tmp_path / "Bounces", hard())), now=NOW)
    assert result.exit_code == 0, result.output
    assert len(bounced_events(cli, cid)) == 1


def test_event_time_is_the_dsn_date(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", hard())), now=NOW)
    assert bounced_events(cli, cid)[0]["at"].isoformat().startswith("2026-11-19T09:00:05")


def test_one_dsn_with_several_recipients_records_each_contact(cli, tmp_path):
    a = add_contact(cli, "a@example.fr")
    b = add_contact(cli, "b@example.fr")
    message = dsn(
        [("a@example.fr", "failed", "5.1.1", "unknown"), ("b@example.fr", "failed", "4.2.2", "full")], original_id=None
    )
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", message)), now=NOW)
    assert "1 hard, 1 soft" in result.output
    assert bounced_events(cli, a)[0]["data"]["kind"] == "hard"
    assert bounced_events(cli, b)[0]["data"]["kind"] == "soft"


def test_non_rfc3464_bounce_is_found_by_flufl_bounce(cli, tmp_path):
    cid = add_contact(cli)
    qmail = (
        b"From: MAILER-DAEMON@mx.example.org\nTo: contact@centre.example\nSubject: failure notice\n"
        b"Message-ID: <qmail-1@mx.example.org>\n\n"
        b"Hi. This is the qmail-send program at mx.example.org.\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        b"<marie@example.fr>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        b"Message-ID: <mail-1@centre.example>\nSubject: Bienvenue\n"
    )
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", qmail)), now=NOW)
    assert result.exit_code == 0, result.output
    [event] = bounced_events(cli, cid)
    assert event["data"]["kind"] == "hard" and event["data"]["status"] == "5.1.1"


def test_ordinary_mail_in_the_bounce_box_is_not_a_bounce(cli, tmp_path):
    plain = b"From: someone@example.fr\nTo: contact@centre.example\nSubject: question\n\nBonjour, une question.\n"
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", plain)), now=NOW)
    assert "1 not bounces" in result.output


def test_forgotten_contact_is_not_matched(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    assert cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW).exit_code == 0
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", hard())), now=NOW)
    assert "1 unmatched" in result.output
    assert bounced_events(cli, cid) == []


# --- bad input ------------------------------------------------------------------------


def test_missing_path_is_a_clear_error(cli, tmp_path):
    result = cli("bounces", "import", str(tmp_path / "nope.mbox"), now=NOW)
    assert result.exit_code == 1
    assert "no such file or folder" in result.output
    assert "Traceback" not in result.output


def test_file_that_is_not_an_mbox_stops_at_message_1(cli, tmp_path):
    path = tmp_path / "b.mbox"
    path.write_bytes(b"Subject: hello\n\nnot an mbox\n")
    result = cli("bounces", "import", str(path), now=NOW)
    assert result.exit_code == 1
    assert "b.mbox: message 1: not an mbox file" in result.output


def test_malformed_message_stops_with_file_and_number_and_records_nothing(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    broken = b'From: x@y\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\n\nno parts\n'
    path = write_mbox(tmp_path / "b.mbox", hard(), broken)
    result = cli("bounces", "import", str(path), now=NOW)
    assert result.exit_code == 1
    assert "b.mbox: message 2: malformed message" in result.output
    assert bounced_events(cli, cid) == []


def test_report_without_recipient_block_is_malformed(cli, tmp_path):
    broken = (
        b"From: MAILER-DAEMON@mx\nMessage-ID: <d@mx>\nContent-Type: multipart/report; report-type=delivery-status;"
        b' boundary="B"\n\n--B\nContent-Type: text/plain\n\nhi\n--B\nContent-Type: message/delivery-status\n\n'
        b"Reporting-MTA: dns; mx\n\n--B--\n"
    )
    result = cli("bounces", "import", str(write_mbox(tmp_path / "b.mbox", broken)), now=NOW)
    assert result.exit_code == 1
    assert "message 1: malformed delivery report" in result.output


def test_folder_that_is_not_a_maildir_is_refused(cli, tmp_path):
    (tmp_path / "folder").mkdir()
    result = cli("bounces", "import", str(tmp_path / "folder"), now=NOW)
    assert result.exit_code == 1
    assert "not a Maildir" in result.output


# --- parsing units ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "kind"),
    [
        ("5.1.1", "failed", "hard"),
        ("5.2.1", "failed", "hard"),
        ("4.2.2", "failed", "soft"),
        ("5.7.515", "failed", "policy"),
    ],
)
def test_kind_from_status_and_action(status, action, kind):
    raw = dsn([("a@example.fr", action, status, "x")])
    parsed = bounces.parse_dsn(bounces.parse_message(raw, "m"), raw, "m", clock.now())
    assert parsed is not None and parsed.failures[0].kind == kind


def test_status_missing_is_read_from_the_diagnostic_code():
    raw = dsn([("a@example.fr", "failed", "", "550 5.1.2 bad domain")])
    parsed = bounces.parse_dsn(bounces.parse_message(raw, "m"), raw, "m", clock.now())
    assert parsed is not None and parsed.failures[0].status == "5.1.2"


def test_parse_message_without_headers_is_an_input_error():
    with pytest.raises(InputError, match="no header lines"):
        bounces.parse_message(b"\n\njust a body\n", "f: message 3")
