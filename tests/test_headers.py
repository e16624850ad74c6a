# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Header hygiene: RFC 5322 folding, Date at hand-over, DKIM oversigning (issue 13, points 16-18)."""

from __future__ import annotations

import base64
import email
import re
from email import policy
from email.header import decode_header, make_header
from email.utils import parseaddr, parsedate_to_datetime

import dkim
from dkim_support import dkim_key  # noqa: F401  (fixture)
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import NOW, add_contacts, make_project, queue

from edumail import message
from edumail.delivery import deliver
from edumail.transport.memory import MemoryTransport


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def header_block(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def raw_header(data: bytes, name: str) -> str:
    """The header as written, folds included."""
    text = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    match = re.search(rf"^{name}: .*?(?=\r\n[^ \t])", text + "\r\nX", re.MULTILINE | re.DOTALL)
    assert match, name
    return match.group(0)


def display_name(data: bytes) -> tuple[str, str]:
    """The To header's name and address, decoded as RFC 2047 says.

    (Python's header registry adds a space between adjacent encoded words in a
    phrase, against RFC 2047 6.2, so it is not used for encoded names.)
    """
    raw = email.message_from_bytes(data)["To"]
    return parseaddr(str(make_header(decode_header(raw))))


def decoded_words(value: str) -> list[str]:
    return [base64.b64decode(m).decode("utf-8") for m in re.findall(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=", value)]


# --- 17: folding ---------------------------------------------------------------------


def test_a_990_character_ascii_name_is_folded_and_the_server_accepts_the_mail(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml())
    name = " ".join(["Jean-Baptiste"] * 70)[:990].strip()
    (contact_id,) = add_contacts(project, 1, first_name=name, last_name="")
    queue(project, [contact_id])
    report = deliver(project, now=NOW)
    assert report.sent == 1, report.errors
    (received,) = smtp_server.messages
    assert all(len(line) <= 78 for line in header_block(received.data))
    parsed = parse(received.data)
    assert parsed["To"].addresses[0].display_name == name
    assert parsed["To"].addresses[0].addr_spec == "contact0@example.org"


def test_a_long_ascii_subject_folds_at_spaces_and_reads_back_whole():
    subject = " ".join(f"mot{n}" for n in range(120))
    headers = message.Headers()
    headers.text("Subject", subject)
    data = message.build(headers, text="x", html="<p>x</p>")
    assert all(len(line) <= 78 for line in header_block(data))
    assert parse(data)["Subject"] == subject
    assert re.search(r"mot\d+\r\n mot", raw_header(data, "Subject"))


def test_encoded_words_stay_within_75_characters_and_never_split_a_word():
    subject = " ".join(["Réunion", "d'équipe", "à", "Besançon", "pour", "l'été"] * 12)
    headers = message.Headers()
    headers.text("Subject", subject)
    headers.add("To", message.mailbox("Hélène " * 20, "helene@example.org"))
    data = message.build(headers, text="x", html="<p>x</p>")
    assert all(len(line) <= 78 for line in header_block(data))
    raw = raw_header(data, "Subject")
    assert all(len(word) <= 75 for word in re.findall(r"=\?[^ ]*\?=", raw))
    pieces = decoded_words(raw)
    assert len(pieces) > 1
    assert all(piece.endswith(" ") for piece in pieces[:-1])  # each encoded word ends between two words
    parsed = parse(data)
    assert parsed["Subject"] == subject
    assert display_name(data) == (("Hélène " * 20).strip(), "helene@example.org")


def test_a_non_ascii_word_longer_than_a_line_is_split_between_characters_only():
    word = "é" * 120
    headers = message.Headers()
    headers.text("Subject", word)
    data = message.build(headers, text="x", html="<p>x</p>")
    assert all(len(line) <= 78 for line in header_block(data))
    assert parse(data)["Subject"] == word


def test_an_ascii_word_longer_than_a_line_is_encoded_instead_of_overflowing():
    word = "x" * 990
    headers = message.Headers()
    headers.text("Subject", f"Bonjour {word}")
    headers.add("To", message.mailbox(word, "a@example.org"))
    data = message.build(headers, text="x", html="<p>x</p>")
    assert all(len(line) <= 78 for line in header_block(data))
    parsed = parse(data)
    assert parsed["Subject"] == f"Bonjour {word}"
    assert display_name(data) == (word, "a@example.org")


def test_a_quoted_display_name_still_folds_and_stays_one_recipient():
    name = "Dupont, " + " ".join(["Jean-Baptiste"] * 10)
    value = message.mailbox(name, "jb@example.org")
    headers = message.Headers()
    headers.add("To", value)
    data = message.build(headers, text="x", html="<p>x</p>")
    assert all(len(line) <= 78 for line in header_block(data))
    (address,) = parse(data)["To"].addresses
    assert (address.display_name, address.addr_spec) == (name, "jb@example.org")


# --- 16: Date at hand-over ------------------------------------------------------------


def test_each_mail_is_dated_when_it_is_handed_to_the_server_not_when_the_run_started(tmp_path, smtp_server):
    project = make_project(tmp_path / "centre", extra=smtp_server.settings_yaml(concurrency=1))
    queue(project, add_contacts(project, 2))
    smtp_server.delay = 1.2  # a slow server: the second mail is handed over more than a second later
    report = deliver(project, now=NOW)
    assert report.sent == 2
    first, second = (parsedate_to_datetime(m["Date"]) for m in smtp_server.parsed())
    assert first >= NOW
    assert (second - first).total_seconds() >= 1


# --- 18: DKIM -----------------------------------------------------------------------


def test_dkim_oversigns_from_to_and_subject_with_relaxed_canonicalisation(tmp_path, dkim_key):
    key_path, record = dkim_key
    extra = f"dkim:\n  selector: edu2026\n  domain: centre.example\n  private_key_file: {key_path}\n"
    project = make_project(tmp_path / "centre", extra=extra)
    queue(project, add_contacts(project, 1))
    memory = MemoryTransport()
    deliver(project, now=NOW, transport=memory)
    (envelope,) = memory.sent
    raw = envelope.data

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    signature = " ".join(parse(raw)["DKIM-Signature"].split())
    assert "c=relaxed/relaxed" in signature
    signed = [h.strip().lower() for h in signature.split("h=")[1].split(";")[0].split(":")]
    for name in ("from", "to", "subject"):
        assert signed.count(name) == 2, signed
    assert not dkim.verify(b"Subject: Gagnez un iPhone\r\n" + raw, dnsfunc=dns)
    assert not dkim.verify(b"From: Banque <noreply@banque.example>\r\n" + raw, dnsfunc=dns)
    # relaxed: re-folding or re-spacing a header on the way does not break the signature
    respaced = raw.replace(b"\r\nMIME-Version: 1.0", b"\r\nMIME-Version:   1.0")
    assert dkim.verify(respaced, dnsfunc=dns)
