"""The fast MIME builder and what compose() puts in a mail: headers, tracking, DKIM."""

from __future__ import annotations

import email
import json
from email import policy

import dkim
import pytest
from dkim_support import dkim_key  # noqa: F401  (fixture)
from test_delivery_support import NOW, add_contacts, make_project, queue

from edumail import message, tokens
from edumail.compose import NOTIFY
from edumail.delivery import deliver
from edumail.errors import InputError
from edumail.message import new_message_id
from edumail.transport.memory import MemoryTransport


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def content(part: email.message.EmailMessage) -> str:
    return part.get_content().replace("\r\n", "\n")


def sent_one(project, **queue_options) -> tuple[email.message.EmailMessage, bytes, dict]:
    memory = MemoryTransport()
    report = deliver(project, now=NOW, transport=memory)
    assert report.sent == 1, report
    (envelope,) = memory.sent
    return parse(envelope.data), envelope.data, project.store().mail(envelope.mail_id)


# --- the builder -----------------------------------------------------------------------


def test_built_message_is_multipart_alternative_with_text_first_and_html_last():
    headers = message.Headers()
    headers.add("From", message.mailbox("Centre", "contact@centre.example"))
    headers.text("Subject", "Été 2026 : les dates")
    data = message.build(headers, text="Bonjour Zoé\n.ligne\n", html="<p>Bonjour Zoé</p>")
    parsed = parse(data)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert content(parts[0]) == "Bonjour Zoé\n.ligne\n"
    assert content(parts[1]).rstrip() == "<p>Bonjour Zoé</p>"
    assert parsed["Subject"] == "Été 2026 : les dates"
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only, as SMTP wants it
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))


def test_long_lines_and_non_ascii_round_trip_through_quoted_printable():
    text = "é" * 300 + " fin   \n" + "=" * 100
    data = message.build(message.Headers(), text=text, html="<p>x</p>")
    assert content(list(parse(data).iter_parts())[0]) == text + "\n"


def test_a_name_with_a_line_break_cannot_add_a_header():
    value = message.mailbox("Bob\r\nBcc: evil@attacker.example", "bob@example.org")
    headers = message.Headers()
    headers.add("To", value)
    headers.text("Subject", "Hi\nBcc: evil@attacker.example")
    parsed = parse(message.build(headers, text="x", html="x"))
    assert parsed["Bcc"] is None
    assert parsed["To"].addresses[0].addr_spec == "bob@example.org"
    assert len(parsed["To"].addresses) == 1


def test_a_name_with_a_comma_is_quoted_and_stays_one_recipient():
    parsed_to = parse(("To: " + message.mailbox("Dupont, Jean", "jean@example.org") + "\r\n\r\n").encode())["To"]
    assert [a.addr_spec for a in parsed_to.addresses] == ["jean@example.org"]
    assert parsed_to.addresses[0].display_name == "Dupont, Jean"


@pytest.mark.parametrize(
    "address",
    [
        "a@b.example, evil@attacker.example",
        "a@b.example\r\nBcc: x@y.example",
        "Name <a@b.example>",
        "a b@c.example",
        "no-at-sign",
        "a@b.example>",
        '"quoted"@b.example',
        "a@@b.example",
    ],
)
def test_an_unsafe_address_is_refused(address):
    with pytest.raises(InputError):
        message.check_address(address)


def test_an_international_domain_is_encoded():
    assert message.check_address("zoe@école.example") == "zoe@xn--cole-9oa.example"


def test_a_header_value_with_a_bare_line_break_is_refused():
    with pytest.raises(ValueError):
        message.Headers().add("X-Test", "a\r\nBcc: b")


def test_message_ids_are_unique_and_on_the_sender_domain():
    ids = {new_message_id("centre.example") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("<") and i.endswith("@centre.example>") for i in ids)


# --- compose: headers ---------------------------------------------------------------------


