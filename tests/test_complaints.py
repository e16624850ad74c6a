"""`edumail complaints import`: ARF feedback reports (RFC 5965) from mbox files and Maildirs (SPEC 18)."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

from mailbox_support import add_contact, db, events_named, sent_mail

from edumail import contacts

NOW = "2026-11-20T10:00:00+00:00"


# --- RFC 5965 reports built in the test ----------------------------------------------


def original(message_id: str | None = "<mail-1@centre.example>", to: str = "Marie <marie@example.fr>") -> EmailMessage:
    """The mail complained about, as the mailbox provider returns it."""
    mail = EmailMessage()
    mail["From"] = "Centre <contact@centre.example>"
    mail["To"] = to
    mail["Subject"] = "Nouvelle session"
    if message_id:
        mail["Message-ID"] = message_id
    mail.set_content("Bonjour Marie, une nouvelle session ouvre.\n")
    return mail


def arf(
    *,
    message_id: str | None = "<mail-1@centre.example>",
    rcpt: str | None = None,
    to: str = "Marie <marie@example.fr>",
    headers_only: bool = False,
    report_id: str = "<arf-1@feedback.yahoo.example>",
    feedback_type: str = "abuse",
) -> bytes:
    """A feedback report in the RFC 5965 layout: human text, message/feedback-report, the original."""
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.example>"
    report["To"] = "fbl@centre.example"
    report["Subject"] = "FW: Nouvelle session"
    report["Date"] = "Thu, 19 Nov 2026 09:30:00 +0000"
    report["Message-ID"] = report_id
    report.attach(MIMEText("This is an email abuse report for an email message received from IP 192.0.2.25.\n"))
    fields = [
        f"Feedback-Type: {feedback_type}",
        "User-Agent: Yahoo!-Mail-Feedback/2.0",
        "Version: 1",
        "Original-Mail-From: <bounces@centre.example>",
        "Arrival-Date: Wed, 18 Nov 2026 09:00:05 +0000",
        "Source-IP: 192.0.2.25",
    ]
    if rcpt:
        fields.append(f"Original-Rcpt-To: {rcpt}")
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload("\n".join(fields) + "\n")
    report.attach(feedback)
    returned = original(message_id, to)
    if headers_only:
        head = "".join(f"{name}: {value}\n" for name, value in returned.items())
        report.attach(MIMEText(head, "rfc822-headers"))
    else:
        report.attach(MIMEMessage(returned))
    return report.as_bytes()


def plain(subject: str = "Re: Nouvelle session") -> bytes:
    note = EmailMessage()
    note["From"] = "someone@example.org"
    note["To"] = "fbl@centre.example"
    note["Subject"] = subject
    note["Message-ID"] = "<plain-1@example.org>"
    note.set_content("Not a report.\n")
    return note.as_bytes()


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


def complaints(cli, contact_id: int) -> list[dict]:
    return events_named(cli, contact_id, "complained")


# --- behaviour ------------------------------------------------------------------------------


def test_complaint_matched_by_message_id_is_recorded_and_suppresses_marketing(cli, tmp_path):
    cid = add_contact(cli)
    mail_id = sent_mail(cli, cid)
    result = cli("complaints", "import", str(write_mbox(tmp_path / "fbl.mbox", arf())), now=NOW)
    assert result.exit_code == 0, result.output
    assert "1 complaint recorded" in result.output
    [event] = complaints(cli, cid)
    assert event["mail_id"] == mail_id
    assert event["data"]["feedback_type"] == "abuse"
    assert contacts.may_receive(db(cli).contact(cid), "marketing") is not None
    assert contacts.may_receive(db(cli).contact(cid), "service") is None


def test_complaint_in_a_maildir_with_headers_only_is_matched(cli, tmp_path):
    cid = add_contact(cli)
    mail_id = sent_mail(cli, cid)
    folder = write_maildir(tmp_path / "fbl", arf(headers_only=True, to="x@alias.example"))
    result = cli("complaints", "import", str(folder), now=NOW)
    assert result.exit_code == 0, result.output
    assert [e["mail_id"] for e in complaints(cli, cid)] == [mail_id]


def test_complaint_without_our_message_id_is_matched_by_original_rcpt_to(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid, "<old@centre.example>")
    last = sent_mail(cli, cid, "<new@centre.example>")
    report = arf(message_id=None, rcpt="marie@example.fr", to="redacted@yahoo.example")
    result = cli("complaints", "import", str(write_mbox(tmp_path / "fbl.mbox", report)), now=NOW)
    assert result.exit_code == 0, result.output
    assert [e["mail_id"] for e in complaints(cli, cid)] == [last]


def test_complaint_without_message_id_or_rcpt_is_matched_by_the_original_to(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    report = arf(message_id=None, headers_only=True)
    assert cli("complaints", "import", str(write_mbox(tmp_path / "fbl.mbox", report)), now=NOW).exit_code == 0
    assert len(complaints(cli, cid)) == 1


def test_reimporting_the_same_reports_records_nothing_twice(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    path = write_mbox(tmp_path / "fbl.mbox", arf())
    cli("complaints", "import", str(path), now=NOW)
    again = cli("complaints", "import", str(path), now=NOW)
    assert again.exit_code == 0, again.output
    assert "1 already imported" in again.output
    assert len(complaints(cli, cid)) == 1


def test_a_second_report_for_the_same_mail_is_not_a_second_complaint(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    path = write_mbox(tmp_path / "fbl.mbox", arf(), arf(report_id="<arf-2@feedback.yahoo.example>"))
    result = cli("complaints", "import", str(path), now=NOW)
    assert result.exit_code == 0, result.output
    assert len(complaints(cli, cid)) == 1


def test_non_arf_messages_are_skipped_and_counted(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    result = cli("complaints", "import", str(write_mbox(tmp_path / "fbl.mbox", plain(), arf())), now=NOW)
    assert result.exit_code == 0, result.output
    assert "1 not a feedback report" in result.output
    assert len(complaints(cli, cid)) == 1


def test_an_unreadable_message_is_reported_skipped_and_the_rest_recorded(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    broken = b"Content-Type: multipart/report; report-type=feedback-report\n\nno boundary at all\n"
    path = write_mbox(tmp_path / "fbl.mbox", broken, arf())
    result = cli("complaints", "import", str(path), now=NOW)
    assert result.exit_code == 1
    assert f"{path}: message 1" in result.output and "skipped" in result.output
    assert "Traceback" not in result.output
    assert len(complaints(cli, cid)) == 1


def test_a_report_for_an_unknown_mail_and_address_is_listed_and_exits_1(cli, tmp_path):
    add_contact(cli)
    report = arf(message_id="<not-ours@elsewhere.example>", rcpt="nobody@example.org", to="nobody@example.org")
    path = write_mbox(tmp_path / "fbl.mbox", report)
    result = cli("complaints", "import", str(path), now=NOW)
    assert result.exit_code == 1
    assert "unmatched" in result.output and f"{path}: message 1" in result.output


def test_a_missing_path_is_one_clear_error(cli, tmp_path):
    result = cli("complaints", "import", str(tmp_path / "nothing.mbox"), now=NOW)
    assert result.exit_code == 1
    assert "no such file or folder" in result.output and "Traceback" not in result.output


def test_the_opt_out_is_logged_with_the_report_as_proof(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    cli("complaints", "import", str(write_mbox(tmp_path / "fbl.mbox", arf())), now=NOW)
    assert db(cli).contact(cid)["consent"] == "opted_out"
    [change] = [e for e in db(cli).events_of(cid) if e["name"] == "consent_changed"][-1:]
    assert change["source"] == "complaints import"


def test_parts_are_really_rfc_5965(tmp_path):
    """The fixture itself: a multipart/report with a feedback-report part (guards the tests above)."""
    parsed = mailbox.mbox(str(write_mbox(tmp_path / "x.mbox", arf())))[0]
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "feedback-report"
    kinds = [part.get_content_type() for part in parsed.walk()]
    assert "message/feedback-report" in kinds and "message/rfc822" in kinds
    assert isinstance(parsed, Message)
