"""What the provider transports (brevo, mailjet, postmark, ses) share.

A provider's API takes the mail as JSON fields (or raw MIME for SES): the
finished message is parsed back into its parts here (`Parts`), so each
provider module only builds its request and reads its errors. Every mail
carries an idempotency key or custom id derived from its outbox Message-ID
(stable across retries), so a crash between the provider's 2xx and the local
commit does not send it twice where the API deduplicates. HTTP 429 is waited
out when its Retry-After is short, else the mail is deferred at least that
long. The API key is read from the environment when a connection opens and is
never part of a message.
"""

from __future__ import annotations

import base64
import email.utils
import os
import time
import uuid
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx

from edumail.settings import Provider
from edumail.transport import AUTH, TEMPORARY, UNREACHABLE, Envelope, SendFailure

TIMEOUT = 30.0
MAX_WAIT = 10.0  # a Retry-After up to this many seconds is waited out in place
TRIES_429 = 3
# Headers a provider API is given besides subject/from/reply-to (DKIM is the provider's).
CARRIED = ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Auto-Submitted", "Precedence")
_NAMESPACE = uuid.UUID("5b0f3a52-5c3e-4a0e-9a53-6f0d2c1e7d10")


@dataclass
class Attachment:
    filename: str
    content_type: str
    content: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.content).decode("ascii")


@dataclass
class Parts:
    """One finished mail, read back into what a JSON API wants."""

    sender_name: str
    sender_email: str
    recipient: str
    subject: str
    text: str | None
    html: str | None
    reply_to: str | None
    headers: dict[str, str]
    attachments: list[Attachment] = field(default_factory=list)
    message_id: str = ""
    mail_id: int | None = None

    @property
    def idempotency_key(self) -> str:
        """A UUID derived from the outbox Message-ID: the same for every retry of this mail."""
        return str(uuid.uuid5(_NAMESPACE, self.message_id))

    @property
    def custom_id(self) -> str:
        return f"edumail-{self.mail_id}" if self.mail_id is not None else self.message_id


def parts(envelope: Envelope) -> Parts:
    msg = BytesParser(policy=policy.default).parsebytes(envelope.data)
    assert isinstance(msg, EmailMessage)
    name, address = email.utils.parseaddr(str(msg.get("From", envelope.sender)))
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    attachments = [
        Attachment(str(part.get_filename() or "attachment"), part.get_content_type(), _payload(part))
        for part in msg.iter_attachments()
    ]
    headers = {h: " ".join(str(msg[h]).split()) for h in CARRIED if msg[h] is not None}
    return Parts(
        sender_name=name,
        sender_email=address or envelope.sender,
        recipient=envelope.recipient,
        subject=str(msg.get("Subject", "")),
        text=text.get_content() if text is not None else None,
        html=html.get_content() if html is not None else None,
        reply_to=email.utils.parseaddr(str(msg["Reply-To"]))[1] if msg["Reply-To"] else None,
        headers=headers,
        attachments=attachments,
        message_id=envelope.message_id,
        mail_id=envelope.mail_id,
    )


def _payload(part: Any) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def secret(env: str | None, what: str) -> str:
    value = os.environ.get(env or "") if env else None
    if not value:
        raise SendFailure(AUTH, f"{what}: the environment variable {env} is not set (set it, then run again)")
    return value


def retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        when = email.utils.parsedate_to_datetime(raw) if raw else None
        return max(0.0, when.timestamp() - time.time()) if when else 60.0


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class ApiConnection:
    """One httpx client per worker thread; `api` builds requests and reads errors."""

    def __init__(self, api: Any):
        self.api = api
        self._client: httpx.Client | None = None  # opened on the first send, like an SMTP connection

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=TIMEOUT, headers=self.api.auth_headers(), auth=self.api.auth())
        return self._client

    def send(self, envelope: Envelope) -> None:
        mail = parts(envelope)
        path, body = self.api.request(mail)
        response = self._post(path, body)
        self.api.accepted(response, mail)

    def _post(self, path: str, body: Any) -> httpx.Response:
        where = f"{self.api.label} ({self.api.base})"
        for _ in range(TRIES_429):
            try:
                response = self.client.post(self.api.base + path, json=body)
            except httpx.ConnectError as exc:
                raise SendFailure(UNREACHABLE, f"cannot reach {where}: {exc}; nothing was sent") from None
            except httpx.HTTPError as exc:
                raise SendFailure(TEMPORARY, f"{where}: {type(exc).__name__} {exc}".rstrip()) from None
            if response.status_code != 429:
                if response.status_code >= 500:
                    raise SendFailure(TEMPORARY, f"{where} answered {response.status_code}", code=response.status_code)
                if response.status_code >= 300:
                    raise self.api.failure(response)
                return response
            wait = retry_after(response)
            if wait > MAX_WAIT:
                break
            time.sleep(wait)
        failure = SendFailure(TEMPORARY, f"{where}: rate limited (HTTP 429, retry after {wait:.0f} s)", code=429)
        failure.retry_after = wait
        raise failure

    def close(self) -> None:
        close_client(self._client)


def close_client(client: Any) -> None:
    """Close a provider connection's client if one was opened; a failure to close changes nothing."""
    if client is None:
        return
    try:
        client.close()
    except Exception:  # noqa: BLE001 - closing: nothing to do about it
        pass


class ApiTransport:
    """Base of the JSON-API transports: settings, concurrency, rate limit."""

    name = ""
    label = ""
    default_url = ""

    def __init__(self, config: Provider):
        self.config = config
        self.base = (config.base_url or self.default_url).rstrip("/")
        self.concurrency = config.concurrency
        self.rate_per_minute = config.rate_per_minute

    def key(self) -> str:
        return secret(self.config.key_env, f"{self.label} API key (provider.key_env)")

    def auth_headers(self) -> dict[str, str]:
        return {}

    def auth(self) -> httpx.Auth | None:
        return None

    def connect(self) -> ApiConnection:
        return ApiConnection(self)

    def describe(self) -> str:
        return f"{self.label} API {self.base}"

    def accepted(self, response: httpx.Response, mail: Parts) -> None:
        """A 2xx: most APIs mean the mail was accepted (Mailjet can still say error per message)."""

    def check_request(self) -> tuple[str, str]:
        """(method, path) of one authenticated call that sends nothing (`edumail providers test`)."""
        raise NotImplementedError

    def failure(self, response: httpx.Response) -> SendFailure:
        raise NotImplementedError

    def test(self) -> str:
        """Make the check call; a sentence saying whether the key works (raises SendFailure if not)."""
        method, path = self.check_request()
        where = f"{self.label} ({self.base})"
        with httpx.Client(timeout=TIMEOUT, headers=self.auth_headers(), auth=self.auth()) as client:
            try:
                response = client.request(method, self.base + path)
            except httpx.HTTPError as exc:
                raise SendFailure(UNREACHABLE, f"cannot reach {where}: {exc}") from None
        if response.status_code >= 300:
            raise self.failure(response)
        return f"{where}: the API key works ({method} {path} answered {response.status_code}); nothing was sent"