def test_a_marketing_mail_has_every_header_providers_require(tmp_path):
    project = make_project(tmp_path / "centre")
    (contact_id,) = add_contacts(project, 1)
    (mail_id,) = queue(project, [contact_id])
    parsed, raw, mail = sent_one(project)
    for name in ("From", "To", "Date", "Message-ID", "Subject", "MIME-Version"):
        assert len(parsed.get_all(name)) == 1, name
    assert parsed["From"] == "Centre de formation Exemple <contact@centre.example>"
    assert parsed["To"] == "Zoé Martin <contact0@example.org>"
    assert parsed["Reply-To"] == "inscriptions@centre.example"
    assert parsed["Message-ID"] == mail["message_id"] and parsed["Message-ID"].endswith("@centre.example>")
    assert parsed["Date"].datetime == NOW
    secret = project.secret()
    unsubscribe = tokens.unsubscribe_url("https://mail.centre.example", secret, mail_id)
    token = unsubscribe.rpartition("/")[2]
    assert parsed["List-Unsubscribe"] == (
        f"<{unsubscribe}>, <mailto:contact@centre.example?subject=unsubscribe-{token}>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Auto-Submitted"] is None


def test_links_go_through_the_click_tracker_and_the_pixel_is_added(tmp_path):
    project = make_project(tmp_path / "centre")
    (mail_id,) = queue(project, add_contacts(project, 1))
    parsed, _, mail = sent_one(project)
    html = parsed.get_body(("html",)).get_content()
    secret = project.secret()
    base = "https://mail.centre.example"
    assert html.count(tokens.click_url(base, secret, mail_id, 0)) == 2  # the same URL twice: one index
    assert tokens.click_url(base, secret, mail_id, 1) in html
    assert "https://centre.example/" not in html
    assert 'href="mailto:inscriptions@centre.example"' in html  # not a web link: untouched
    assert tokens.unsubscribe_url(base, secret, mail_id) in html  # the unsubscribe link is not a click
    assert html.count(tokens.open_url(base, secret, mail_id)) == 1
    assert json.loads(mail["links"]) == [
        "https://centre.example/programme?id=7&x=1",
        "https://centre.example/inscription",
    ]


def test_without_tracking_links_are_untouched_and_unsubscribe_is_a_mailto_without_one_click(tmp_path):
    project = make_project(tmp_path / "centre", tracking=False)
    queue(project, add_contacts(project, 1))
    parsed, _, mail = sent_one(project)
    html = parsed.get_body(("html",)).get_content()
    assert 'href="https://centre.example/inscription"' in html and "/o/" not in html
    token = tokens.sign(project.secret(), tokens.Token("u", mail["id"]))
    assert parsed["List-Unsubscribe"] == f"<mailto:contact@centre.example?subject=unsubscribe-{token}>"
    assert parsed["List-Unsubscribe-Post"] is None
    assert f"mailto:contact@centre.example?subject=unsubscribe-{token}" in html
    assert json.loads(mail["links"]) == []


def test_a_marketing_template_without_an_unsubscribe_link_gets_one(tmp_path):
    project = make_project(tmp_path / "centre")
    (mail_id,) = queue(project, add_contacts(project, 1), template="forgetful")
    parsed, _, _ = sent_one(project)
    url = tokens.unsubscribe_url("https://mail.centre.example", project.secret(), mail_id)
    assert url in parsed.get_body(("html",)).get_content()
    assert url in parsed.get_body(("plain",)).get_content()
    assert "Vous recevez cet e-mail du Centre de formation Exemple." in parsed.get_body(("plain",)).get_content()
    assert f"Se désinscrire\u00a0: {url}" in parsed.get_body(("plain",)).get_content()


def test_a_service_mail_is_marked_auto_submitted_without_one_click(tmp_path):
    project = make_project(tmp_path / "centre")
    queue(project, add_contacts(project, 1), purpose="service", template="forgetful")
    parsed, _, _ = sent_one(project)
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["List-Unsubscribe-Post"] is None and parsed["Precedence"] is None


