"""Previews: a template rendered as it would be sent, and a local server showing them all with live reload.

Links that need a signed token cannot be real in a preview: with tracking on
they point at the tracking server with the token `preview` (which it refuses),
otherwise at `#unsubscribe-preview`, `#preferences-preview`, `#confirm-preview`.
"""

from __future__ import annotations

import asyncio
import html
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from edumail import clock
from edumail.errors import EdumailError, InputError, NotFound
from edumail.project import Project
from edumail.render import Rendered, TemplateLibrary, render
from edumail.render_check import sample_contact, sample_event

PREVIEW_TOKEN = "preview"


@dataclass(frozen=True)
class PreviewLinks:
    """The placeholder links a preview shows instead of signed ones."""

    unsubscribe_url: str
    preferences_url: str
    confirm_url: str


def preview_links(project: Project) -> PreviewLinks:
    """Real-looking tracking URLs when tracking.base_url is set, else `#...-preview` anchors."""
    base = project.settings.tracking.base_url
    if base:
        return PreviewLinks(f"{base}/u/{PREVIEW_TOKEN}", f"{base}/p/{PREVIEW_TOKEN}", f"{base}/k/{PREVIEW_TOKEN}")
    return PreviewLinks("#unsubscribe-preview", "#preferences-preview", "#confirm-preview")


def preview_contact(project: Project, email: str | None) -> dict[str, Any]:
    """The contact EMAIL from the store (with its tags), or the sample contact."""
    if email is None:
        return sample_contact()
    store = project.store()
    row = store.contact_by_email(email)
    if row is None:
        raise NotFound(
            f"no contact {email!r} in {project.settings.database} "
            "(check the address, or preview with the sample contact by leaving out --contact)"
        )
    return {**row, "tags": store.tags_of(int(row["id"]))}


def preview(
    project: Project,
    library: TemplateLibrary,
    name: str,
    *,
    contact: dict[str, Any],
    event_data: dict[str, Any] | None = None,
    now: datetime | None = None,
    content: str | None = None,
) -> Rendered:
    """Template NAME rendered for `contact` with the sample event data, overridden by `event_data`
    (and `content`, the HTML of a campaign's Markdown letter, as `send --content` gives it)."""
    links = preview_links(project)
    named = (event_data or {}).get("session")  # `--event-data session=ID`: that stored session
    extra: dict[str, Any] = {"confirm_url": links.confirm_url, "session": sample_session(project, now, named)}
    if content is not None:
        from markupsafe import Markup

        extra["content"] = Markup(content)
    event = {**sample_event(name), **(event_data or {})}
    return render(
        library,
        name,
        contact=contact,
        event=event,
        now=now or clock.now(),
        unsubscribe_url=links.unsubscribe_url,
        preferences_url=links.preferences_url,
        extra=extra,
    )


def sample_session(project: Project, now: datetime | None, session_id: str | None = None) -> dict[str, Any]:
    """What `session.*` shows in a preview: the session named, else the next stored one, else an invented one."""
    from datetime import timedelta

    from edumail import sessions

    if session_id:
        return sessions.view(sessions.require(project.store(), session_id), project.settings.tz)
    moment = now or clock.now()
    upcoming = project.store().list_sessions(since=moment)
    if upcoming:
        return sessions.view(upcoming[0], project.settings.tz)
    day = (moment + timedelta(days=14)).astimezone(project.settings.tz)
    day += timedelta(days=7 - day.weekday() if day.weekday() >= 5 else 0)  # a weekday, two weeks ahead
    start = clock.at_local_time(day, (9, 30), project.settings.tz)
    sample = {
        "id": "EXCEL-2026-12-LYON",
        "formation": "Excel perfectionnement",
        "start": start,
        "end": start + timedelta(days=1, hours=7, minutes=30),
        "lieu": "Centre de formation, 12 rue de la République, Lyon",
        "formateur": "Anne Morel",
        "status": sessions.PLANNED,
        "fields": {
            "salle": "Salle B12",
            "duree": "2 jours (14 heures)",
            "lien_programme": "https://centre.example/formations/excel-perfectionnement",
            "lien_enquete": "https://centre.example/enquete/excel-perfectionnement",
            "lien_evaluation": "https://centre.example/evaluation/excel-perfectionnement",
            "lien_evaluation_froid": "https://centre.example/evaluation-a-froid/excel-perfectionnement",
        },
    }
    return sessions.view(sample, project.settings.tz)


# --- the preview server -----------------------------------------------------


