"""`POST /webhooks/PROVIDER/SECRET` on `edumail serve`: what Brevo, Mailjet, Postmark and SES say back.

SECRET is the value of the variable named by `provider.webhook_secret_env`
(compared in constant time); when the provider also sends basic auth (a URL
pasted as https://edumail:SECRET@host/...), its password must be that secret
too. SES comes through SNS: every message's signature is verified first
(sns.py), a SubscriptionConfirmation is confirmed by a GET of its
SubscribeURL. The payload is parsed completely before anything is written
(400 when it is not what the provider documents), then recorded in one
transaction (provider_events.py); a replay records nothing twice.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edumail import clock, provider_events, sns, webhooks_brevo, webhooks_mailjet, webhooks_postmark, webhooks_ses
from edumail.project import Project
from edumail.store import Store

log = logging.getLogger("edumail.webhooks")
PARSERS: dict[str, Callable[[Any], list[provider_events.ProviderEvent]]] = {
    "brevo": webhooks_brevo.parse,
    "mailjet": webhooks_mailjet.parse,
    "postmark": webhooks_postmark.parse,
}


def _answer(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message} if status >= 400 else {"ok": message}, status_code=status)


class ProviderWebhooks:
    """The webhook route of the configured provider; `verifier` and `confirm` reach AWS (tests pass local ones)."""

    def __init__(
        self,
        project: Project,
        stores: Callable[[], Store],
        verifier: sns.Verifier | None = None,
        confirm: sns.Fetch = sns.fetch,
    ):
        settings = project.settings
        self.provider = settings.transport if settings.provider is not None else None
        env = settings.provider.webhook_secret_env if settings.provider else None
        self.secret = (os.environ.get(env) or None) if env else None
        self.stores = stores
        self.verifier = verifier or sns.Verifier()
        self.confirm = confirm

    def _allowed(self, request: Request) -> Response | None:
        provider, given = request.path_params["provider"], request.path_params["secret"]
        if self.secret is None or provider != self.provider:
            return _answer(404, f"no webhook for {provider[:20]!r} here (transport and provider.webhook_secret_env)")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return _answer(403, "wrong webhook secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                _, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return _answer(403, "bad basic auth")
            if not hmac.compare_digest(password.encode(), self.secret.encode()):
                return _answer(403, "wrong basic auth password")
        return None

    async def receive(self, request: Request) -> Response:
        refused = self._allowed(request)
        if refused is not None:
            return refused
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _answer(400, "expected a JSON body")
        return await run_in_threadpool(self._handle, payload)

    def _handle(self, payload: Any) -> Response:
        try:
            if self.provider == "ses":
                found = self._sns(payload)
                if isinstance(found, Response):
                    return found
            else:
                found = PARSERS[str(self.provider)](payload)
        except provider_events.Malformed as exc:
            return _answer(400, f"not a {self.provider} event: {exc}")
        except sns.BadSignature as exc:
            log.warning("SNS message refused: %s", exc)
            return _answer(403, f"not signed by Amazon SNS: {exc}")
        result = provider_events.record(self.stores(), found, clock.now())
        return JSONResponse(result.as_json())

    def _sns(self, payload: Any) -> list[provider_events.ProviderEvent] | Response:
        if not isinstance(payload, dict):
            raise provider_events.Malformed("expected an SNS message (a JSON object)")
        self.verifier.verify(payload)
        kind = payload["Type"]
        if kind == "SubscriptionConfirmation":
            self.confirm(sns.aws_url(payload.get("SubscribeURL")))
            log.info("SNS subscription confirmed for %s", str(payload.get("TopicArn"))[:200])
            return _answer(200, "subscription confirmed")
        if kind == "UnsubscribeConfirmation":
            return _answer(200, "unsubscribed")
        return webhooks_ses.parse(payload)
