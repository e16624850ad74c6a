"""Amazon SES v2 through boto3 (the optional extra `edumail[ses]`): SendEmail with Raw content.

https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html :
the finished MIME goes as Content.Raw.Data (SES adds its DKIM for the domain
verified there); the outbox id goes as the message tag `edumail_id`, which SES
repeats in its SNS notifications (webhooks_ses.py matches on it). SES has no
idempotency key. Credentials come from `provider.key_env` (access key id) and
`provider.secret_env` (secret access key); boto3 signs the requests.
"""

from __future__ import annotations

from typing import Any

from edumail.settings import Provider
from edumail.transport import AUTH, BOUNCE, PERMANENT, POLICY, TEMPORARY, UNREACHABLE, Envelope, SendFailure
from edumail.transport.http_api import close_client, secret

TAG = "edumail_id"
DEFAULT_REGION = "eu-west-3"  # Paris
_TEMPORARY = {"TooManyRequestsException", "LimitExceededException", "ThrottlingException", "Throttling"}
_POLICY = {
    "AccountSuspendedException",
    "SendingPausedException",
    "MailFromDomainNotVerifiedException",
    "MessageRejected",
}
_AUTH = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AccessDeniedException",
    "AccessDenied",
}


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise SendFailure(
            AUTH, "transport ses needs boto3: install it with `pip install 'edumail[ses]'`, then run again"
        ) from None
    return boto3


class SesConnection:
    def __init__(self, transport: SesTransport):
        self.transport = transport
        self._client: Any = None  # made on the first send (boto3 import, keys), like an SMTP connection

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.transport.client()
        return self._client

    def send(self, envelope: Envelope) -> None:
        tag = f"edumail-{envelope.mail_id}" if envelope.mail_id is not None else "edumail"
        self.transport.call(
            self.client.send_email,
            FromEmailAddress=envelope.sender,
            Destination={"ToAddresses": [envelope.recipient]},
            Content={"Raw": {"Data": envelope.data}},
            EmailTags=[{"Name": TAG, "Value": tag}],
        )

    def close(self) -> None:
        close_client(self._client)


class SesTransport:
    name = "ses"
    label = "Amazon SES"

    def __init__(self, config: Provider):
        self.config = config
        self.region = config.region or DEFAULT_REGION
        self.concurrency = config.concurrency
        self.rate_per_minute = config.rate_per_minute

    def client(self) -> Any:
        boto3 = _boto3()
        from botocore.config import Config

        return boto3.client(
            "sesv2",
            region_name=self.region,
            endpoint_url=self.config.base_url,
            aws_access_key_id=secret(self.config.key_env, "SES access key id (provider.key_env)"),
            aws_secret_access_key=secret(self.config.secret_env, "SES secret access key (provider.secret_env)"),
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30),
        )

    def connect(self) -> SesConnection:
        return SesConnection(self)

    def describe(self) -> str:
        return f"{self.label} {self.config.base_url or self.region}"

    def call(self, method: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return method(**kwargs)
        except ClientError as exc:
            raise self.failure(exc.response) from None
        except EndpointConnectionError as exc:
            raise SendFailure(UNREACHABLE, f"cannot reach {self.describe()}: {exc}; nothing was sent") from None
        except BotoCoreError as exc:
            raise SendFailure(TEMPORARY, f"{self.describe()}: {exc}") from None

    def failure(self, response: dict[str, Any]) -> SendFailure:
        error = response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        said = f"Amazon SES answered {status} {code}: {message}"
        if code in _AUTH or status in (401, 403) and code not in _POLICY:
            return SendFailure(
                AUTH, f"{said} — check the keys in ${self.config.key_env} / ${self.config.secret_env}", status
            )
        if code in _TEMPORARY or (status or 0) >= 500:
            return SendFailure(TEMPORARY, said, status)
        if code in _POLICY:
            hint = "verify the sender identity in SES and check the account's sending status"
            if "recipient" in message.lower() or "address blacklisted" in message.lower():
                return SendFailure(BOUNCE, said, status)
            return SendFailure(POLICY, f"{said} — {hint}", status)
        return SendFailure(PERMANENT, said, status)

    def test(self) -> str:
        account = self.call(self.client().get_account)
        sending = "enabled" if account.get("SendingEnabled") else "PAUSED"
        production = "production" if account.get("ProductionAccessEnabled") else "sandbox"
        return f"{self.describe()}: the keys work (GetAccount: sending {sending}, {production}); nothing was sent"


def make(config: Provider) -> SesTransport:
    return SesTransport(config)
