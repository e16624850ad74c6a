"""Provider webhooks (SPEC 18): each provider's documented payloads, recorded in edumail's vocabulary.

The payloads are the examples of each provider's documentation, kept under
tests/data/webhooks/ with their source URL. SES comes through SNS: the test
signs the documented envelope with a test certificate, which the verifier is
given in place of the one it would fetch from sns.REGION.amazonaws.com.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient
from tracking_support import contact, sent_mail

from edumail import events, sns, tracking
from edumail import project as project_module

DATA = Path(__file__).parent / "data" / "webhooks"
HOOK = "whsec-test-0123456789"
ADDRESS = {
    "brevo": "example@domain.com",
    "mailjet": "api@mailjet.com",
    "postmark": "john@example.com",
    "ses": "recipient@example.com",
}


def fixture(name: str) -> dict:
    data = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    assert data["source"].startswith("https://")
    return data["payload"]


def _certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com (test)")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


KEY, PEM = _certificate()


def signed(message: dict, version: str = "1") -> dict:
    message = {**message, "SignatureVersion": version}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = KEY.sign(sns.signed_string(message), padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def ses_notification(event: str, version: str = "1") -> dict:
    envelope = fixture("sns_notification")
    envelope["Message"] = json.dumps(fixture(event))
    return signed(envelope, version)


class Hooks:
    def __init__(self, root: Path, provider: str, monkeypatch):
        monkeypatch.setenv("PROVIDER_HOOK", HOOK)
        settings = (root / "edumail.yaml").read_text(encoding="utf-8")
        settings += f"transport: {provider}\nprovider:\n  key_env: PROVIDER_KEY\n  webhook_secret_env: PROVIDER_HOOK\n"
        (root / "edumail.yaml").write_text(settings, encoding="utf-8")
        self.project = project_module.load(root)
        self.store = self.project.store()
        self.contact_id = contact(self.store, ADDRESS[provider])
        self.mail_id = sent_mail(self.store, self.contact_id)
        self.provider = provider
        self.app = tracking.create_app(self.project)
        self.confirmed: list[str] = []
        hooks = self.app.state.provider_webhooks
        hooks.verifier = sns.Verifier(fetch_certificate=self._certificate)
        hooks.confirm = lambda url: self.confirmed.append(url) or b""
        self.client = TestClient(self.app)

    def _certificate(self, url: str) -> bytes:
        assert sns.HOST.match(url.split("/")[2])
        return PEM

    def post(self, payload, secret: str = HOOK, **kwargs):
        return self.client.post(f"/webhooks/{self.provider}/{secret}", content=json.dumps(payload), **kwargs)

    def events(self, name: str | None = None) -> list[dict]:
        rows = self.store.rows(
            "SELECT * FROM events WHERE contact_id = ? AND source LIKE '% webhook'"
            " AND name != 'consent_changed' ORDER BY id",
            (self.contact_id,),
        )
        return [dict(r, data=json.loads(r["data"])) for r in rows if name is None or r["name"] == name]

    def consent(self) -> str:
        return self.store.contact(self.contact_id)["consent"]


@pytest.fixture
def hooks(project_dir, monkeypatch, request):
    return Hooks(project_dir, request.param, monkeypatch)


CASES = [
    ("brevo", "brevo_delivered", events.EMAIL_DELIVERED, {}),
    ("brevo", "brevo_hard_bounce", events.BOUNCED, {"kind": "hard"}),
    ("brevo", "brevo_soft_bounce", events.BOUNCED, {"kind": "soft"}),
    ("brevo", "brevo_spam", events.COMPLAINED, {}),
    ("brevo", "brevo_proxy_open", events.EMAIL_OPENED, {"machine": "proxy"}),
    ("brevo", "brevo_click", events.EMAIL_CLICKED, {"url": "https://centre.example/programme"}),
    ("brevo", "brevo_unsubscribed", events.UNSUBSCRIBED, {}),
    ("mailjet", "mailjet_sent", events.EMAIL_DELIVERED, {}),
    ("mailjet", "mailjet_bounce", events.BOUNCED, {"kind": "hard", "diagnostic": "recipient user unknown"}),
    ("mailjet", "mailjet_spam", events.COMPLAINED, {"source": "JMRPP"}),
    ("mailjet", "mailjet_click", events.EMAIL_CLICKED, {"url": "https://mailjet.com"}),
    ("mailjet", "mailjet_unsub", events.UNSUBSCRIBED, {}),
    ("postmark", "postmark_delivery", events.EMAIL_DELIVERED, {}),
    ("postmark", "postmark_bounce", events.BOUNCED, {"kind": "hard", "diagnostic": "Test bounce details"}),
    ("postmark", "postmark_spam_complaint", events.COMPLAINED, {}),
    ("postmark", "postmark_open", events.EMAIL_OPENED, {}),
    ("postmark", "postmark_click", events.EMAIL_CLICKED, {"url": "https://example.com"}),
    ("postmark", "postmark_subscription_change", events.UNSUBSCRIBED, {}),
    ("ses", "ses_bounce", events.BOUNCED, {"kind": "hard", "status": "5.1.1"}),
    ("ses", "ses_complaint", events.COMPLAINED, {}),
    ("ses", "ses_delivery", events.EMAIL_DELIVERED, {}),
    ("ses", "ses_open", events.EMAIL_OPENED, {}),
    (
        "ses",
        "ses_click",
        events.EMAIL_CLICKED,
        {"url": "http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html"},
    ),
]


@pytest.mark.parametrize("hooks, name, event, data", CASES, indirect=["hooks"], ids=[c[1] for c in CASES])
def test_each_documented_payload_is_recorded_once_in_edumail_words(hooks, name, event, data):
    payload = ses_notification(name) if hooks.provider == "ses" else fixture(name)
    first = hooks.post(payload)
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1, "replayed": 0, "unmatched": 0}
    [recorded] = hooks.events()
    assert recorded["name"] == event and recorded["mail_id"] == hooks.mail_id
    assert recorded["data"]["provider"] == hooks.provider
    for key, value in data.items():
        assert recorded["data"][key] == value
    assert hooks.post(payload).json() == {"recorded": 0, "replayed": 1, "unmatched": 0}
    assert len(hooks.events()) == 1


@pytest.mark.parametrize("hooks", ["brevo", "postmark", "ses"], indirect=True)
def test_a_complaint_suppresses_marketing_at_once(hooks):
    name = {"brevo": "brevo_spam", "postmark": "postmark_spam_complaint", "ses": "ses_complaint"}[hooks.provider]
    payload = ses_notification(name) if hooks.provider == "ses" else fixture(name)
    assert hooks.consent() == events.OPTED_IN
    assert hooks.post(payload).status_code == 200
    assert hooks.consent() == events.OPTED_OUT


@pytest.mark.parametrize("hooks", ["postmark"], indirect=True)
def test_a_hard_bounce_suppresses_the_address(hooks):
    hooks.post(fixture("postmark_bounce"))
    assert hooks.store.contact(hooks.contact_id)["bounced_at"]


@pytest.mark.parametrize("hooks", ["brevo", "mailjet", "postmark", "ses"], indirect=True)
def test_a_wrong_secret_or_basic_password_records_nothing(hooks):
    payload = (
        ses_notification("ses_bounce")
        if hooks.provider == "ses"
        else fixture(
            f"{hooks.provider}_sent"
            if hooks.provider == "mailjet"
            else {"brevo": "brevo_hard_bounce", "postmark": "postmark_bounce"}[hooks.provider]
        )
    )
    assert hooks.post(payload, secret="guess").status_code == 403
    wrong = "Basic " + base64.b64encode(b"edumail:guess").decode()
    assert hooks.post(payload, headers={"Authorization": wrong}).status_code == 403
    assert hooks.events() == []
    right = "Basic " + base64.b64encode(f"edumail:{HOOK}".encode()).decode()
    assert hooks.post(payload, headers={"Authorization": right}).status_code == 200


@pytest.mark.parametrize("hooks", ["brevo"], indirect=True)
def test_another_providers_route_is_not_found(hooks):
    assert (
        hooks.client.post(f"/webhooks/postmark/{HOOK}", content=json.dumps(fixture("postmark_bounce"))).status_code
        == 404
    )


@pytest.mark.parametrize(
    "hooks, payload",
    [
        ("brevo", {"event": "teleported", "email": "example@domain.com", "ts_event": 1604933654}),
        ("brevo", [fixture("brevo_delivered"), {"event": "hard_bounce"}]),
        ("mailjet", [fixture("mailjet_sent"), {"event": "bounce", "email": "api@mailjet.com", "time": 1}]),
        ("postmark", {"RecordType": "Bounce", "Email": "john@example.com"}),
        ("postmark", ["not", "an", "object"]),
    ],
    indirect=["hooks"],
)
def test_unknown_or_malformed_payloads_get_400_and_nothing_half_recorded(hooks, payload):
    response = hooks.post(payload)
    assert response.status_code == 400, response.text
    assert hooks.events() == []


@pytest.mark.parametrize("hooks", ["ses"], indirect=True)
def test_sns_signature_versions_1_and_2_are_verified_and_tampering_records_nothing(hooks):
    tampered = ses_notification("ses_bounce")
    tampered["Message"] = tampered["Message"].replace("5.1.1", "5.1.2")
    assert hooks.post(tampered).status_code == 403
    assert hooks.events() == []
    assert hooks.post(ses_notification("ses_bounce", version="2")).status_code == 200
    assert len(hooks.events(events.BOUNCED)) == 1


@pytest.mark.parametrize("hooks", ["ses"], indirect=True)
def test_sns_certificates_come_only_from_aws_sns_hosts(hooks):
    for url in (
        "https://sns.us-west-2.amazonaws.com.evil.example/cert.pem",
        "http://sns.us-west-2.amazonaws.com/cert.pem",
        "https://s3.amazonaws.com/cert.pem",
    ):
        message = ses_notification("ses_bounce")
        message["SigningCertURL"] = url
        assert hooks.post(signed(message)).status_code == 403
    assert hooks.events() == []


@pytest.mark.parametrize("hooks", ["ses"], indirect=True)
def test_sns_subscription_is_confirmed_by_its_subscribe_url(hooks):
    confirmation = signed(fixture("sns_subscription_confirmation"))
    assert hooks.post(confirmation).status_code == 200
    assert hooks.confirmed == [confirmation["SubscribeURL"]]
    forged = {**confirmation, "SubscribeURL": "https://attacker.example/?Action=ConfirmSubscription"}
    assert hooks.post(signed(forged)).status_code == 403
    assert len(hooks.confirmed) == 1


def test_sns_signed_string_follows_the_documented_key_order():
    message = {"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "hello", "Timestamp": "ts"}
    assert (
        sns.signed_string(message) == b"Message\nhello\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    )
