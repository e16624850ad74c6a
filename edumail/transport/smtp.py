"""The SMTP transport: smtplib, one connection per worker, reused for many mails.

Every smtplib error is turned here into a `SendFailure` whose message names
the server, what it said and what to check. The password is never part of a
message, a log line or an exception.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from functools import lru_cache

from edumail.settings import Smtp
from edumail.transport import AUTH, POLICY, TEMPORARY, UNREACHABLE, Envelope, SendFailure, classify, enhanced_status

# RFC 5321 4.5.3.2.6: wait 10 minutes for the answer to the end of DATA. The server may be
# scanning the mail; giving up sooner makes us send again a mail it then accepts. Every other
# stage keeps `smtp.timeout` (30 s by default: a silent server is a temporary failure).
DATA_END_TIMEOUT = 600.0
_LEADING_DOT = re.compile(rb"(?m)^\.")


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    # smtplib would call getfqdn() (a DNS lookup) on every connection.
    return socket.getfqdn() or "localhost"


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


_COMMANDS = {"mail": "MAIL FROM", "rcpt": "RCPT TO", "data": "DATA for"}
_EXPECTED = {"mail": (250,), "rcpt": (250, 251), "data": (354,)}


class _Dropped(Exception):
    """The server closed the connection before answering this mail's first command."""