def check_port(host: str, port: int) -> None:
    """InputError when host:port cannot be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another port with --port"
            ) from None


class _Watch:
    """A counter bumped whenever a file under templates/ changes (watchfiles)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.version = 0

    async def run(self, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        self.folder.mkdir(parents=True, exist_ok=True)
        async for _changes in awatch(self.folder, stop_event=stop, debounce=200, step=50, recursive=True):
            self.version += 1


def create_app(project: Project, *, contact_email: str | None = None) -> Starlette:
    """The preview server's ASGI app: every template, desktop and mobile, text part, live reload."""
    library = TemplateLibrary(project.templates_dir, project.settings)
    watch = _Watch(project.templates_dir)

    def rendered(name: str) -> Rendered:
        if not library.exists(name):
            raise NotFound(f"unknown template {name!r}")
        return preview(project, library, name, contact=preview_contact(project, contact_email))

    async def index(request: Request) -> HTMLResponse:
        sections = []
        for name in library.names():
            try:
                sections.append((name, _section(name, rendered(name))))
            except EdumailError as exc:
                sections.append((name, _error_section(name, str(exc))))
        return HTMLResponse(_page(project, sections, watch.version, contact_email))

    async def one(request: Request) -> Response:
        name, kind = request.path_params["name"], request.path_params["kind"]
        try:
            mail = rendered(name)
        except NotFound as exc:
            return PlainTextResponse(str(exc), status_code=404)
        except EdumailError as exc:
            return HTMLResponse(_error_document(str(exc)), status_code=200)
        if kind == "txt":
            return PlainTextResponse(mail.text)
        return HTMLResponse(mail.html)

    async def version(request: Request) -> JSONResponse:
        return JSONResponse({"version": watch.version})

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(watch.run(stop))
        try:
            yield
        finally:
            stop.set()
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass

    routes = [
        Route("/", index),
        Route("/mail/{name}.{kind:str}", one),
        Route("/__version", version),
        Route("/healthz", healthz),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.watch = watch
    return app


def serve(project: Project, *, port: int, contact_email: str | None = None, host: str = "127.0.0.1") -> None:
    """Run the preview server until interrupted (bound to 127.0.0.1)."""
    import uvicorn

    check_port(host, port)
    if contact_email is not None:
        preview_contact(project, contact_email)  # an unknown address fails now, not on every page
    app = create_app(project, contact_email=contact_email)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")


# --- the page ---------------------------------------------------------------

_STYLE = """
body { margin: 0; font-family: system-ui, sans-serif; background: #f3f4f6; color: #111827; }
header { padding: 16px 24px; background: #1f2937; color: #fff; }
header p { margin: 4px 0 0; color: #d1d5db; font-size: 14px; }
nav { padding: 8px 24px; background: #e5e7eb; font-size: 14px; }
nav a { margin-right: 12px; color: #1f4e79; }
section { margin: 24px; padding: 16px 24px; background: #fff; border-radius: 8px; }
h2 { margin: 0 0 8px; font-size: 20px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 0 0 16px; }
dt { font-weight: bold; color: #4b5563; }
.views { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
.views figure { margin: 0; }
figcaption { font-size: 13px; color: #4b5563; margin-bottom: 4px; }
iframe { border: 1px solid #d1d5db; background: #fff; height: 720px; }
pre { white-space: pre-wrap; background: #f9fafb; border: 1px solid #e5e7eb; padding: 12px; max-width: 640px;
      font-size: 13px; }
.error { border-left: 4px solid #b91c1c; }
.error pre { color: #991b1b; }
"""

_RELOAD = """
<script>
(function () {
  var seen = %d;
  function poll() {
    fetch('/__version', {cache: 'no-store'}).then(function (r) { return r.json(); }).then(function (d) {
      if (d.version !== seen) { location.reload(); } else { setTimeout(poll, 500); }
    }).catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 500);
})();
</script>
"""


def _section(name: str, mail: Rendered) -> str:
    e = html.escape
    src = f"/mail/{e(name)}.html"
    return f"""
<section id="{e(name)}">
<h2>{e(name)}</h2>
<dl><dt>Subject</dt><dd>{e(mail.subject)}</dd><dt>Preheader</dt><dd>{e(mail.preheader) or "—"}</dd></dl>
<div class="views">
<figure><figcaption>Desktop (640 px)</figcaption>
<iframe title="{e(name)}, desktop" src="{src}" width="640"></iframe></figure>
<figure><figcaption>Mobile (375 px)</figcaption>
<iframe title="{e(name)}, mobile" src="{src}" width="375"></iframe></figure>
<figure><figcaption>Text part (<a href="/mail/{e(name)}.txt">raw</a>)</figcaption><pre>{e(mail.text)}</pre></figure>
</div>
</section>"""


def _error_section(name: str, message: str) -> str:
    e = html.escape
    return f'<section id="{e(name)}" class="error"><h2>{e(name)}</h2><pre>{e(message)}</pre></section>'


def _error_document(message: str) -> str:
    return f"<!DOCTYPE html><meta charset='utf-8'><pre style='color:#991b1b'>{html.escape(message)}</pre>"


def _page(project: Project, sections: list[tuple[str, str]], version: int, contact_email: str | None) -> str:
    e = html.escape
    who = f"contact {contact_email}" if contact_email else "the sample contact"
    nav = " ".join(f'<a href="#{e(name)}">{e(name)}</a>' for name, _ in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edumail previews: {e(project.settings.sender.name)}</title>
<style>{_STYLE}</style></head>
<body>
<header><strong>edumail previews</strong> · {e(str(project.templates_dir))}
<p>Rendered for {e(who)}. The page reloads when a template changes.</p></header>
<nav>{nav or "No templates yet: add templates/NAME.html"}</nav>
{"".join(body for _, body in sections)}
{_RELOAD % version}
</body></html>"""
