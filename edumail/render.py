"""Templates -> mails: front matter, a Jinja sandbox, layouts, French dates, CSS inlining, the text part.

`render()` is pure: no database, no network, no clock (`now` is given). Every
mistake in a template becomes a RenderError `templates/NAME.html:LINE: ...`.
This module owns what a template may use (the constants below); the sandbox
is edumail.render_sandbox, the date filters edumail.render_dates, the page
around a body edumail.render_page. Static checks and sample data
(edumail.render_check) build on this module, never the reverse.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import css_inline
import jinja2
from jinja2.loaders import split_template_path
from markupsafe import Markup

from edumail import render_sandbox as sandbox
from edumail import template_files, yamlfile
from edumail.errors import ConfigError, NotFound, RenderError
from edumail.htmlpage import style_after_charset
from edumail.htmltext import html_to_text
from edumail.render_dates import DateFormatter
from edumail.render_page import document, insert_preheader, one_line
from edumail.render_sandbox import Environment, Undefined, Vars, default_filter
from edumail.settings import Settings
from edumail.typography import elide_filter, french_spacing, french_spacing_html

# What a template may use.
CONTACT_FIELDS = ("email", "first_name", "last_name", "stage", "tags", "consent", "timezone")
SENDER_FIELDS = ("name", "email", "reply_to")
GLOBALS = ("contact", "event", "sender", "now", "unsubscribe_url", "preferences_url")
# Variables edumail passes to some sends only, through render(extra=...).
EXTRAS = ("confirm_url", "content", "topic", "session")
LAYOUT_VARIABLES = ("content", "subject", "preheader")
FRONT_MATTER_KEYS = ("subject", "preheader", "layout", "attachments")
LAYOUTS_DIR = template_files.LAYOUTS_DIR
MAX_TEMPLATE_BYTES = 1_000_000  # per file under templates/ (render bombs, issue 12)

_NAME = template_files.NAME
_EVENT_DOC = re.compile(r"\{#-?\s*event\s*:([^\n#]*)")


class _Loader(jinja2.BaseLoader):
    """Files under templates/ (layouts, .txt parts, includes), named `templates/...` in errors."""

    def __init__(self, library: TemplateLibrary) -> None:
        self.library = library

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        path = self.library.dir.joinpath(*split_template_path(template))
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            raise jinja2.TemplateNotFound(template) from None
        if not path.is_file():
            raise jinja2.TemplateNotFound(template)
        shown = self.library.display(path)
        return read_text(path, shown), shown, lambda: _mtime(path) == mtime


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def read_text(path: Path, shown: str) -> str:
    """A template file's text; too big, or not UTF-8 -> RenderError (at the line of the bad byte)."""
    size = path.stat().st_size
    if size > MAX_TEMPLATE_BYTES:
        raise RenderError(
            shown,
            0,
            f"the file is {size / 1_000_000:.1f} MB, more than the {MAX_TEMPLATE_BYTES // 1_000_000} MB a template "
            "may have: a mail that large is clipped or refused; put long content on a web page and link to it",
        )
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise RenderError(shown, line, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None


@dataclass
class Template:
    """One parsed mail template: front matter, body source and compiled parts."""

    name: str
    file: str
    path: Path
    subject: str
    preheader: str
    layout: str | None
    body: str
    lines: dict[str, int]
    text_name: str | None
    compiled: dict[str, jinja2.Template] = field(repr=False)
    key: tuple[Any, ...] = field(repr=False)
    attachments: tuple[str, ...] = ()  # front matter entries (Jinja), files under files/

    @property
    def documented_event_fields(self) -> list[str]:
        """Names listed in the `{# event: a, b #}` comment, in order."""
        found = _EVENT_DOC.search(self.body)
        if not found:
            return []
        return [n.strip() for n in re.split(r"[,\s]+", found.group(1)) if n.strip().isidentifier()]


@dataclass(frozen=True)
class Rendered:
    """A rendered mail: what is sent, before transport headers and tracking."""

    template: str
    subject: str
    preheader: str
    html: str
    text: str
    attachments: tuple[str, ...] = ()  # paths under files/, rendered for this mail


class TemplateLibrary:
    """The templates/ folder of a project: parsed, compiled and cached templates."""

    def __init__(self, templates_dir: Path, settings: Settings) -> None:
        self.dir = Path(templates_dir)
        self.settings = settings
        self.tz = settings.tz
        self.sender = Vars(
            "sender",
            {"name": settings.sender.name, "email": settings.sender.email, "reply_to": settings.sender.reply_to},
        )
        self.prefix = f"{self.dir.name}/"
        self.env = _environment(self)
        self.inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        self._cache: dict[str, Template] = {}
        self._stamps: dict[str, tuple[str, str]] = {}
        self.dates = DateFormatter(settings)

    # --- files ----------------------------------------------------------------

    def display(self, path: Path) -> str:
        """`templates/NAME.html` for a file of this library (as shown in messages)."""
        try:
            return self.prefix + path.relative_to(self.dir).as_posix()
        except ValueError:
            return str(path)

    def names(self) -> list[str]:
        """Template names (templates/NAME.html), layouts excluded."""
        return template_files.names(self.dir)

    def misnamed(self) -> list[Path]:
        """Template files whose name cannot be a template name (spaces, symbols)."""
        return template_files.misnamed(self.dir)

    def layouts(self) -> list[str]:
        """Layout names (templates/layouts/NAME.html)."""
        return template_files.layouts(self.dir)

    def exists(self, name: str) -> bool:
        """Is there a templates/NAME.html?"""
        return bool(_NAME.match(name)) and (self.dir / f"{name}.html").is_file()

    def get(self, name: str) -> Template:
        """The parsed template NAME, from the cache unless its files changed."""
        paths = self._stamps.get(name)
        if paths is None:
            if not _NAME.match(name):
                raise self._unknown(name)
            paths = self._stamps[name] = (str(self.dir / f"{name}.html"), str(self.dir / f"{name}.txt"))
        try:
            stat = os.stat(paths[0])
        except OSError:
            raise self._unknown(name) from None
        try:
            text_stamp: int | None = os.stat(paths[1]).st_mtime_ns
        except OSError:
            text_stamp = None
        key = (stat.st_mtime_ns, stat.st_size, text_stamp)
        cached = self._cache.get(name)
        if cached is not None and cached.key == key:
            return cached
        template = self._parse(name, Path(paths[0]), key)
        self._cache[name] = template
        return template

    def _unknown(self, name: str) -> NotFound:
        names = self.names()
        hint = yamlfile.did_you_mean(name, names)
        have = ", ".join(names) if names else "no templates"
        return NotFound(f"unknown template {name!r}{hint} ({self.prefix} has: {have})")

    def _parse(self, name: str, path: Path, key: tuple[Any, ...]) -> Template:
        shown = self.display(path)
        meta, lines, body = split_front_matter(read_text(path, shown), shown)
        compiled = {"body": self.compile(body, f"{name}.html", shown)}
        subject = meta.get("subject", "")
        if not subject:
            raise RenderError(shown, 1, "no subject: start the file with a front matter (---, subject: ..., ---)")
        compiled["subject"] = self.compile(_pad(subject, lines["subject"]), f"{name}.html#subject", shown)
        preheader = meta.get("preheader", "")
        if preheader:
            compiled["preheader"] = self.compile(_pad(preheader, lines["preheader"]), f"{name}.html#preheader", shown)
        layout = _layout_name(meta["layout"]) if meta.get("layout") else None
        text_name = f"{name}.txt" if key[2] is not None else None
        if text_name:
            compiled["text"] = self._load(text_name, shown, 0)
        files = tuple(json.loads(meta["attachments"])) if meta.get("attachments") else ()
        for index, entry in enumerate(files):
            where = _pad(entry, lines["attachments"])
            compiled[f"attachment:{index}"] = self.compile(where, f"{name}.html#attachments", shown)
        return Template(
            name, shown, path, subject, preheader, layout, body, lines, text_name, compiled, key, attachments=files
        )

    def compile(self, source: str, name: str, shown: str) -> jinja2.Template:
        """Compile template source; a syntax error becomes RenderError at its line."""
        try:
            code = self.env.compile(source, name=name, filename=shown)
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(shown, exc.lineno, f"syntax error: {exc.message}") from None
        return self.env.template_class.from_code(self.env, code, self.env.make_globals(None))

    def _load(self, name: str, shown: str, line: int) -> jinja2.Template:
        """A file template (layout, .txt part) through the Jinja cache."""
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound:
            if name.startswith(LAYOUTS_DIR + "/"):
                have = ", ".join(self.layouts()) or "no layouts"
                wanted = name[len(LAYOUTS_DIR) + 1 : -len(".html")]
                raise RenderError(
                    shown, line, f"unknown layout {wanted!r} ({self.prefix}{LAYOUTS_DIR}/ has: {have})"
                ) from None
            raise RenderError(shown, line, f"no file {self.prefix}{name}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(exc.filename or shown, exc.lineno, f"syntax error: {exc.message}") from None

    def layout_template(self, template: Template) -> jinja2.Template | None:
        """The compiled layout of `template`, if it has one."""
        if template.layout is None:
            return None
        return self._load(f"{LAYOUTS_DIR}/{template.layout}.html", template.file, template.lines.get("layout", 1))

    def documented_event_fields(self, name: str) -> list[str]:
        """Event fields listed in the `{# event: ... #}` comment of template NAME."""
        return self.get(name).documented_event_fields

    # --- rendering ------------------------------------------------------------

    def context(
        self,
        *,
        contact: dict[str, Any],
        event: dict[str, Any] | None,
        now: datetime,
        unsubscribe_url: str,
        preferences_url: str,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The variables a template sees."""
        context = dict(self.env.globals)
        if extra:
            context.update(extra)
        context.update(
            contact=contact_vars(contact),
            event=Vars("event", event or {}),
            sender=self.sender,
            now=now,
            unsubscribe_url=unsubscribe_url,
            preferences_url=preferences_url,
        )
        return context

    def render_template(self, template: Template, context: dict[str, Any]) -> Rendered:
        """Render a parsed template with a context from `context()`."""
        compiled = template.compiled
        subject = one_line(self.run(compiled["subject"], context, template.file))
        preheader = one_line(self.run(compiled["preheader"], context, template.file)) if template.preheader else ""
        body = self.run(compiled["body"], context, template.file)
        if self.dates.french:
            preheader = french_spacing(preheader)
        layout = self.layout_template(template)
        if layout is not None:
            page_context = dict(context, content=Markup(body.strip()), subject=subject, preheader=preheader)
            page = self.run(layout, page_context, template.file)
        elif "<html" in body[:1000].lower():
            page = body
        else:
            page = document(body, subject)
        if self.dates.french:
            page = french_spacing_html(page)
        if "text" in compiled:
            text = self.run(compiled["text"], context, template.file).strip() + "\n"
        else:
            text = html_to_text(page)
        if self.dates.french:
            text = french_spacing(text)
        try:
            html = style_after_charset(self.inliner.inline(page))
        except (css_inline.InlineError, ValueError) as exc:
            raise RenderError(template.file, 0, f"cannot inline the CSS: {exc}") from None
        html = insert_preheader(html, preheader)  # after inlining: it is styled already, and not parsed again
        files = tuple(  # an entry that renders empty ({% if %} false) adds no file
            path
            for i in range(len(template.attachments))
            if (path := one_line(self.run(compiled[f"attachment:{i}"], context, template.file)))
        )
        return Rendered(template.name, subject, preheader, html, text, files)

    def run(self, compiled: jinja2.Template, context: dict[str, Any], shown: str) -> str:
        """Render one compiled template; any failure becomes RenderError at the template line."""
        return sandbox.run(self.env, compiled, context, shown, self.prefix)


def _environment(library: TemplateLibrary) -> Environment:
    env = Environment(
        loader=_Loader(library),
        undefined=Undefined,
        autoescape=lambda name: name is None or name.endswith(".html"),
        auto_reload=True,
        cache_size=1000,
        keep_trailing_newline=True,
    )

    @jinja2.pass_context
    def date_filter(context: Any, value: Any, format: str | None = None, tz: str | None = None) -> str:
        return library.dates.format(context, value, format, tz, with_time=False)

    @jinja2.pass_context
    def datetime_filter(context: Any, value: Any, format: str | None = None, tz: str | None = None) -> str:
        return library.dates.format(context, value, format, tz, with_time=True)

    env.filters.update(date=date_filter, datetime=datetime_filter, default=default_filter, d=default_filter)
    env.filters.update(de=elide_filter, elide=elide_filter)
    return env


def contact_vars(contact: dict[str, Any]) -> Vars:
    """A contact as templates see it: built-in fields, then custom fields flattened in."""
    values = Vars("contact")
    custom = contact.get("fields")
    if isinstance(custom, str):
        try:
            custom = json.loads(custom)
        except ValueError:
            custom = None
    if isinstance(custom, dict):
        values.update(custom)
    values.update((k, v) for k, v in contact.items() if k != "fields")
    for name in CONTACT_FIELDS:
        values.setdefault(name, [] if name == "tags" else None if name == "timezone" else "")
    return values


def split_front_matter(text: str, shown: str) -> tuple[dict[str, str], dict[str, int], str]:
    """(front matter, line of each key, body) with the body padded so its lines match the file."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, {}, text
    for end in range(1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            break
    else:
        raise RenderError(
            shown, 1, "the front matter opened by --- on line 1 is never closed (add a --- line after it)"
        )
    source = "\n" + "\n".join(lines[1:end])
    try:
        data = yamlfile.loads(source, shown)
    except ConfigError as exc:
        first = exc.problems[0]
        hint = " (put values containing {{ ... }} in quotes)" if "{" in source else ""
        raise RenderError(shown, first.line or 1, f"front matter: {first.message}{hint}") from None
    except TypeError:  # `subject: {{ x }}` is a YAML mapping used as a key
        line = next((n for n, text in enumerate(lines[1:end], start=2) if "{" in text), 2)
        raise RenderError(
            shown, line, "front matter: not valid YAML (put values containing {{ ... }} in quotes)"
        ) from None
    if data is None:
        data = yamlfile.YDict()
    if not isinstance(data, yamlfile.YDict):
        raise RenderError(shown, 2, "front matter: expected keys and values (subject:, preheader:, layout:)")
    meta: dict[str, str] = {}
    where: dict[str, int] = {}
    for key, value in data.items():
        line = data.line_of(key)
        if key not in FRONT_MATTER_KEYS:
            hint = yamlfile.did_you_mean(str(key), FRONT_MATTER_KEYS)
            raise RenderError(
                shown,
                line,
                f"unknown front matter key {key!r}{hint} (expected subject, preheader, layout, attachments)",
            )
        if value is None:
            continue
        if key == "attachments":
            meta[key], where[key] = _attachment_list(value, shown, line), line
            continue
        if isinstance(value, (dict, list)) or isinstance(value, bool):
            hint = " (put values containing {{ ... }} in quotes)" if isinstance(value, dict) else ""
            raise RenderError(shown, line, f"{key}: expected text{hint}")
        meta[key] = str(value)
        where[key] = line
    body = "\n" * (end + 1) + "\n".join(lines[end + 1 :])
    return meta, where, body


def _attachment_list(value: Any, shown: str, line: int) -> str:
    """`attachments:` as a list of paths (or one path), kept as JSON text in the front matter."""
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not all(isinstance(e, str) and e.strip() for e in entries):
        raise RenderError(shown, line, "attachments: expected a list of paths under files/ (quote any {{ ... }})")
    return json.dumps([e.strip() for e in entries])


def _layout_name(value: str) -> str:
    name = value.strip()
    if name.startswith(LAYOUTS_DIR + "/"):
        name = name[len(LAYOUTS_DIR) + 1 :]
    return name[: -len(".html")] if name.endswith(".html") else name


def _pad(source: str, line: int) -> str:
    """Source preceded by blank lines so Jinja's line numbers are the file's."""
    return "\n" * max(line - 1, 0) + source


# --- the public functions ---------------------------------------------------


def render(
    library: TemplateLibrary,
    name: str,
    *,
    contact: dict[str, Any],
    event: dict[str, Any],
    now: datetime,
    unsubscribe_url: str,
    preferences_url: str,
    extra: dict[str, Any] | None = None,
) -> Rendered:
    """Render template NAME for one contact and trigger event (pure: no I/O beyond templates/)."""
    template = library.get(name)
    context = library.context(
        contact=contact,
        event=event,
        now=now,
        unsubscribe_url=unsubscribe_url,
        preferences_url=preferences_url,
        extra=extra,
    )
    return library.render_template(template, context)


__all__ = [
    "Rendered",
    "Template",
    "TemplateLibrary",
    "html_to_text",
    "insert_preheader",
    "render",
]
