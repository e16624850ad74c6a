"""The tracking server: open pixel, click redirects, double opt-in confirmation and
the events API (SPEC section 7); the unsubscribe and preference pages are
web_preferences.py, the public forms web_forms.py, the body limit http_limits.py.

`create_app(project)` returns a Starlette app. Every write is a short
transaction on a per-thread Store (SQLite connections stay in their thread),
so `serve` shares the database with a running send. Anything a client sends
is untrusted: tokens are verified (HMAC, constant time) before any lookup, a
click redirects only to a URL that was in the mail, bodies are capped, and a
failure answers a plain message, never a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from edumail import (
    clock,
    contacts,
    dbfault,
    eventdata,
    events,
    forms,
    journal,
    recording,
    sessions,
    tokens,
    trigger_data,
    web_forms,
    web_preferences,
)
from edumail import tracking_pages as pages
from edumail.errors import EdumailError, InputError
from edumail.http_limits import MAX_BODY, BodyLimit, BodyTooLarge, too_large
from edumail.project import Project
from edumail.store import Store
from edumail.web_providers import ProviderWebhooks

log = logging.getLogger("edumail.tracking")
REPLAY_WAIT = 1.0  # seconds a request waits to replay the journal; else the next request tries
TRACK_WAIT = 2.0  # seconds an open or a click waits to be recorded under another process's lock
BUSY_RETRY_AFTER = 30  # seconds, told to a client whose write met a long lock (503)

PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
CONFIRM_SOURCE = "confirmation link"
# Events whose meaning edumail owns: recording them from outside would make
# stats and consent lie (an `unsubscribed` without a consent change...).
_RESERVED = frozenset(
    {
        events.EMAIL_SENT,
        events.EMAIL_OPENED,
        events.EMAIL_CLICKED,
        events.UNSUBSCRIBED,
        events.CONSENT_CHANGED,
        events.TAG_ADDED,
        events.TAG_REMOVED,
        events.STAGE_CHANGED,
        events.SESSION_CHANGED,
        events.SESSION_CANCELLED,
        events.COMPLAINED,  # a complaint suppresses: only a provider or an ARF report says so
        events.EMAIL_DELIVERED,  # a provider's word, or stats' delivered would lie
    }
)


class _Stores:
    """One Store per worker thread, closed when the app stops."""

    def __init__(self, project: Project):
        self.project = project
        self.local = threading.local()
        self.opened: list[Store] = []
        self.lock = threading.Lock()

    def get(self) -> Store:
        store = getattr(self.local, "store", None)
        if store is None:
            store = self.project.open_store()
            self.local.store = store
            with self.lock:
                self.opened.append(store)
        if journal.pending(self.project.database_path):  # what a long lock kept back: written first
            journal.replay(store, self.project.database_path, wait=REPLAY_WAIT)
        return store

    def close(self) -> None:
        with self.lock:
            for store in self.opened:
                try:
                    store.close()
                except Exception:  # noqa: BLE001 - closing at shutdown: nothing to do about it
                    pass
            self.opened.clear()


class Tracker:
    """The route handlers, bound to one project (settings and key read once)."""

    def __init__(self, project: Project):
        self.project = project
        self.keys = project.secrets()
        self.api_token = project.settings.api.token()
        self.tz = project.settings.tz
        self.centre = project.settings.sender.name
        self.stores = _Stores(project)

    # --- helpers ----------------------------------------------------------------

    def _mail(self, store: Store, request: Request, kind: str) -> tuple[tokens.Token, dict[str, Any]] | None:
        text = request.path_params["token"]
        if kind == "o" and text.endswith(".gif"):
            text = text[:-4]
        token = tokens.verify_any(self.keys, text, kind)
        if token is None:
            return None
        mail = store.tracked_mail(token.ident)
        if mail is None:
            return None
        return token, mail

    @staticmethod
    def _client(request: Request) -> tuple[str | None, str]:
        ip = request.client.host if request.client else None
        return ip, request.headers.get("user-agent", "")[:300]

    def _proof(self, request: Request, mail: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
        ip, agent = self._client(request)
        proof: dict[str, Any] = {"ip": ip, "user_agent": agent}
        if mail is not None:
            proof.update(mail_id=mail["id"], message_id=mail["message_id"])
        proof.update(extra)
        return proof

    # --- opens and clicks ------------------------------------------------------------

    async def open_pixel(self, request: Request) -> Response:
        found = await run_in_threadpool(self._record_open, request)
        if not found:
            return PlainTextResponse("not found\n", status_code=404)
        return Response(PIXEL, media_type="image/gif", headers=NO_CACHE)

    def _record_open(self, request: Request) -> bool:
        store = self.stores.get()
        found = self._mail(store, request, "o")
        if found is None:
            return False
        _, mail = found
        if recording.reachable(mail):
            ip, agent = self._client(request)
            with _unless_busy(store, "open", mail):
                recording.record_open(store, mail, ip, agent, request.method, clock.now())
        return True

    async def click(self, request: Request) -> Response:
        target = await run_in_threadpool(self._record_click, request)
        if target is None:
            return PlainTextResponse("not found\n", status_code=404)
        return RedirectResponse(target, status_code=302, headers=NO_CACHE)

    def _record_click(self, request: Request) -> str | None:
        store = self.stores.get()
        found = self._mail(store, request, "c")
        if found is None:
            return None
        token, mail = found
        links = json.loads(mail["links"] or "[]")
        if not 0 <= token.index < len(links) or not _safe_url(links[token.index]):
            return None
        url = str(links[token.index])
        if recording.reachable(mail):
            ip, agent = self._client(request)
            with _unless_busy(store, "click", mail):
                recording.record_click(
                    store, mail, (token.index, url, len(links)), ip, agent, request.method, clock.now()
                )
        return url

    # --- double opt-in ---------------------------------------------------------------

    async def confirm(self, request: Request) -> Response:
        if request.method == "POST":
            await _form(request)
        return await run_in_threadpool(self._confirm, request)

    def _confirm(self, request: Request) -> Response:
        store = self.stores.get()
        token = tokens.verify_any(self.keys, request.path_params["token"], "k")
        contact = store.contact(token.ident) if token else None
        if contact is None or contact["forgotten_at"]:
            return _page(pages.not_found(self.centre), 404)
        if request.method != "POST":
            return _page(pages.confirm_form(self.centre, pages.mask(contact["email"])))
        now = clock.now()
        proof = self._proof(request, None, form="double opt-in link", wording=pages.CONFIRM_WORDING)
        with store.transaction():  # the signup's proof (form, wording, IP) becomes the consent's
            proof = forms.confirm_signup(store, contact["id"], now, proof)
            if not (contact["consent"] == events.OPTED_IN and contact["consent_basis"] == "opt_in"):
                recording.opt_in(store, contact["id"], source=CONFIRM_SOURCE, proof=proof, now=now)
        return _page(pages.confirmed(self.centre))

    # --- events API --------------------------------------------------------------------

    async def api_event(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse(
                {"error": "missing or wrong bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        body = await request.body()
        try:
            payload = json.loads(body or b"", parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError):
            return _bad('the body is not JSON: send {"email": ..., "name": ..., "at"?: ..., "data"?: {...}}')
        except RecursionError:
            return _bad("the JSON is nested too deeply; send flat data values")
        return await run_in_threadpool(self._api_record, payload)

    def _authorized(self, request: Request) -> bool:
        if not self.api_token:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.api_token.encode())

    def _api_record(self, payload: Any) -> Response:
        try:
            email, name, at, data = self._parse_event(payload)
        except InputError as exc:
            return _bad(str(exc))
        store = self.stores.get()
        now = clock.now()
        try:
            address = contacts.normalize_email(email)
            if contacts.is_forgotten(store, address):
                return JSONResponse({"error": f"{address} asked to be forgotten: nothing recorded"}, status_code=409)
            event_id, created = recording.record_posted_event(store, address, name, at, data, now)
        except InputError as exc:
            return _bad(str(exc))
        answer: dict[str, Any] = {"id": event_id, "contact_created": created}
        warnings = trigger_data.warnings_for(self.project, name, data)
        if warnings:
            answer["warnings"] = warnings
        return JSONResponse(answer, status_code=201)

    def _parse_event(self, payload: Any) -> tuple[str, str, datetime | None, dict[str, Any]]:
        if not isinstance(payload, dict):
            raise InputError('expected a JSON object {"email", "name", "at"?, "data"?}')
        unknown = sorted(set(payload) - {"email", "name", "at", "data"})
        if unknown:
            raise InputError(f"unknown field(s) {', '.join(unknown)} (expected email, name, at, data)")
        email, name = payload.get("email"), payload.get("name")
        if not isinstance(email, str) or not email.strip():
            raise InputError("missing field 'email' (text)")
        if not isinstance(name, str) or not name.strip():
            raise InputError("missing field 'name' (text): the event's name, e.g. inscription_finalisee")
        if name.strip() in _RESERVED:
            raise InputError(f"{name.strip()!r} is recorded by edumail itself and cannot be posted")
        data = payload.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError("'data' must be a JSON object")
        eventdata.check_text(email, "email")
        eventdata.check_text(name, "name")
        eventdata.check(data)
        at = payload.get("at")
        when = None
        if at is not None:
            if not isinstance(at, str):
                raise InputError("'at' must be an ISO 8601 text, e.g. 2026-12-01T09:00")
            try:
                when = clock.parse_iso(at, self.tz)
            except InputError as exc:
                raise InputError(f"'at': {exc}") from None
        return email, name.strip(), when, data

    async def api_session(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse(
                {"error": "missing or wrong bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            payload = json.loads(await request.body() or b"", parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError):
            return _bad('the body is not JSON: send {"id": ..., "start"?: ..., "end"?: ..., "lieu"?: ...}')
        return await run_in_threadpool(self._api_session, payload)

    def _api_session(self, payload: Any) -> Response:
        try:
            session_id, values, reason = sessions.from_json(payload, self.tz)
            store, now = self.stores.get(), clock.now()
            change = sessions.upsert(store, session_id, values, now=now, source="api", reason=reason)
        except InputError as exc:
            return _bad(str(exc))
        body = {"id": session_id, "created": change.created, "changed": change.changed, "learners": change.learners}
        return JSONResponse(body, status_code=201 if change.created else 200)

    # --- health ------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return await run_in_threadpool(self._health)

    def _health(self) -> Response:
        self.stores.get().scalar("SELECT 1")
        return PlainTextResponse("ok\n")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _safe_url(url: object) -> bool:
    return isinstance(url, str) and url.lower().startswith(("http://", "https://", "mailto:", "tel:"))


def _page(body: str, status: int = 200) -> HTMLResponse:
    headers = {
        **NO_CACHE,
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(body, status_code=status, headers=headers)


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def _form(request: Request) -> dict[str, str]:
    """The posted form (urlencoded or multipart) as text fields; {} for anything else."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        body = await request.body()
        return {"List-Unsubscribe": "One-Click"} if b"List-Unsubscribe=One-Click" in body else {}
    try:
        form = await request.form(max_files=0, max_fields=20)
    except BodyTooLarge:
        raise
    except Exception:  # noqa: BLE001 - a malformed form is just an empty one
        return {}
    return {key: value for key, value in form.items() if isinstance(value, str)}


