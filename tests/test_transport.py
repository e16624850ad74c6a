# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Transports: the file outbox, the SMTP connection's reuse, and what each reply code means."""

from __future__ import annotations

from email import message_from_bytes

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import NOW, add_contacts, make_project, queue

from edumail import transport
from edumail.delivery import deliver
from edumail.settings import Smtp
from edumail.transport import Envelope, SendFailure, classify
from edumail.transport.file import FileTransport
from edumail.transport.smtp import SmtpTransport


def envelope(n: int = 0, message_id: str = "<abc123@centre.example>") -> Envelope:
    data = f"From: a@centre.example\r\nTo: b{n}@example.org\r\nMessage-ID: {message_id}\r\n\r\nhi {n}\r\n".encode()
    return Envelope("a@centre.example", f"b{n}@example.org", data, message_id)


@pytest.mark.parametrize(
    ("code", "text", "stage", "kind"),
    [
        (451, "4.3.0 try later", "data", transport.TEMPORARY),
        (452, "4.2.2 mailbox full", "rcpt", transport.TEMPORARY),
        (421, "4.7.0 too busy", "mail", transport.TEMPORARY),
        (550, "5.1.1 no such user", "rcpt", transport.BOUNCE),
        (550, "5.1.10 null MX", "rcpt", transport.BOUNCE),
        (550, "5.2.1 mailbox disabled", "rcpt", transport.BOUNCE),
        (554, "5.7.1 blocked", "data", transport.POLICY),
        (550, "5.7.515 access denied", "rcpt", transport.RECIPIENT_POLICY),  # this recipient alone (SPEC 19)
        (553, "sender not allowed", "mail", transport.POLICY),
        (535, "5.7.8 bad credentials", "mail", transport.AUTH),
        (552, "5.3.4 too big", "data", transport.PERMANENT),
        (550, "no such user here", "rcpt", transport.PERMANENT),
    ],
)
def test_reply_codes_are_classified_as_rfc_3463_says(code, text, stage, kind):
    assert classify(code, text, stage=stage) == kind


def test_the_file_transport_writes_eml_files_in_outbox_new(tmp_path):
    outbox = tmp_path / "outbox"
    connection = FileTransport(outbox).connect()
    connection.send(envelope(1, "<first@centre.example>"))
    connection.send(envelope(2, "<second@centre.example>"))
    files = sorted(p.name for p in (outbox / "new").iterdir())
    assert files == ["first.eml", "second.eml"]
    assert message_from_bytes((outbox / "new" / "first.eml").read_bytes())["To"] == "b1@example.org"
    assert list((outbox / "tmp").iterdir()) == []


def test_the_file_transport_rewrites_the_same_mail_instead_of_duplicating_it(tmp_path):
    connection = FileTransport(tmp_path / "outbox").connect()
    connection.send(envelope(1))
    connection.send(envelope(1))
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1


def test_the_default_transport_is_the_file_outbox(tmp_path):
    project = make_project(tmp_path / "centre")
    queue(project, add_contacts(project, 3))
    report = deliver(project, now=NOW)
    assert report.sent == 3 and "outbox" in report.transport
    assert len(list((project.root / "outbox" / "new").glob("*.eml"))) == 3


def test_one_smtp_connection_carries_many_mails(smtp_server):  # noqa: F811
    connection = SmtpTransport(Smtp(host=smtp_server.host, port=smtp_server.port, security="none")).connect()
    for n in range(5):
        connection.send(envelope(n, f"<m{n}@centre.example>"))
    connection.close()
    assert smtp_server.connections == 1 and len(smtp_server.messages) == 5