def test_contact_data_cannot_inject_a_header(tmp_path):
    project = make_project(tmp_path / "centre")
    ids = add_contacts(project, 1, first_name="Eve\r\nBcc: spy@attacker.example", last_name="Dupont, Jean")
    queue(project, ids)
    parsed, raw, _ = sent_one(project)
    header_block = raw.split(b"\r\n\r\n")[0]
    assert parsed["Bcc"] is None and b"\r\nBcc:" not in header_block
    assert [a.addr_spec for a in parsed["To"].addresses] == ["contact0@example.org"]
    assert "\n" not in parsed["Subject"]


def test_a_contact_address_with_a_comma_fails_that_mail_and_sends_nothing(tmp_path):
    project = make_project(tmp_path / "centre")
    store = project.store()
    bad = store.insert_contact(
        {"email": "a@b.example,evil@attacker.example", "consent": "opted_in", "consent_basis": "opt_in"},
        "2026-03-01T00:00:00.000000Z",
    )
    queue(project, [bad])
    memory = MemoryTransport()
    report = deliver(project, now=NOW, transport=memory)
    assert report.failed == 1 and memory.sent == []


def test_a_staff_notification_is_a_plain_internal_alert(tmp_path):
    project = make_project(tmp_path / "centre")
    store = project.store()
    store.enqueue_mail(
        message_id=new_message_id("centre.example"),
        template=NOTIFY,
        purpose="service",
        not_before="2026-03-02T09:00:00.000000Z",
        now="2026-03-02T09:00:00.000000Z",
        to_email="staff@centre.example",
        context={"subject": "Prospect chaud : zoe@example.org", "body": "Zoé a cliqué 3 fois.\n<b>x</b>"},
    )
    parsed, _, _ = sent_one(project)
    assert parsed["To"] == "staff@centre.example"
    assert parsed["Subject"] == "Prospect chaud : zoe@example.org"
    assert parsed["Auto-Submitted"] == "auto-generated" and parsed["List-Unsubscribe"] is None
    assert "Zoé a cliqué 3 fois." in parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "&lt;b&gt;" in html and "/o/" not in html


# --- DKIM --------------------------------------------------------------------------------


def test_dkim_signature_verifies_and_covers_the_one_click_headers(tmp_path, dkim_key):  # noqa: F811
    key_path, record = dkim_key
    extra = f"dkim:\n  selector: edu2026\n  domain: centre.example\n  private_key_file: {key_path}\n"
    project = make_project(tmp_path / "centre", extra=extra)
    queue(project, add_contacts(project, 1))
    parsed, raw, _ = sent_one(project)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"edu2026._domainkey.centre.example."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    signed = {h.strip().lower() for h in parsed["DKIM-Signature"].split("h=")[1].split(";")[0].split(":")}
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nope")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_missing_dkim_key_is_a_clear_error_before_anything_is_sent(tmp_path):
    from edumail.errors import ConfigError

    extra = "dkim:\n  selector: s\n  domain: centre.example\n  private_key_file: keys/missing.pem\n"
    project = make_project(tmp_path / "centre", extra=extra)
    queue(project, add_contacts(project, 1))
    with pytest.raises(ConfigError, match="dkim.private_key_file"):
        deliver(project, now=NOW, transport=MemoryTransport())
    assert project.store().outbox_counts() == {"queued": 1}


def test_templates_get_the_double_opt_in_confirmation_link(tmp_path):
    project = make_project(tmp_path / "centre")
    (project.root / "templates" / "confirm.html").write_text(
        '---\nsubject: Confirmez\n---\n<p><a href="{{ confirm_url }}">Je confirme</a></p>\n', encoding="utf-8"
    )
    (contact_id,) = add_contacts(project, 1)
    queue(project, [contact_id], purpose="service", template="confirm")
    parsed, _, _ = sent_one(project)
    url = tokens.confirm_url("https://mail.centre.example", project.secret(), contact_id)
    assert url in parsed.get_body(("html",)).get_content()
