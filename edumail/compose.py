"""One outbox row -> the bytes that leave: render, place tracking, headers, MIME, DKIM.

Rendering happens at delivery time with the contact's current data. Then,
for a contact mail: links rewritten to the click tracker (the originals kept
by index in mails.links, so the tracker only redirects to a URL that was in
the mail), the open pixel, a visible unsubscribe link in every marketing mail
even when the template forgot it, and the headers mailbox providers require.
"""

from __future__ import annotations

import html as html_module
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from edumail import contacts, events, message, tokens, topics
from edumail.errors import ConfigError, EdumailError, InputError
from edumail.project import Project
from edumail.store import Store
from edumail.transport import Envelope
from edumail.typography import elide

NOTIFY = "__notify__"  # template name of a staff alert: context {"subject", "body"}
ALERT = "__alert__"  # the `alerts:` mail to staff (alerts.py), written the same way
DKIM_HEADERS = [
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"Reply-To",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
]
# Signed a second time ("oversigned"): a copy of one of these added above the signature breaks it,
# so nobody can prepend a second Subject or From that some clients would show instead.
DKIM_OVERSIGN = [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"List-Unsubscribe", b"List-Unsubscribe-Post"]
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_FOOTER_HTML = (
    '<p style="margin:16px;padding:0;font-size:12px;color:#666666;text-align:center">'
    'Vous recevez cet e-mail {sender}. <a href="{url}" style="color:#666666">Se désinscrire</a></p>'
)
_FOOTER_TEXT = "\n\n--\nVous recevez cet e-mail {sender}.\nSe désinscrire\u00a0: {url}\n"
_PIXEL = '<img src="{url}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">'


class Skip(EdumailError):
    """This mail must not go out any more (consent, bounce, forgotten): cancel it."""


@dataclass(frozen=True)
class Composed:
    """A built mail still without its Date and DKIM signature: `Composer.seal` adds both at hand-over."""

    sender: str
    recipient: str
    unsigned: bytes
    message_id: str
    mail_id: int
    subject: str
    links: list[str]
    attachments: tuple[dict[str, str], ...] = ()  # name, path, size, sha256 of each file sent


