"""Brevo (ex-Sendinblue): POST /v3/smtp/email with the `api-key` header.

https://developers.brevo.com/reference/sendtransacemail : JSON sender, to,
subject, htmlContent, textContent, replyTo, headers, attachment (base64).
`headers.idempotencyKey` (a UUID, deduplicated for 15-30 minutes) comes from the
outbox Message-ID; `X-Mailin-custom` carries the outbox id, which Brevo echoes
in its webhooks (webhooks_brevo.py matches on it).
"""

from __future__ import annotations

from typing import Any

import httpx

from edumail.settings import Provider
from edumail.transport import AUTH, BOUNCE, PERMANENT, POLICY, SendFailure
from edumail.transport.http_api import ApiTransport, Parts, json_of

CUSTOM_HEADER = "X-Mailin-custom"


class BrevoTransport(ApiTransport):
    name = "brevo"
    label = "Brevo"
    default_url = "https://api.brevo.com"

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.key(), "accept": "application/json"}

    def request(self, mail: Parts) -> tuple[str, dict[str, Any]]:
        headers = {k: v for k, v in mail.headers.items()}
        headers["idempotencyKey"] = mail.idempotency_key
        headers[CUSTOM_HEADER] = mail.custom_id
        body: dict[str, Any] = {
            "sender": {"name": mail.sender_name, "email": mail.sender_email}
            if mail.sender_name
            else {"email": mail.sender_email},
            "to": [{"email": mail.recipient}],
            "subject": mail.subject,
            "headers": headers,
        }
        if mail.html:
            body["htmlContent"] = mail.html
        if mail.text:
            body["textContent"] = mail.text
        if mail.reply_to:
            body["replyTo"] = {"email": mail.reply_to}
        if mail.attachments:
            body["attachment"] = [{"name": a.filename, "content": a.base64} for a in mail.attachments]
        return "/v3/smtp/email", body

    def check_request(self) -> tuple[str, str]:
        return "GET", "/v3/account"

    def failure(self, response: httpx.Response) -> SendFailure:
        data = json_of(response)
        code = str(data.get("code", "")) if isinstance(data, dict) else ""
        message = str(data.get("message", "")) if isinstance(data, dict) else response.text[:200]
        said = f"Brevo answered {response.status_code} {code}: {message}".rstrip(": ")
        status = response.status_code
        if status == 401 or code == "unauthorized":
            return SendFailure(
                AUTH, f"{said} — check the API key in ${self.config.key_env} (Brevo > SMTP & API)", status
            )
        if status == 403 or code in ("permission_denied", "not_enough_credits", "account_under_validation"):
            return SendFailure(POLICY, f"{said} — the Brevo account cannot send: check its status and credits", status)
        lowered = message.lower()
        if "sender" in lowered:
            return SendFailure(POLICY, f"{said} — verify the sender address or domain in Brevo (Senders & IP)", status)
        if "email" in lowered and ("invalid" in lowered or "not valid" in lowered or "blacklist" in lowered):
            return SendFailure(BOUNCE, said, status)
        return SendFailure(PERMANENT, said, status)


def make(config: Provider) -> BrevoTransport:
    return BrevoTransport(config)
