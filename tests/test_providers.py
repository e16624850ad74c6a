# ruff: noqa: F811  (the provider_server fixture is imported, then requested by name)
"""Provider transports (SPEC 18) against a local stand-in of each API that checks the documented request."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from provider_server import ProviderServer, Reply, provider_server  # noqa: F401  (fixture)
from test_delivery_support import NOW, add_contacts, make_project, queue, states

from edumail import transport
from edumail.delivery import BACKOFF, deliver
from edumail.transport import AUTH, BOUNCE, POLICY, TEMPORARY, Envelope, SendFailure

KEY = "xkeysib-test-0123456789abcdef"
SECRET = "mj-secret-fedcba9876543210"


def provider_project(tmp_path: Path, server: ProviderServer, name: str, monkeypatch, **extra: str):
    monkeypatch.setenv("PROVIDER_KEY", KEY)
    monkeypatch.setenv("PROVIDER_SECRET", SECRET)
    lines = "".join(f"  {k}: {v}\n" for k, v in extra.items())
    settings = (
        f"transport: {name}\nprovider:\n  key_env: PROVIDER_KEY\n  secret_env: PROVIDER_SECRET\n"
        f"  base_url: {server.url}\n  webhook_secret_env: PROVIDER_WEBHOOK\n{lines}"
    )
    return make_project(tmp_path / "centre", extra=settings)


def one_mail(project) -> int:
    return queue(project, add_contacts(project, 1))[0]


def envelope_with_attachment(mail_id: int = 7) -> Envelope:
    msg = EmailMessage()
    msg["From"] = "Centre de formation Exemple <contact@centre.example>"
    msg["To"] = "zoe@example.org"
    msg["Reply-To"] = "inscriptions@centre.example"
    msg["Subject"] = "Votre convocation"
    msg["Message-ID"] = "<abc.123@centre.example>"
    msg["List-Unsubscribe"] = "<https://mail.centre.example/u/TOKEN>, <mailto:desinscription@centre.example>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Bonjour Zoé")
    msg.add_alternative("<p>Bonjour Zoé</p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 convocation", maintype="application", subtype="pdf", filename="convocation.pdf")
    data = msg.as_bytes(policy=policy.SMTP)
    return Envelope("contact@centre.example", "zoe@example.org", data, "<abc.123@centre.example>", mail_id)


def send_one(project, envelope: Envelope) -> None:
    connection = transport.make(project).connect()
    try:
        connection.send(envelope)
    finally:
        connection.close()


# --- Brevo: POST /v3/smtp/email, api-key header -------------------------------------------


def test_brevo_gets_the_documented_request_with_an_idempotency_key_from_the_outbox(
    tmp_path, provider_server, monkeypatch
):
    provider_server.ok = Reply(201, {"messageId": "<201798300811.5787683@smtp-relay.mailin.fr>"})
    project = provider_project(tmp_path, provider_server, "brevo", monkeypatch)
    mail_id = one_mail(project)
    report = deliver(project, now=NOW)
    assert report.sent == 1, report
    [seen] = provider_server.seen
    assert (seen.method, seen.path, seen.headers["api-key"]) == ("POST", "/v3/smtp/email", KEY)
    body = seen.json
    assert body["sender"] == {"name": "Centre de formation Exemple", "email": "contact@centre.example"}
    assert body["to"] == [{"email": "contact0@example.org"}]
    assert body["subject"] == "Zoé, votre session approche"
    assert "Bonjour Zoé Martin" in body["htmlContent"] and "Bonjour Zoé Martin" in body["textContent"]
    assert body["replyTo"] == {"email": "inscriptions@centre.example"}
    headers = body["headers"]
    uuid.UUID(headers["idempotencyKey"])  # Brevo wants a UUID
    assert headers["X-Mailin-custom"] == f"edumail-{mail_id}"
    assert headers["List-Unsubscribe"].startswith("<https://mail.centre.example/u/")
    assert headers["Message-ID"] == project.store().mail(mail_id)["message_id"]


def test_attachments_and_list_unsubscribe_are_carried_by_each_json_api(tmp_path, provider_server, monkeypatch):
    project = provider_project(tmp_path, provider_server, "brevo", monkeypatch)
    send_one(project, envelope_with_attachment())
    brevo = provider_server.seen[-1].json
    assert brevo["attachment"] == [
        {"name": "convocation.pdf", "content": base64.b64encode(b"%PDF-1.4 convocation").decode()}
    ]
    assert brevo["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for name in ("mailjet", "postmark"):
        other = provider_project(tmp_path / name, provider_server, name, monkeypatch)
        if name == "mailjet":
            provider_server.ok = Reply(200, {"Messages": [{"Status": "success", "To": [{"Email": "zoe@example.org"}]}]})
        send_one(other, envelope_with_attachment())
        body = provider_server.seen[-1].json
        if name == "mailjet":
            [message] = body["Messages"]
            assert message["Attachments"][0]["Filename"] == "convocation.pdf"
            assert message["Attachments"][0]["ContentType"] == "application/pdf"
            assert message["Headers"]["List-Unsubscribe"].endswith("<mailto:desinscription@centre.example>")
            assert message["CustomID"] == "edumail-7"
        else:
            assert body["Attachments"][0] == {
                "Name": "convocation.pdf",
                "Content": base64.b64encode(b"%PDF-1.4 convocation").decode(),
                "ContentType": "application/pdf",
            }
            assert {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"} in body["Headers"]
            assert body["Metadata"] == {"edumail_id": "edumail-7"}


def test_a_short_retry_after_is_waited_out_and_the_retry_carries_the_same_key(tmp_path, provider_server, monkeypatch):
    provider_server.script = [Reply(429, {"code": "too_many_requests"}, {"Retry-After": "0"})]
    provider_server.ok = Reply(201, {"messageId": "<1@relay>"})
    project = provider_project(tmp_path, provider_server, "brevo", monkeypatch)
    one_mail(project)
    assert deliver(project, now=NOW).sent == 1
    first, second = provider_server.seen
    assert first.json["headers"]["idempotencyKey"] == second.json["headers"]["idempotencyKey"]


def test_a_long_retry_after_defers_the_mail_at_least_that_long(tmp_path, provider_server, monkeypatch):
    provider_server.ok = Reply(429, {"code": "too_many_requests"}, {"Retry-After": "7200"})
    project = provider_project(tmp_path, provider_server, "brevo", monkeypatch)
    mail_id = one_mail(project)
    report = deliver(project, now=NOW)
    assert report.sent == 0 and states(project).get("queued") == 1
    assert len(provider_server.seen) == 1
    not_before = project.store().mail(mail_id)["not_before"]
    assert not_before >= NOW + timedelta(seconds=7200) > NOW + BACKOFF[0]


def test_a_5xx_is_temporary_and_the_mail_stays_queued(tmp_path, provider_server, monkeypatch):
    provider_server.ok = Reply(503, {"message": "Service Unavailable"})
    project = provider_project(tmp_path, provider_server, "brevo", monkeypatch)
    one_mail(project)
    report = deliver(project, now=NOW)
    assert report.sent == 0 and report.stopped is None and states(project).get("queued") == 1


def test_a_refused_key_stops_delivery_naming_the_variable_never_the_key(tmp_path, provider_server, monkeypatch):
    provider_server.authorized = lambda headers: headers.get("api-key") == "another key"
    provider_server.unauthorized = Reply(401, {"code": "unauthorized", "message": "Key not found"})
    project = provider_project(tmp_path, provider_server, "brevo", monkeypatch)
    queue(project, add_contacts(project, 3))
    report = deliver(project, now=NOW)
    assert report.sent == 0 and report.stopped and "PROVIDER_KEY" in report.stopped
    assert KEY not in report.stopped and states(project).get("queued") == 3


def test_brevo_unverified_sender_is_a_policy_stop(tmp_path, provider_server, monkeypatch):
    provider_server.ok = Reply(400, {"code": "invalid_parameter", "message": "sender is not valid"})
    project = provider_project(tmp_path, provider_server, "brevo", monkeypatch)
    with pytest.raises(SendFailure) as caught:
        send_one(project, envelope_with_attachment())
    assert caught.value.kind == POLICY and "Senders" in str(caught.value)


def test_an_unset_key_variable_says_so(tmp_path, provider_server, monkeypatch):
    project = provider_project(tmp_path, provider_server, "postmark", monkeypatch)
    monkeypatch.delenv("PROVIDER_KEY")
    with pytest.raises(SendFailure) as caught:
        send_one(project, envelope_with_attachment())
    assert caught.value.kind == AUTH and "PROVIDER_KEY is not set" in str(caught.value)
    assert provider_server.seen == []


# --- Mailjet: POST /v3.1/send, basic auth key:secret --------------------------------------


def test_mailjet_gets_basic_auth_and_a_custom_id(tmp_path, provider_server, monkeypatch):
    expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    provider_server.authorized = lambda headers: headers.get("authorization") == expected
    provider_server.ok = Reply(200, {"Messages": [{"Status": "success", "CustomID": "", "To": []}]})
    project = provider_project(tmp_path, provider_server, "mailjet", monkeypatch)
    mail_id = one_mail(project)
    assert deliver(project, now=NOW).sent == 1
    [seen] = provider_server.seen
    assert (seen.method, seen.path) == ("POST", "/v3.1/send")
    [message] = seen.json["Messages"]
    assert message["From"] == {"Email": "contact@centre.example", "Name": "Centre de formation Exemple"}
    assert message["To"] == [{"Email": "contact0@example.org"}]
    assert message["CustomID"] == f"edumail-{mail_id}"
    assert "Bonjour" in message["HTMLPart"] and "Bonjour" in message["TextPart"]


MAILJET_INVALID_TO = {
    "Messages": [
        {
            "Status": "error",
            "Errors": [
                {
                    "ErrorIdentifier": "f987008f-251a-4dff-8ffc-40f1583ad7bc",
                    "ErrorCode": "mj-0013",
                    "StatusCode": 400,
                    "ErrorMessage": '"contact0@example" is an invalid email address.',
                    "ErrorRelatedTo": ["To[0].Email"],
                }
            ],
        }
    ]
}


def test_mailjet_invalid_recipient_is_a_bounce(tmp_path, provider_server, monkeypatch):
    provider_server.ok = Reply(400, MAILJET_INVALID_TO)
    project = provider_project(tmp_path, provider_server, "mailjet", monkeypatch)
    one_mail(project)
    report = deliver(project, now=NOW)
    assert report.bounced == 1 and report.stopped is None
    with pytest.raises(SendFailure) as caught:
        send_one(project, envelope_with_attachment())
    assert caught.value.kind == BOUNCE and "mj-0013" in str(caught.value)


# --- Postmark: POST /email, X-Postmark-Server-Token -------------------------------------


def test_postmark_gets_its_token_header_and_metadata(tmp_path, provider_server, monkeypatch):
    provider_server.authorized = lambda headers: headers.get("x-postmark-server-token") == KEY
    provider_server.ok = Reply(
        200,
        {"To": "x", "SubmittedAt": "2026-03-02T09:00:00Z", "MessageID": "b7bc2f4a", "ErrorCode": 0, "Message": "OK"},
    )
    project = provider_project(tmp_path, provider_server, "postmark", monkeypatch)
    mail_id = one_mail(project)
    assert deliver(project, now=NOW).sent == 1
    body = provider_server.seen[0].json
    assert provider_server.seen[0].path == "/email"
    assert body["From"] == "Centre de formation Exemple <contact@centre.example>"
    assert body["To"] == "contact0@example.org" and body["Metadata"] == {"edumail_id": f"edumail-{mail_id}"}
    assert body["MessageStream"] == "outbound"


@pytest.mark.parametrize(
    "error_code, kind",
    [(406, BOUNCE), (400, POLICY), (401, POLICY), (412, POLICY), (10, AUTH)],
)
def test_postmark_error_codes_map_to_outcomes(tmp_path, provider_server, monkeypatch, error_code, kind):
    status = 401 if error_code == 10 else 422
    provider_server.ok = Reply(status, {"ErrorCode": error_code, "Message": "documented message"})
    project = provider_project(tmp_path, provider_server, "postmark", monkeypatch)
    with pytest.raises(SendFailure) as caught:
        send_one(project, envelope_with_attachment())
    assert caught.value.kind == kind
    assert KEY not in str(caught.value)


def test_postmark_rate_limit_without_retry_after_is_temporary(tmp_path, provider_server, monkeypatch):
    provider_server.ok = Reply(429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, {"Retry-After": "120"})
    project = provider_project(tmp_path, provider_server, "postmark", monkeypatch)
    with pytest.raises(SendFailure) as caught:
        send_one(project, envelope_with_attachment())
    assert caught.value.kind == TEMPORARY and caught.value.retry_after == 120


# --- Amazon SES v2 through boto3: POST /v2/email/outbound-emails, Raw content ----------------


def test_ses_sends_the_raw_mime_signed_by_boto3(tmp_path, provider_server, monkeypatch):
    pytest.importorskip("boto3")
    provider_server.authorized = lambda h: h.get("authorization", "").startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")
    provider_server.ok = Reply(200, {"MessageId": "010f0172-0000-4000-8000-000000000000"})
    project = provider_project(tmp_path, provider_server, "ses", monkeypatch, region="eu-west-3")
    mail_id = one_mail(project)
    assert deliver(project, now=NOW).sent == 1
    [seen] = provider_server.seen
    assert (seen.method, seen.path) == ("POST", "/v2/email/outbound-emails")
    body = seen.json
    raw = BytesParser(policy=policy.default).parsebytes(base64.b64decode(body["Content"]["Raw"]["Data"]))
    assert raw["Message-ID"] == project.store().mail(mail_id)["message_id"]
    assert raw["List-Unsubscribe"] and body["Destination"] == {"ToAddresses": ["contact0@example.org"]}
    assert body["EmailTags"] == [{"Name": "edumail_id", "Value": f"edumail-{mail_id}"}]
    assert "/eu-west-3/ses/" in seen.headers["authorization"]


def test_ses_rejections_map_to_outcomes(tmp_path, provider_server, monkeypatch):
    pytest.importorskip("boto3")
    provider_server.ok = Reply(
        400,
        {"message": "Email address is not verified. The following identities failed the check: contact@centre.example"},
        {"x-amzn-ErrorType": "MessageRejected"},
    )
    project = provider_project(tmp_path, provider_server, "ses", monkeypatch)
    one_mail(project)
    report = deliver(project, now=NOW)
    assert report.stopped and "verify the sender identity" in report.stopped
    assert states(project).get("queued") == 1
    assert json.dumps(report.stopped).find(SECRET) == -1


def test_an_unset_key_during_delivery_stops_the_run_and_keeps_the_mails(tmp_path, provider_server, monkeypatch):
    project = provider_project(tmp_path, provider_server, "mailjet", monkeypatch)
    monkeypatch.delenv("PROVIDER_SECRET")
    queue(project, add_contacts(project, 2))
    report = deliver(project, now=NOW)
    assert report.stopped and "PROVIDER_SECRET is not set" in report.stopped
    assert states(project).get("queued") == 2 and provider_server.seen == []