class Composer:
    """Builds outgoing messages for one project; safe to share between threads."""

    def __init__(self, project: Project, *, now: datetime, library: Any = None):
        self.project = project
        self.settings = project.settings
        self.now = now
        self.sender = self.settings.sender
        self.tracking = self.settings.tracking.base_url
        self.secret = _signing_key(project, required=bool(self.tracking))
        self.one_click = (self.tracking or "").lower().startswith("https://")
        self._library = library
        self._campaigns: dict[int, dict[str, Any]] = {}  # campaign id -> its data, letter, deadline, topic
        self._dkim = _load_dkim(project)
        self._from = message.mailbox(self.sender.name, self.sender.email, "From")
        self._reply_to = message.mailbox("", self.sender.reply_to, "Reply-To") if self.sender.reply_to else None
        self._mailto_address = message.check_address(self.sender.email)

    @property
    def library(self) -> Any:
        if self._library is None:
            from edumail.render import TemplateLibrary

            self._library = TemplateLibrary(self.project.templates_dir, self.settings)
        return self._library

    # --- one mail ---------------------------------------------------------------

    def compose(self, store: Store, mail: dict[str, Any]) -> Composed:
        """Raises Skip (cancel the mail), RenderError or InputError (fail it)."""
        context = json.loads(mail.get("context") or "{}")
        if mail["template"] in (NOTIFY, ALERT):
            return self._notify(mail, context)
        contact = self._contact(store, mail)
        context = self._campaign_context(store, mail, context)
        if context.get("session_id"):  # a session journey's mail shows the session as it is now (moved or not)
            context["session"] = self._session(store, str(context.pop("session_id")))
        if contact.get("id") is not None and topics.has_left(store, int(contact["id"]), context.get("topic")):
            raise Skip(topics.reason_left(str(context["topic"])))
        mail_id = int(mail["id"])
        marketing = mail["purpose"] == events.MARKETING
        mailto = self._mailto(mail_id)
        unsubscribe = tokens.unsubscribe_url(self.tracking, self.secret, mail_id) if self.tracking else mailto
        preferences = tokens.preferences_url(self.tracking, self.secret, mail_id) if self.tracking else mailto
        rendered = self._render(mail, contact, context, unsubscribe, preferences)
        body_html, body_text = rendered.html, rendered.text
        if marketing:
            body_html, body_text = self._ensure_unsubscribe(body_html, body_text, unsubscribe)
        links: list[str] = []
        if self.tracking and self.settings.tracking.clicks:
            body_html, links = self._track_links(body_html, mail_id)
        if self.tracking and self.settings.tracking.opens:
            body_html = _before_body_end(
                body_html, _PIXEL.format(url=tokens.open_url(self.tracking, self.secret, mail_id))
            )

        headers = self._headers(mail, contacts.display_name(contact), contact["email"], rendered.subject)
        if marketing:
            self._list_headers(headers, mail, unsubscribe, mailto)
        else:
            headers.add("Auto-Submitted", "auto-generated")
        files = self._attachments(rendered.attachments)
        data = message.build(headers, text=body_text, html=body_html, attachments=files)
        recipient = message.check_address(contact["email"])
        subject = message.clean(rendered.subject)
        proofs = tuple(f.proof() for f in files)
        return Composed(self.sender.email, recipient, data, mail["message_id"], mail_id, subject, links, proofs)

    def _attachments(self, entries: tuple[str, ...]) -> list[Any]:
        if not entries:
            return []
        from edumail import attachments

        return attachments.load(self.project.root, entries, self.settings.limits.attachments_mb)

    def seal(self, composed: Composed, at: datetime | None = None) -> Envelope:
        """The envelope as it is handed over: dated `at` (SPEC 20: the hand-over time), then DKIM-signed."""
        date = message.date((at or self.now).astimezone(self.settings.tz))
        data = message.insert_header(composed.unsigned, "Date", date, before="Message-ID")
        return Envelope(composed.sender, composed.recipient, self._sign(data), composed.message_id, composed.mail_id)

    def _mailto(self, mail_id: int) -> str:
        """The mailto: unsubscribe, carrying the same token as the https one (SPEC 18) when there is a key."""
        if not self.secret:
            return f"mailto:{self._mailto_address}?subject=unsubscribe"
        token = tokens.sign(self.secret, tokens.Token("u", mail_id))
        return f"mailto:{self._mailto_address}?subject=unsubscribe-{token}"

    def _list_headers(self, headers: message.Headers, mail: dict[str, Any], unsubscribe: str, mailto: str) -> None:
        if self.tracking:
            headers.add("List-Unsubscribe", message.fold_list("List-Unsubscribe", [f"<{unsubscribe}>", f"<{mailto}>"]))
        else:
            headers.add("List-Unsubscribe", f"<{mailto}>")
        if self.one_click:  # RFC 8058: one-click needs an https URI; http or mailto alone get no -Post
            headers.add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        if mail.get("campaign_id"):
            headers.add("Precedence", "bulk")

    def _contact(self, store: Store, mail: dict[str, Any]) -> dict[str, Any]:
        if mail.get("contact_id") is None:
            if not mail.get("to_email"):
                raise InputError(f"mail {mail['id']} has neither a contact nor an address")
            return {"email": mail["to_email"], "first_name": "", "last_name": "", "fields": "{}"}
        contact = store.contact(int(mail["contact_id"]))
        if contact is None:
            raise Skip("contact deleted")
        reason = contacts.may_receive(contact, mail["purpose"])
        if reason:
            raise Skip(reason)
        return {**contact, "_tags": store.tags_of(int(contact["id"]))}

    def _campaign_context(self, store: Store, mail: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """A campaign's mail reads its --data as `event` and its letter as `content`; past --until it is dropped."""
        campaign_id = mail.get("campaign_id")
        if not campaign_id:
            return context
        extras = self._campaigns.get(int(campaign_id))
        if extras is None:
            extras = self._campaigns[int(campaign_id)] = store.campaign_extras(int(campaign_id))
        if extras["until"] is not None and self.now > extras["until"]:
            raise Skip(f"campaign ended (--until {extras['until'].isoformat()})")
        merged = {**context, "event": {**extras["data"], **(context.get("event") or {})}}
        if extras["content"] is not None:
            merged["content"] = Markup(extras["content"])  # rendered from the campaign's Markdown by mdcontent
        if extras["topic"]:
            merged["topic"] = extras["topic"]
        return merged

    def _session(self, store: Store, session_id: str) -> dict[str, Any]:
        from edumail import sessions

        found = store.session(session_id)
        if found is None:
            raise InputError(f"session {session_id!r} no longer exists")
        return sessions.view(found, self.settings.tz)

    def _render(
        self, mail: dict[str, Any], contact: dict[str, Any], context: dict[str, Any], unsubscribe: str, preferences: str
    ) -> Any:
        from edumail.render import render

        if contact.get("id") is not None:
            view = contacts.template_view(contact, contact["_tags"])
        else:
            view = contacts.template_view({**contact, "fields": "{}"}, [])
        extra = {k: v for k, v in context.items() if k != "event"}
        if self.tracking and contact.get("id") is not None:  # the double opt-in link (tracking server /k/)
            extra.setdefault("confirm_url", tokens.confirm_url(self.tracking, self.secret, int(contact["id"])))
        return render(
            self.library,
            mail["template"],
            contact=view,
            event=context.get("event") or {},
            now=self.now,
            unsubscribe_url=unsubscribe,
            preferences_url=preferences,
            extra=extra or None,
        )

    def _headers(self, mail: dict[str, Any], name: str, email: str, subject: str) -> message.Headers:
        headers = message.Headers()
        headers.add("From", self._from)
        headers.add("To", message.mailbox(name, email))
        if self._reply_to:
            headers.add("Reply-To", self._reply_to)
        headers.text("Subject", subject)
        headers.add("Message-ID", mail["message_id"])
        return headers

    def _notify(self, mail: dict[str, Any], context: dict[str, Any]) -> Composed:
        to = mail.get("to_email") or ""
        subject = str(context.get("subject") or "edumail")
        body = str(context.get("body") or "")
        page = (
            '<!doctype html><html lang="fr"><head><meta charset="utf-8"></head><body>'
            '<div style="font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:22px;white-space:pre-wrap">'
            f"{html_module.escape(body)}</div></body></html>"
        )
        headers = self._headers(mail, "", to, subject)
        headers.add("Auto-Submitted", "auto-generated")
        data = message.build(headers, text=body, html=page)
        recipient = message.check_address(to)
        return Composed(
            self.sender.email, recipient, data, mail["message_id"], int(mail["id"]), message.clean(subject), []
        )

    # --- tracking placement --------------------------------------------------------

    def _track_links(self, body: str, mail_id: int) -> tuple[str, list[str]]:
        links: list[str] = []
        index_of: dict[str, int] = {}

        def replace(match: re.Match[str]) -> str:
            url = html_module.unescape(match.group(3).strip())
            if not url.lower().startswith(("http://", "https://")) or url.startswith(self.tracking or "\0"):
                return match.group(0)
            if url not in index_of:
                index_of[url] = len(links)
                links.append(url)
            tracked = tokens.click_url(self.tracking or "", self.secret, mail_id, index_of[url])
            return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}"

        return _HREF.sub(replace, body), links

    def _ensure_unsubscribe(self, body_html: str, body_text: str, url: str) -> tuple[str, str]:
        sender = html_module.escape(elide(self.sender.name))
        if url not in body_html and html_module.escape(url) not in body_html:
            body_html = _before_body_end(body_html, _FOOTER_HTML.format(sender=sender, url=html_module.escape(url)))
        if url not in body_text:
            body_text = body_text.rstrip("\n") + _FOOTER_TEXT.format(sender=elide(self.sender.name), url=url)
        return body_html, body_text

    def _sign(self, data: bytes) -> bytes:
        if self._dkim is None:
            return data
        import dkim

        selector, domain, key = self._dkim
        include = [h for h in DKIM_HEADERS if h != b"Reply-To" or self._reply_to] + DKIM_OVERSIGN
        signature = dkim.sign(
            data,
            selector,
            domain,
            key,
            include_headers=include,
            canonicalize=(b"relaxed", b"relaxed"),  # survives relays that re-fold or re-space headers
            linesep=b"\r\n",
        )
        return bytes(signature) + data


def _before_body_end(body: str, snippet: str) -> str:
    ends = list(_BODY_END.finditer(body))
    if not ends:
        return body + snippet
    at = ends[-1].start()
    return body[:at] + snippet + body[at:]


def _signing_key(project: Project, *, required: bool) -> bytes:
    """The project's signing key; without tracking a missing key only leaves the mailto without its token."""
    try:
        return project.secret()
    except EdumailError:
        if required:
            raise
        return b""


def _load_dkim(project: Project) -> tuple[bytes, bytes, bytes] | None:
    config = project.settings.dkim
    if config is None:
        return None
    path = Path(config.private_key_file)
    if not path.is_absolute():
        path = project.root / path
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"edumail.yaml: dkim.private_key_file: cannot read {path} ({exc.strerror}); "
            "give the path of the PEM private key (relative to the project folder)"
        ) from None
    if b"PRIVATE KEY" not in key:
        raise ConfigError(f"edumail.yaml: dkim.private_key_file: {path} is not a PEM private key")
    return config.selector.encode(), config.domain.encode(), key
