"""Mailjet: Send API v3.1, POST /v3.1/send with basic auth (API key : secret key).

https://dev.mailjet.com/email/reference/send-emails/ : {"Messages": [{From,
To, Subject, TextPart, HTMLPart, ReplyTo, Headers, Attachments, CustomID}]}.
The API has no idempotency key: `CustomID` carries the outbox id (echoed in
webhooks, webhooks_mailjet.py matches on it). Errors come per message:
{"Messages": [{"Status": "error", "Errors": [{"ErrorCode": "mj-0013", ...}]}]}.
"""

from __future__ import annotations

from typing import Any

import httpx

from edumail.settings import Provider
from edumail.transport import AUTH, BOUNCE, PERMANENT, POLICY, SendFailure
from edumail.transport.http_api import ApiTransport, Parts, json_of, secret

# Mailjet error codes (https://dev.mailjet.com/email/guides/send-api-v31/#send-api-errors)
_RECIPIENT = {"mj-0013", "mj-0014", "mj-0015", "mj-0016"}  # invalid / duplicated recipient addresses
_SENDER = {"mj-0010", "mj-0011", "mj-0012", "send-0008"}  # missing / invalid / unauthorised sender


class MailjetTransport(ApiTransport):
    name = "mailjet"
    label = "Mailjet"
    default_url = "https://api.mailjet.com"

    def auth(self) -> httpx.Auth:
        password = secret(self.config.secret_env, "Mailjet secret key (provider.secret_env)")
        return httpx.BasicAuth(self.key(), password)

    def request(self, mail: Parts) -> tuple[str, dict[str, Any]]:
        sender: dict[str, str] = {"Email": mail.sender_email}
        if mail.sender_name:
            sender["Name"] = mail.sender_name
        message: dict[str, Any] = {
            "From": sender,
            "To": [{"Email": mail.recipient}],
            "Subject": mail.subject,
            "CustomID": mail.custom_id,
            "Headers": dict(mail.headers),
        }
        if mail.text:
            message["TextPart"] = mail.text
        if mail.html:
            message["HTMLPart"] = mail.html
        if mail.reply_to:
            message["ReplyTo"] = {"Email": mail.reply_to}
        if mail.attachments:
            message["Attachments"] = [
                {"ContentType": a.content_type, "Filename": a.filename, "Base64Content": a.base64}
                for a in mail.attachments
            ]
        return "/v3.1/send", {"Messages": [message]}

    def accepted(self, response: httpx.Response, mail: Parts) -> None:
        data = json_of(response)
        messages = data.get("Messages") if isinstance(data, dict) else None
        if messages and isinstance(messages[0], dict) and messages[0].get("Status") not in (None, "success"):
            raise self.failure(response)

    def check_request(self) -> tuple[str, str]:
        return "GET", "/v3/REST/sender?Limit=1"

    def failure(self, response: httpx.Response) -> SendFailure:
        status = response.status_code
        if status == 401:
            return SendFailure(
                AUTH,
                f"Mailjet answered 401: the API key in ${self.config.key_env} and secret in "
                f"${self.config.secret_env} were refused (Mailjet > Account settings > API keys)",
                status,
            )
        data = json_of(response)
        errors = _errors(data)
        said = "; ".join(f"{e.get('ErrorCode', '')} {e.get('ErrorMessage', '')}".strip() for e in errors)
        said = f"Mailjet answered {status}: {said or response.text[:200]}"
        codes = {str(e.get("ErrorCode", "")) for e in errors}
        if status == 403 or codes & _SENDER:
            return SendFailure(POLICY, f"{said} — validate the sender address or domain in Mailjet", status)
        if codes & _RECIPIENT:
            return SendFailure(BOUNCE, said, status)
        return SendFailure(PERMANENT, said, status)


def _errors(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("Messages"), list):
        found = [e for m in data["Messages"] if isinstance(m, dict) for e in m.get("Errors") or []]
        return [e for e in found if isinstance(e, dict)]
    if isinstance(data, dict) and "ErrorMessage" in data:
        return [data]
    return []


def make(config: Provider) -> MailjetTransport:
    return MailjetTransport(config)
