"""`GET/POST /f/NAME` on `edumail serve`: the public signup forms (SPEC 17).

The handler parses and answers; `forms.submit` validates and records. A client
(its address, as `serve` sees it behind the proxy) may post 10 times a minute;
more gets a calm 429 page. A form file with an error keeps only that form
closed (503) and is logged for the staff.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from edumail import clock, form_pages, forms
from edumail.errors import ConfigError, NotFound
from edumail.http_limits import BodyTooLarge

if TYPE_CHECKING:
    from collections.abc import Callable

    from edumail.project import Project
    from edumail.store import Store

log = logging.getLogger("edumail.forms")

POSTS_PER_MINUTE = 10
MAX_FIELDS = 40
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
# The form page may be framed by the centre's own site (an <iframe> of /f/NAME) and posts to itself.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"


class RateLimiter:
    """At most `limit` events per client in any `window`; memory bounded by pruning."""

    def __init__(self, limit: int = POSTS_PER_MINUTE, window: timedelta = timedelta(minutes=1), clients: int = 10_000):
        self.limit, self.window, self.clients = limit, window, clients
        self.seen: dict[str, deque[datetime]] = {}
        self.lock = threading.Lock()

    def allow(self, client: str, now: datetime) -> bool:
        with self.lock:
            times = self.seen.setdefault(client, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            if len(self.seen) > self.clients:
                self._prune(now)
            return True

    def _prune(self, now: datetime) -> None:
        for key in [k for k, v in self.seen.items() if not v or now - v[-1] >= self.window]:
            del self.seen[key]


def html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(
        body, status_code=status, headers={**_NO_STORE, "Content-Security-Policy": _CSP, **(headers or {})}
    )


def too_large() -> Response:
    message = "Le formulaire envoyé est trop volumineux. Vérifiez les champs et réessayez."
    return html(form_pages.calm_page("", "Envoi trop volumineux", message), 413)


class FormRoutes:
    """The /f/NAME handler, bound to one project and the server's per-thread stores."""

    def __init__(self, project: Project, store: Callable[[], Store]):
        self.project = project
        self.store = store
        self.centre = project.settings.sender.name
        self.limiter = RateLimiter()

    async def form(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method != "POST":
            return await run_in_threadpool(self._show, name)
        ip = request.client.host if request.client else "unknown"
        if not self.limiter.allow(ip, clock.now()):
            message = "Vous avez envoyé ce formulaire plusieurs fois en peu de temps. Réessayez dans une minute."
            return html(form_pages.calm_page(self.centre, "Un instant", message), 429, {"Retry-After": "60"})
        fields = await posted(request)
        agent = request.headers.get("user-agent", "")
        return await run_in_threadpool(self._post, name, fields, ip, agent)

    def _load(self, name: str) -> forms.Form | Response:
        try:
            return forms.load_one(self.project, name)
        except NotFound:
            message = "Ce formulaire n’existe pas ou n’existe plus. Vérifiez l’adresse de la page."
            return html(form_pages.calm_page(self.centre, "Formulaire introuvable", message), 404)
        except ConfigError as exc:
            log.error("form %s cannot be shown: %s", name, exc)
            message = "Ce formulaire est momentanément indisponible. Réessayez plus tard."
            return html(form_pages.calm_page(self.centre, "Formulaire indisponible", message), 503)

    def _show(self, name: str) -> Response:
        form = self._load(name)
        if isinstance(form, Response):
            return form
        return html(form_pages.form_page(self.centre, form, f"/f/{name}"))

    def _post(self, name: str, posted: dict[str, str], ip: str, agent: str) -> Response:
        form = self._load(name)
        if isinstance(form, Response):
            return form
        outcome = forms.submit(self.store(), form, posted, ip=ip, user_agent=agent, now=clock.now())
        if outcome.errors:
            return html(form_pages.form_page(self.centre, form, f"/f/{name}", outcome), 400)
        if outcome.ignored:
            log.info("form %s: post not recorded (%s)", name, outcome.ignored)
        return html(form_pages.thanks_page(self.centre, form))


async def posted(request: Request) -> dict[str, str]:
    """The posted fields as text (urlencoded or multipart); {} for any other body."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        await request.body()
        return {}
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    except BodyTooLarge:
        raise
    except Exception:  # noqa: BLE001 - a malformed form, or too many fields, is treated as an empty one
        return {}
    return {key: value for key, value in form.items() if isinstance(value, str)}
