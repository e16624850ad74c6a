"""`edumail inbox import`: replies found in an mbox file or a Maildir."""

from __future__ import annotations

import mailbox
from pathlib import Path

from mailbox_support import add_contact, db, events_named, sent_mail

NOW = "2026-11-20T10:00:00+00:00"


def reply(
    *,
    in_reply_to: str | None = "<mail-1@centre.example>",
    references: str | None = None,
    message_id: str = "<reply-1@example.fr>",
    subject: str = "Re: Votre inscription",
    extra: str = "",
) -> bytes:
    headers = f"From: Marie <marie@example.fr>\nTo: inscriptions@centre.example\nSubject: {subject}\n"
    headers += f"Date: Thu, 19 Nov 2026 15:30:00 +0100\nMessage-ID: {message_id}\n"
    if in_reply_to:
        headers += f"In-Reply-To: {in_reply_to}\n"
    if references:
        headers += f"References: {references}\n"
    return (headers + extra + "\nBonjour, oui je suis intéressée.\n").encode()


def write_mbox(path: Path, *messages: bytes) -> Path:
    box = mailbox.mbox(str(path))
    for message in messages:
        box.add(message)
    box.close()
    return path


def write_maildir(path: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(str(path), create=True)
    for message in messages:
        box.add(message)
    return path


def replied(cli, contact_id: int) -> list[dict]:
    return events_named(cli, contact_id, "replied")


def test_reply_in_maildir_records_replied_with_subject_and_message_id(cli, tmp_path):
    cid = add_contact(cli)
    mail_id = sent_mail(cli, cid)
    result = cli("inbox", "import", str(write_maildir(tmp_path / "Inbox", reply())), now=NOW)
    assert result.exit_code == 0, result.output
    assert "1 replies recorded" in result.output
    [event] = replied(cli, cid)
    assert event["mail_id"] == mail_id
    assert event["data"]["subject"] == "Re: Votre inscription"
    assert event["data"]["message_id"] == "reply-1@example.fr"
    assert event["at"].isoformat().startswith("2026-11-19T14:30:00")


def test_reply_in_mbox_is_recorded(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    cli("inbox", "import", str(write_mbox(tmp_path / "in.mbox", reply())), now=NOW)
    assert len(replied(cli, cid)) == 1


def test_reply_matched_through_references(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    message = reply(in_reply_to="<their-own@example.fr>", references="<older@x> <mail-1@centre.example>")
    cli("inbox", "import", str(write_mbox(tmp_path / "in.mbox", message)), now=NOW)
    assert len(replied(cli, cid)) == 1


def test_reply_is_a_sign_of_life(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    cli("inbox", "import", str(write_mbox(tmp_path / "in.mbox", reply())), now=NOW)
    assert db(cli).contact(cid)["last_inbound_at"].isoformat().startswith("2026-11-19T14:30")


def test_encoded_subject_is_decoded(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    message = reply(subject="=?utf-8?q?Re=3A_Votre_s=C3=A9ance?=")
    cli("inbox", "import", str(write_mbox(tmp_path / "in.mbox", message)), now=NOW)
    assert replied(cli, cid)[0]["data"]["subject"] == "Re: Votre séance"


def test_reimport_records_each_reply_once(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    path = write_maildir(tmp_path / "Inbox", reply())
    cli("inbox", "import", str(path), now=NOW)
    result = cli("inbox", "import", str(path), now=NOW)
    assert "1 already imported" in result.output
    assert len(replied(cli, cid)) == 1


def test_message_not_answering_our_mails_is_counted_not_recorded(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    path = write_mbox(tmp_path / "in.mbox", reply(in_reply_to="<someone-else@example.org>"), reply(in_reply_to=None))
    result = cli("inbox", "import", str(path), now=NOW)
    assert result.exit_code == 0
    assert "2 not replies to our mails" in result.output
    assert replied(cli, cid) == []


def test_out_of_office_is_not_a_reply(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    message = reply(extra="Auto-Submitted: auto-replied\n", subject="Absence du bureau")
    result = cli("inbox", "import", str(write_mbox(tmp_path / "in.mbox", message)), now=NOW)
    assert "1 automatic answers ignored" in result.output
    assert replied(cli, cid) == []


def test_reply_to_a_forgotten_contact_is_not_recorded(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    cli("inbox", "import", str(write_mbox(tmp_path / "in.mbox", reply())), now=NOW)
    assert replied(cli, cid) == []


def test_reply_time_in_the_future_is_clamped_to_now(cli, tmp_path):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    cli("inbox", "import", str(write_mbox(tmp_path / "in.mbox", reply())), now="2026-11-19T08:00:00+00:00")
    assert replied(cli, cid)[0]["at"].isoformat().startswith("2026-11-19T08:00:00")


def test_malformed_mailbox_stops_with_file_and_message_number(cli, tmp_path):
    path = write_mbox(tmp_path / "in.mbox", reply(), b"\n\nno headers at all\n")
    result = cli("inbox", "import", str(path), now=NOW)
    assert result.exit_code == 1
    assert "in.mbox: message 2: malformed message" in result.output
    assert "Traceback" not in result.output


def test_missing_mailbox_is_a_clear_error(cli, tmp_path):
    result = cli("inbox", "import", str(tmp_path / "nothing"), now=NOW)
    assert result.exit_code == 1 and "no such file or folder" in result.output