def test_lines_that_start_with_a_dot_arrive_whole(smtp_server):  # noqa: F811
    """Dot-stuffing (RFC 5321 4.5.2): a line that is a lone dot must not end the message early."""
    body = b"first\r\n.\r\n.hidden\r\nlast\r\n"
    lines = b"From: a@centre.example\r\nTo: b0@example.org\r\nMessage-ID: <dot@centre.example>\r\n\r\n" + body
    connection = SmtpTransport(Smtp(host=smtp_server.host, port=smtp_server.port, security="none")).connect()
    connection.send(Envelope("a@centre.example", "b0@example.org", lines, "<dot@centre.example>"))
    connection.send(envelope(1))
    connection.close()
    assert len(smtp_server.messages) == 2
    assert smtp_server.messages[0].data.replace(b"\r\n", b"\n").endswith(b"first\n.\n.hidden\nlast\n")


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_recipient_leaves_the_connection_usable(smtp_server, pipelining):  # noqa: F811
    smtp_server.pipelining = pipelining
    smtp_server.refuse("b1@example.org", "550 5.1.1 no such user")
    connection = SmtpTransport(Smtp(host=smtp_server.host, port=smtp_server.port, security="none")).connect()
    connection.send(envelope(0))
    with pytest.raises(SendFailure) as failure:
        connection.send(envelope(1))
    assert failure.value.kind == transport.BOUNCE and failure.value.status == "5.1.1"
    assert "550 5.1.1 no such user" in str(failure.value) and "b1@example.org" in str(failure.value)
    assert connection.client is not None and connection.client.has_extn("pipelining") == pipelining
    connection.send(envelope(2))
    connection.close()
    assert smtp_server.connections == 1 and smtp_server.recipients() == ["b0@example.org", "b2@example.org"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_sender_is_the_relays_and_the_next_mail_goes_on_the_same_connection(
    smtp_server, pipelining  # noqa: F811
):
    """With PIPELINING the refused MAIL FROM's RCPT TO and DATA are answered too: read, then RSET."""
    smtp_server.pipelining = pipelining
    smtp_server.reply_to_mail("451 4.3.0 try later", times=1, after=1)
    connection = SmtpTransport(Smtp(host=smtp_server.host, port=smtp_server.port, security="none")).connect()
    connection.send(envelope(0))
    with pytest.raises(SendFailure) as failure:
        connection.send(envelope(1))
    assert failure.value.kind == transport.TEMPORARY and failure.value.stage == "mail"
    connection.send(envelope(2))
    connection.close()
    assert smtp_server.connections == 1 and smtp_server.recipients() == ["b0@example.org", "b2@example.org"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_after_a_421_the_next_mail_opens_a_new_connection(smtp_server, pipelining):  # noqa: F811
    smtp_server.pipelining = pipelining
    smtp_server.refuse("b1@example.org", "421 4.7.0 closing", times=1)
    connection = SmtpTransport(Smtp(host=smtp_server.host, port=smtp_server.port, security="none")).connect()
    connection.send(envelope(0))
    with pytest.raises(SendFailure) as failure:
        connection.send(envelope(1))
    assert failure.value.kind == transport.TEMPORARY
    connection.send(envelope(2))
    connection.close()
    assert smtp_server.connections == 2


def test_starttls_required_but_not_offered_is_an_auth_stop(smtp_server):  # noqa: F811
    connection = SmtpTransport(Smtp(host=smtp_server.host, port=smtp_server.port, security="starttls")).connect()
    with pytest.raises(SendFailure) as failure:
        connection.send(envelope(0))
    assert failure.value.kind == transport.AUTH and "STARTTLS" in str(failure.value)


def test_a_missing_password_says_which_variable_to_set(smtp_server, monkeypatch):  # noqa: F811
    monkeypatch.delenv("EDUMAIL_SMTP_PASSWORD", raising=False)
    config = Smtp(host=smtp_server.host, port=smtp_server.port, security="none", username="contact@centre.example")
    with pytest.raises(SendFailure) as failure:
        SmtpTransport(config).connect().send(envelope(0))
    assert failure.value.kind == transport.AUTH and "EDUMAIL_SMTP_PASSWORD" in str(failure.value)


def test_the_transport_never_shows_its_password():
    config = Smtp(host="smtp.example.org", username="u")
    assert "hunter2" not in repr(SmtpTransport(config, password="hunter2"))