@contextmanager
def _unless_busy(store: Store, what: str, mail: dict[str, Any]) -> Iterator[None]:
    """Record an open or a click if the database takes it soon; else the person still gets the pixel or the link."""
    try:
        with store.waiting(min(TRACK_WAIT, store.busy_ms / 1000)):
            yield
    except sqlite3.OperationalError as exc:
        if not (dbfault.is_busy(exc) or dbfault.is_full(exc)):
            raise
        log.warning("%s of mail %s not recorded: %s", what, mail["id"], dbfault.describe(exc))


async def _server_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, sqlite3.OperationalError) and dbfault.is_busy(exc):
        log.warning("%s %s: %s", request.method, request.url.path, dbfault.describe(exc))
        return PlainTextResponse(
            "busy: try again in a moment\n", status_code=503, headers={"Retry-After": str(BUSY_RETRY_AFTER)}
        )
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return PlainTextResponse("internal error: the problem was logged on the server\n", status_code=500)


async def _edumail_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return PlainTextResponse("service unavailable: the problem was logged on the server\n", status_code=503)


async def _body_too_large(request: Request, exc: Exception) -> Response:
    return too_large(request.url.path)


def create_app(project: Project) -> Starlette:
    """The tracking server's ASGI app for `project` (reads the key and API token now)."""
    tracker = Tracker(project)
    choices = web_preferences.PreferenceRoutes(project, tracker.stores.get, tracker.keys)
    provider_webhooks = ProviderWebhooks(project, tracker.stores.get)
    Handler = Callable[[Request], Awaitable[Response]]
    routes: list[tuple[str, Handler, list[str]]] = [
        ("/o/{token}", tracker.open_pixel, ["GET"]),
        ("/c/{token}", tracker.click, ["GET"]),
        ("/u/{token}", choices.unsubscribe, ["GET", "POST"]),
        ("/p/{token}", choices.preferences, ["GET", "POST"]),
        ("/k/{token}", tracker.confirm, ["GET", "POST"]),
        ("/api/events", tracker.api_event, ["POST"]),
        ("/api/sessions", tracker.api_session, ["POST"]),
        ("/healthz", tracker.healthz, ["GET"]),
        ("/webhooks/{provider}/{secret}", provider_webhooks.receive, ["POST"]),
        ("/f/{name}", web_forms.FormRoutes(project, tracker.stores.get).form, ["GET", "POST"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        tracker.stores.close()

    app = Starlette(
        routes=[Route(path, handler, methods=methods) for path, handler, methods in routes],
        exception_handlers={
            Exception: _server_error,
            EdumailError: _edumail_error,
            BodyTooLarge: _body_too_large,
        },
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.state.tracker = tracker
    app.state.provider_webhooks = provider_webhooks
    return app
