"""`GET/POST /u/TOKEN` (unsubscribe) and `GET/POST /p/TOKEN` (preferences) on `edumail serve`.

The handlers parse and answer; `preferences` decides and records. A GET never
changes anything (link scanners follow links); RFC 8058's one-click POST
(`List-Unsubscribe=One-Click`) leaves everything; the page's buttons leave
only the mail's topic or everything, and undo within 30 days.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from edumail import clock, dbfault, form_pages, journal, preferences, recording, tokens
from edumail import tracking_pages as pages
from edumail.web_forms import posted

if TYPE_CHECKING:
    from edumail.project import Project
    from edumail.store import Store

UNSUBSCRIBE_WAIT = 10.0  # seconds a one-click POST waits for another process's lock before the journal
log = logging.getLogger("edumail.tracking")

_HEADERS = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


class PreferenceRoutes:
    """The unsubscribe and preference handlers, bound to one project and the server's stores."""

    def __init__(self, project: Project, store: Callable[[], Store], keys: list[bytes]):
        self.store = store
        self.keys = keys  # the first signs, every one verifies (SPEC 20)
        self.centre = project.settings.sender.name
        self.labels = dict(project.settings.topics)
        self.base = project.settings.tracking.base_url or ""

    def _mail(self, request: Request, kind: str) -> dict[str, Any] | None:
        token = tokens.verify_any(self.keys, request.path_params["token"], kind)
        return self.store().tracked_mail(token.ident) if token else None

    @staticmethod
    def _proof(request: Request, mail: dict[str, Any], **extra: Any) -> dict[str, Any]:
        ip = request.client.host if request.client else None
        proof = {"ip": ip, "user_agent": request.headers.get("user-agent", "")[:300]}
        return {**proof, "mail_id": mail["id"], "message_id": mail["message_id"], **extra}

    # --- /u/TOKEN -----------------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        form = await _unsubscribe_form(request) if request.method == "POST" else None
        return await run_in_threadpool(self._unsubscribe, request, form)

    def _unsubscribe(self, request: Request, form: dict[str, str] | None) -> Response:
        mail = self._mail(request, "u")
        if mail is None:
            return _page(pages.not_found(self.centre), 404)
        if not recording.reachable(mail):
            return _page(pages.unsubscribed(self.centre, already=True))
        store, now = self.store(), clock.now()
        link = tokens.preferences_url(self.base, self.keys[0], int(mail["id"])) if self.base else ""
        if form is None:
            view = preferences.view(store, mail, self.labels, now)
            return _page(form_pages.unsubscribe_page(self.centre, view, self.labels, link))
        if form.get("action") == "undo":
            done = preferences.undo(store, mail, proof=self._proof(request, mail, method="undo"), now=now)
            return _page(form_pages.undone_page(self.centre, done))
        one_click = form.get("List-Unsubscribe") == "One-Click"
        scope = preferences.TOPIC if form.get("scope") == "topic" and not one_click else preferences.ALL
        method = "one-click" if one_click else "confirmation page"
        proof = self._proof(request, mail, method=method)
        try:
            with store.waiting(min(UNSUBSCRIBE_WAIT, store.busy_ms / 1000)):
                preferences.unsubscribe(store, mail, scope, method=method, proof=proof, now=now)
        except sqlite3.OperationalError as exc:
            if not (dbfault.is_busy(exc) or dbfault.is_full(exc)):
                raise
            # Never lost (RFC 8058): kept in the journal, which the next write replays; the person is answered.
            journal.keep_unsubscribe(store.path, int(mail["id"]), scope, method, proof, now)
            log.warning("unsubscribe of mail %s kept in the journal: %s", mail["id"], dbfault.describe(exc))
            return _page(
                form_pages.unsubscribed_page(self.centre, _done(store, mail, self.labels, now), self.labels, scope)
            )
        view = preferences.view(store, store.tracked_mail(int(mail["id"])) or mail, self.labels, now)
        return _page(form_pages.unsubscribed_page(self.centre, view, self.labels, scope))

    # --- /p/TOKEN -----------------------------------------------------------------------

    async def preferences(self, request: Request) -> Response:
        form = await posted(request) if request.method == "POST" else None
        return await run_in_threadpool(self._preferences, request, form)

    def _preferences(self, request: Request, form: dict[str, str] | None) -> Response:
        mail = self._mail(request, "p")
        if mail is None:
            return _page(pages.not_found(self.centre), 404)
        if not recording.reachable(mail):
            return _page(pages.unsubscribed(self.centre, already=True))
        store, now = self.store(), clock.now()
        if form is not None:
            proof = self._proof(request, mail, form=preferences.PREFERENCES_SOURCE)
            preferences.save(store, mail, self.labels, form, proof=proof, now=now)
            mail = store.tracked_mail(int(mail["id"])) or mail
        view = preferences.view(store, mail, self.labels, now)
        return _page(form_pages.preferences_page(self.centre, view, self.labels, saved=form is not None))


def _done(store: Store, mail: dict[str, Any], labels: dict[str, str], now: datetime) -> preferences.View:
    """The page after an unsubscribe kept in the journal: what it will do (no undo until it is written)."""
    return replace(preferences.view(store, mail, labels, now), receives=False, undo=None)


async def _unsubscribe_form(request: Request) -> dict[str, str]:
    """The posted fields; a one-click POST in any other body still counts (RFC 8058 senders vary)."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        body = await request.body()
        return {"List-Unsubscribe": "One-Click"} if b"List-Unsubscribe=One-Click" in body else {}
    return await posted(request)
