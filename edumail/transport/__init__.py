"""Transports: the one place a built message leaves edumail.

A transport only sends: it gets finished bytes (headers, MIME, DKIM) and an
envelope, and either returns (the server accepted: SMTP 250) or raises
`SendFailure` saying what kind of failure it was. Delivery decides what a
failure means for the mail (retry, bounce, stop).

A `Transport` is a factory of `Connection`s: delivery opens one connection per
worker thread and reuses it for many mails.

- `file`: outbox/new/*.eml, a Maildir-style folder a person can open (default).
- `smtp`: smtplib, starttls / ssl / none, login from `smtp.password_env`.
- `brevo`, `mailjet`, `postmark`: the providers' JSON APIs through httpx
  (http_api.py holds what they share); `ses`: Amazon SES v2 through boto3.
- `memory`: keeps envelopes in a list, with optional fault injection (tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edumail.project import Project

# What a failure means for the mail and for the run.
TEMPORARY = "temporary"  # 4xx, dropped connection, timeout: back off, retry later
BOUNCE = "bounce"  # 5.1.x / 5.2.1: the address is bad, suppress it
PERMANENT = "permanent"  # other 5xx: this mail failed, never retry it by itself
POLICY = "policy"  # 5.7.x: reputation/policy: stop the whole run
RECIPIENT_POLICY = "recipient_policy"  # 5.7.x at RCPT: this recipient's server refuses us; this mail alone fails
AUTH = "auth"  # login refused, TLS impossible: stop the whole run
UNREACHABLE = "unreachable"  # cannot connect at all: stop the run, nothing was tried

PROVIDER_MODULES = ("brevo", "mailjet", "ses", "postmark")  # edumail/transport/NAME.py, each with make(Provider)

STOPS_RUN = frozenset({POLICY, AUTH, UNREACHABLE})
# Stages where a refusal is the relay's, never a recipient's (SPEC 19): before any recipient was named.
RELAY_STAGES = frozenset({"connect", "ehlo", "login", "mail"})

# RFC 3463 statuses that mean "this address does not exist / cannot receive".
_BOUNCE_STATUSES = re.compile(r"^5\.1\.\d{1,3}$|^5\.2\.1$")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Envelope:
    """One mail as it leaves: SMTP envelope plus the finished message bytes (CRLF)."""

    sender: str
    recipient: str
    data: bytes
    message_id: str
    mail_id: int | None = None


class SendFailure(Exception):
    """A send that did not end with the server's acceptance."""

    def __init__(
        self, kind: str, message: str, code: int | None = None, status: str | None = None, stage: str | None = None
    ):
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.status = status
        self.stage = stage  # connect | ehlo | login | mail | rcpt | data (SMTP); None: the transport cannot say
        self.retry_after: float | None = None  # seconds the server asked us to wait (HTTP 429 Retry-After)

    @property
    def stops_run(self) -> bool:
        return self.kind in STOPS_RUN


class Connection(Protocol):
    def send(self, envelope: Envelope) -> None:
        """Hand one message over; raise SendFailure unless it was accepted."""

    def close(self) -> None:
        """Release the connection (QUIT); never raises."""


class Transport(Protocol):
    name: str
    concurrency: int  # connections (worker threads) delivery may open
    rate_per_minute: int  # 0: no limit

    def connect(self) -> Connection:
        """A new connection for one worker thread (it may connect lazily)."""

    def describe(self) -> str:
        """Where mails go, for messages: `SMTP smtp.example.org:587 (starttls)`."""


def enhanced_status(text: str) -> str | None:
    """The RFC 3463 status in a server reply (`5.1.1`), if any."""
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else None


def classify(code: int, text: str, *, stage: str = "rcpt") -> str:
    """What an SMTP reply code means for this mail and this run.

    `stage` is where it came: mail (MAIL FROM), rcpt, data. A 5xx on our own
    sender address or without a recognisable status at MAIL FROM is as bad as
    a policy block: every mail would get it.
    """
    status = enhanced_status(text)
    if 400 <= code < 500:
        return TEMPORARY
    if code == 530 or code == 535 or code == 534 or code == 538:
        return AUTH
    if status and status.startswith("5.7."):
        return RECIPIENT_POLICY if stage == "rcpt" else POLICY
    if stage == "mail":
        return POLICY
    if status and _BOUNCE_STATUSES.match(status) and stage == "rcpt":  # at DATA: the whole message (SPEC 19)
        return BOUNCE
    if code >= 500:
        return PERMANENT
    return TEMPORARY


class ProviderTransport(Transport, Protocol):
    def test(self) -> str:
        """One authenticated call that sends nothing: a sentence saying the key works, else SendFailure."""


def make_provider(project: Project) -> ProviderTransport:
    """The brevo / mailjet / ses / postmark transport of the settings (edumail/transport/NAME.py)."""
    import importlib

    settings = project.settings
    if settings.transport not in PROVIDER_MODULES or settings.provider is None:
        from edumail.errors import InputError

        raise InputError(
            f"transport is {settings.transport}: this is for transport brevo, mailjet, ses or postmark "
            "with a provider: section"
        )
    module = importlib.import_module(f"edumail.transport.{settings.transport}")
    made: ProviderTransport = module.make(settings.provider)
    return made


def make(project: Project) -> Transport:
    """The transport named by the project's settings."""
    settings = project.settings
    if settings.transport in PROVIDER_MODULES and settings.provider is not None:
        return make_provider(project)
    if project.settings.transport == "smtp":
        from edumail.transport.smtp import SmtpTransport

        return SmtpTransport(project.settings.smtp)
    from edumail.transport.file import FileTransport

    return FileTransport(project.outbox_dir)


__all__ = [
    "AUTH",
    "BOUNCE",
    "PERMANENT",
    "POLICY",
    "RECIPIENT_POLICY",
    "RELAY_STAGES",
    "TEMPORARY",
    "UNREACHABLE",
    "Connection",
    "Envelope",
    "SendFailure",
    "ProviderTransport",
    "Transport",
    "classify",
    "enhanced_status",
    "make",
    "make_provider",
]
