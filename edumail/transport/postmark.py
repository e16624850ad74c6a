"""Postmark: POST /email with the `X-Postmark-Server-Token` header.

https://postmarkapp.com/developer/api/email-api : JSON From, To, Subject,
HtmlBody, TextBody, ReplyTo, Headers [{Name, Value}], Attachments [{Name,
Content, ContentType}], Metadata, MessageStream. Postmark has no idempotency
key: `Metadata.edumail_id` carries the outbox id (echoed in webhooks).
Errors: 422 with {"ErrorCode": N, "Message": ...}
(https://postmarkapp.com/developer/api/overview#error-codes).
"""

from __future__ import annotations

from email.utils import formataddr
from typing import Any

import httpx

from edumail.settings import Provider
from edumail.transport import AUTH, BOUNCE, PERMANENT, POLICY, TEMPORARY, SendFailure
from edumail.transport.http_api import ApiTransport, Parts, json_of

METADATA_KEY = "edumail_id"
_AUTH = {10}  # bad or missing server API token
_POLICY = {400, 401, 405, 412, 413}  # sender signature missing / unconfirmed, not allowed, pending approval...
_BOUNCE = {406}  # inactive recipient: Postmark suppressed it after a hard bounce or a spam complaint


class PostmarkTransport(ApiTransport):
    name = "postmark"
    label = "Postmark"
    default_url = "https://api.postmarkapp.com"

    def auth_headers(self) -> dict[str, str]:
        return {"X-Postmark-Server-Token": self.key(), "Accept": "application/json"}

    def request(self, mail: Parts) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "From": formataddr((mail.sender_name, mail.sender_email)) if mail.sender_name else mail.sender_email,
            "To": mail.recipient,
            "Subject": mail.subject,
            "Headers": [{"Name": k, "Value": v} for k, v in mail.headers.items()],
            "Metadata": {METADATA_KEY: mail.custom_id},
            "MessageStream": "outbound",
            "TrackOpens": False,
            "TrackLinks": "None",
        }
        if mail.html:
            body["HtmlBody"] = mail.html
        if mail.text:
            body["TextBody"] = mail.text
        if mail.reply_to:
            body["ReplyTo"] = mail.reply_to
        if mail.attachments:
            body["Attachments"] = [
                {"Name": a.filename, "Content": a.base64, "ContentType": a.content_type} for a in mail.attachments
            ]
        return "/email", body

    def check_request(self) -> tuple[str, str]:
        return "GET", "/server"

    def failure(self, response: httpx.Response) -> SendFailure:
        status = response.status_code
        data = json_of(response)
        code = data.get("ErrorCode") if isinstance(data, dict) else None
        message = str(data.get("Message", "")) if isinstance(data, dict) else response.text[:200]
        said = f"Postmark answered {status} (ErrorCode {code}): {message}"
        if status == 401 or code in _AUTH:
            return SendFailure(AUTH, f"{said} — check the server API token in ${self.config.key_env}", status)
        if code in _POLICY:
            return SendFailure(POLICY, f"{said} — fix the sender signature or account in Postmark", status)
        if code in _BOUNCE:
            return SendFailure(BOUNCE, said, status)
        if code == 429 or status == 429:
            return SendFailure(TEMPORARY, said, status)
        return SendFailure(PERMANENT, said, status)


def make(config: Provider) -> PostmarkTransport:
    return PostmarkTransport(config)