class SmtpConnection:
    def __init__(self, config: Smtp, password: str | None):
        self.config = config
        self._password = password
        self.client: smtplib.SMTP | None = None
        self.sent_here = 0  # mails accepted on the current connection
        self.connects = 0

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    # --- connecting ------------------------------------------------------------

    def _open(self) -> smtplib.SMTP:
        cfg = self.config
        context = ssl.create_default_context()
        try:
            if cfg.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, local_hostname=_local_hostname(), timeout=cfg.timeout, context=context
                )
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, local_hostname=_local_hostname(), timeout=cfg.timeout)
        except smtplib.SMTPConnectError as exc:
            kind = TEMPORARY if 400 <= exc.smtp_code < 500 else POLICY
            raise SendFailure(
                kind,
                f"{self.where} refused the connection: {exc.smtp_code} {_text(exc.smtp_error)}",
                code=exc.smtp_code,
                stage="connect",
            ) from None
        except ssl.SSLError as exc:
            raise SendFailure(
                AUTH,
                f"{self.where}: TLS failed ({exc.reason or exc}); check smtp.security "
                "(ssl is usually port 465, starttls port 587)",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise SendFailure(
                UNREACHABLE,
                f"cannot connect to {self.where}: {reason}; check smtp.host and "
                "smtp.port (nothing was sent, the mails stay queued)",
            ) from None
        try:
            self._handshake(client)
        except BaseException:
            client.close()
            raise
        self.connects += 1
        self.sent_here = 0
        return client

    def _handshake(self, client: smtplib.SMTP) -> None:
        cfg = self.config
        try:
            code, reply = client.ehlo()
            if code != 250 and not 400 <= code < 500:  # RFC 5321 4.1.4: an old server may know HELO only
                code, reply = client.helo()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
            if cfg.security == "starttls":
                if not client.has_extn("starttls"):
                    raise SendFailure(
                        AUTH,
                        f"{self.where} does not offer STARTTLS; check smtp.security "
                        "(ssl for port 465, none only for a local relay)",
                    )
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if cfg.username:
                if not self._password:
                    raise SendFailure(
                        AUTH,
                        f"no SMTP password: set the environment variable {cfg.password_env} "
                        f"for {cfg.username} on {self.where}",
                    )
                client.login(cfg.username, self._password)
        except smtplib.SMTPAuthenticationError as exc:
            raise SendFailure(
                AUTH,
                f"{self.where} refused login for {cfg.username} ({exc.smtp_code} "
                f"{_text(exc.smtp_error)}); check smtp.username and the password in "
                f"{cfg.password_env}",
                code=exc.smtp_code,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise SendFailure(
                AUTH,
                f"{self.where} does not accept a login on this connection; check smtp.security "
                "(most servers only offer AUTH after STARTTLS)",
            ) from None
        except ssl.SSLError as exc:
            raise SendFailure(
                AUTH,
                f"{self.where}: STARTTLS failed ({exc.reason or exc}); check smtp.security "
                "and the server's certificate",
            ) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise SendFailure(
                TEMPORARY, f"{self.where} closed the connection while we logged in ({exc})", stage="login"
            ) from None
        except smtplib.SMTPResponseException as exc:
            kind = TEMPORARY if 400 <= exc.smtp_code < 500 else AUTH
            raise SendFailure(
                kind,
                f"{self.where} answered {exc.smtp_code} {_text(exc.smtp_error)} while we "
                "greeted it; check smtp.security",
                code=exc.smtp_code,
                stage="ehlo",
            ) from None

    # --- sending ----------------------------------------------------------------

    def send(self, envelope: Envelope) -> None:
        reused = self.client is not None
        if self.client is None:
            self.client = self._open()
        try:
            self._transaction(self.client, envelope)
        except _Dropped:
            self._drop()
            if not reused:
                raise self._closed() from None
            # A server that closes idle or counted connections (Yahoo does): once more on a fresh one.
            self.client = self._open()
            try:
                self._transaction(self.client, envelope)
            except _Dropped:
                self._drop()
                raise self._closed() from None
        self.sent_here += 1

    def _closed(self) -> SendFailure:
        """The relay closed a fresh connection before taking a MAIL FROM: its problem, not a recipient's."""
        return SendFailure(TEMPORARY, f"{self.where} closed the connection before answering", stage="mail")

    def _transaction(self, client: smtplib.SMTP, envelope: Envelope) -> None:
        """MAIL FROM, RCPT TO, DATA, the message. A server that offers PIPELINING (RFC 2920) gets the three
        commands in one write and answers them in order: one round trip a mail instead of three."""
        # The addresses were checked when the mail was built: smtplib's quoteaddr would parse them again.
        commands = [("mail", f"MAIL FROM:<{envelope.sender}>"), ("rcpt", f"RCPT TO:<{envelope.recipient}>")]
        commands.append(("data", "DATA"))
        pipelined = client.has_extn("pipelining")
        stage = "mail"
        try:
            if pipelined:
                client.send("".join(f"{command}\r\n" for _, command in commands))
            for index, (stage, command) in enumerate(commands):
                if not pipelined:
                    client.send(f"{command}\r\n")
                code, reply = client.getreply()
                if code not in _EXPECTED[stage]:
                    if pipelined:
                        self._skip_replies(client, len(commands) - index - 1)
                    self._refused(client, code, reply, stage, envelope)
            code, reply = self._data(client, envelope.data)
            if code != 250:
                self._refused(client, code, reply, stage, envelope)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            if stage == "mail":
                raise _Dropped() from None
            self._drop()
            what = "during the transfer" if stage == "data" else "before accepting the recipient"
            raise SendFailure(TEMPORARY, f"{self.where} dropped the connection {what} ({exc})", stage=stage) from None

    def _skip_replies(self, client: smtplib.SMTP, count: int) -> None:
        """The answers to the pipelined commands after a refused one; a DATA the server took anyway, or a
        connection that ends, is dropped (the transaction is then abandoned, nothing is delivered)."""
        try:
            for _ in range(count):
                code, _reply = client.getreply()
            if count and code == 354:
                self._drop()
        except (smtplib.SMTPServerDisconnected, OSError):
            self._drop()

    def _data(self, client: smtplib.SMTP, data: bytes | str) -> tuple[int, bytes]:
        """The message after DATA's 354; the answer to the final dot gets DATA_END_TIMEOUT (RFC 5321 4.5.3.2.6)."""
        body = data.encode("ascii") if isinstance(data, str) else data
        if body.startswith(b".") or b"\n." in body:  # dot-stuffing (RFC 5321 4.5.2), rarely needed
            body = _LEADING_DOT.sub(b"..", body)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        client.send(body + b".\r\n")
        sock = client.sock
        short = sock.gettimeout() if sock is not None else None
        if sock is not None:
            sock.settimeout(max(DATA_END_TIMEOUT, short or 0.0))
        try:
            return client.getreply()
        finally:
            if client.sock is not None:
                client.sock.settimeout(short)

    def _refused(self, client: smtplib.SMTP, code: int, reply: bytes | str, stage: str, envelope: Envelope) -> None:
        text = _text(reply)
        kind = classify(code, text, stage=stage)
        if code == 421:
            self._drop()  # the server is closing this connection
        else:
            try:
                client.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
        about = envelope.recipient if stage in ("rcpt", "data") else envelope.sender
        raise SendFailure(
            kind,
            f"{self.where} answered {code} {text} ({_COMMANDS[stage]} {about})",
            code=code,
            status=enhanced_status(text),
            stage=stage,
        )

    def _drop(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except OSError:
                pass
        self.client = None

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                pass
        self._drop()


class SmtpTransport:
    """smtplib over `smtp.concurrency` connections; the rate limit is delivery's."""

    name = "smtp"

    def __init__(self, config: Smtp, password: str | None = None):
        self.config = config
        self.concurrency = config.concurrency
        self.rate_per_minute = config.rate_per_minute
        self._password = password if password is not None else config.password()

    def connect(self) -> SmtpConnection:
        return SmtpConnection(self.config, self._password)

    def describe(self) -> str:
        return f"SMTP {self.config.host}:{self.config.port} ({self.config.security})"

    def __repr__(self) -> str:  # never show the password
        return f"SmtpTransport({self.config.host}:{self.config.port})"
