"""What templates may use, checked without sending anything: variables, the sandbox, layouts; and sample data.

`check_templates` reads the templates' syntax trees: every `contact.X`,
`event.X` and top-level name is compared with what a render will provide.
A use under `| default(...)` or tested with `is defined` is optional and never
a problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from edumail.errors import EdumailError, Problem, RenderError, RenderLimitError
from edumail.render import (
    CONTACT_FIELDS,
    EXTRAS,
    GLOBALS,
    LAYOUT_VARIABLES,
    LAYOUTS_DIR,
    SENDER_FIELDS,
    TemplateLibrary,
    read_text,
)

_OPTIONAL_FILTERS = ("default", "d")
_OPTIONAL_TESTS = ("defined", "undefined")


@dataclass(frozen=True)
class Use:
    """A variable read by a template: its path (`("event", "lieu")`), line, and whether it may be missing."""

    path: tuple[str, ...]
    line: int
    optional: bool

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def _path(node: nodes.Node) -> tuple[str, ...] | None:
    """`event.lieu` / `event["lieu"]` -> ("event", "lieu"); None for anything computed."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        base = _path(node.node)
        return (*base, node.attr) if base else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        base = _path(node.node)
        return (*base, node.arg.value) if base else None
    return None


def _walk(
    node: nodes.Node, optional: bool, uses: list[Use], refused: list[tuple[int, str]], tested: set[tuple]
) -> None:
    if isinstance(node, nodes.Getattr) and node.attr.startswith("__"):
        refused.append((node.lineno, node.attr))
    path = _path(node)
    if path is not None:
        uses.append(Use(path, node.lineno, optional))
        refused.extend((node.lineno, part) for part in path[1:] if part.startswith("__"))
        return
    if isinstance(node, nodes.Filter) and node.name in _OPTIONAL_FILTERS and node.node is not None:
        _walk(node.node, True, uses, refused, tested)
        for child in [*node.args, *node.kwargs]:
            _walk(child, optional, uses, refused, tested)
        return
    if isinstance(node, nodes.Test) and node.name in _OPTIONAL_TESTS:
        tested_path = _path(node.node)
        if tested_path:
            tested.add(tested_path)
        _walk(node.node, True, uses, refused, tested)
        return
    for child in node.iter_child_nodes():
        _walk(child, optional, uses, refused, tested)


def uses_of(ast: nodes.Template) -> tuple[list[Use], list[tuple[int, str]]]:
    """Every variable read in a parsed template, and every attempt to reach a `__dunder__`."""
    uses: list[Use] = []
    refused: list[tuple[int, str]] = []
    tested: set[tuple] = set()
    _walk(ast, False, uses, refused, tested)
    local = set(_root_names(uses)) - meta.find_undeclared_variables(ast)
    result = []
    for use in uses:
        if use.path[0] in local:
            continue
        optional = use.optional or any(use.path[: len(t)] == t for t in tested)
        result.append(Use(use.path, use.line, optional))
    return result, refused


def _root_names(uses: list[Use]) -> list[str]:
    return [u.path[0] for u in uses]


def _parse(library: TemplateLibrary, source: str, shown: str) -> nodes.Template:
    try:
        return library.env.parse(source, filename=shown)
    except TemplateSyntaxError as exc:
        raise RenderError(shown, exc.lineno, f"syntax error: {exc.message}") from None


def template_sources(library: TemplateLibrary, name: str) -> list[tuple[str, str]]:
    """(source, file) of each part of template NAME, lines matching the files."""
    template = library.get(name)
    sources = [(template.body, template.file)]
    for key in ("subject", "preheader"):
        value = getattr(template, key)
        if value:
            sources.append(("\n" * (template.lines[key] - 1) + value, template.file))
    if template.text_name:
        path = library.dir / template.text_name
        shown = library.display(path)

        sources.append((read_text(path, shown), shown))
    return sources


def variables(library: TemplateLibrary, name: str) -> set[str]:
    """Dotted names template NAME reads (`contact.first_name`, `event.lieu`, `confirm_url`...)."""
    found: set[str] = set()
    for source, shown in template_sources(library, name):
        uses, _ = uses_of(_parse(library, source, shown))
        found.update(u.dotted for u in uses)
    return found


def required_event_fields(library: TemplateLibrary, name: str) -> set[str]:
    """Event fields template NAME cannot render without (read with no `default` and no `is defined`)."""
    found: set[str] = set()
    for source, shown in template_sources(library, name):
        uses, _ = uses_of(_parse(library, source, shown))
        found.update(u.path[1] for u in uses if u.path[0] == "event" and len(u.path) > 1 and not u.optional)
    return found


def _check_source(
    library: TemplateLibrary,
    source: str,
    shown: str,
    *,
    roots: set[str],
    contact: set[str],
    event: set[str] | None,
    session: set[str] | None = None,
) -> list[Problem]:
    try:
        uses, refused = uses_of(_parse(library, source, shown))
    except RenderError as exc:
        return [exc.problem]
    problems = [
        Problem(shown, line, f"refused by the sandbox: templates cannot reach Python internals ({attr!r})")
        for line, attr in refused
    ]
    for use in uses:
        if use.optional:
            continue
        message = _unknown(use, roots, contact, event, session)
        if message:
            problems.append(Problem(shown, use.line, message))
    return problems


def _unknown(
    use: Use, roots: set[str], contact: set[str], event: set[str] | None, session: set[str] | None = None
) -> str | None:
    """Why a variable read cannot be satisfied at render time, or None."""
    from edumail.yamlfile import did_you_mean

    root, rest = use.path[0], use.path[1:]
    if root not in roots:
        shown = ", ".join(r for r in GLOBALS + EXTRAS if r in roots)
        return f"undefined variable {root!r}{did_you_mean(root, roots)} (templates can use: {shown})"
    if not rest:
        return None
    name = rest[0]
    if root == "contact" and name not in contact:
        return (
            f"undefined variable 'contact.{name}'{did_you_mean(name, contact)} (contacts have: "
            f"{', '.join(sorted(contact))}; write `| default(...)` if it is optional)"
        )
    if root == "event" and event is not None and name not in event:
        carry = ", ".join(sorted(event)) or "no data"
        return (
            f"undefined variable 'event.{name}'{did_you_mean(name, event)} (the events that trigger this "
            f"template carry: {carry}; write `| default(...)` if it is optional)"
        )
    if root == "session" and session is not None and name not in session:
        return (
            f"undefined variable 'session.{name}'{did_you_mean(name, session)} (sessions have: "
            f"{', '.join(sorted(session))}; write `| default(...)` if it is optional)"
        )
    if root == "sender" and name not in SENDER_FIELDS:
        return (
            f"undefined variable 'sender.{name}'{did_you_mean(name, SENDER_FIELDS)} (sender has: name, email, reply_to)"
        )
    return None


def _layout_problems(library: TemplateLibrary, layouts: list[str], roots: set[str], contact: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for layout in layouts:
        path = library.dir / LAYOUTS_DIR / f"{layout}.html"
        shown = library.display(path)
        try:
            source = read_text(path, shown)
        except RenderError as exc:
            problems.append(exc.problem)
            continue
        problems += _check_source(library, source, shown, roots=roots, contact=contact, event=None)
    return problems


def check_templates(
    library: TemplateLibrary,
    *,
    contact_fields: set[str],
    event_fields: dict[str, set[str]] | None = None,
    session_fields: set[str] | None = None,
) -> list[Problem]:
    """Every problem in templates/: syntax, front matter, encoding, layouts, undefined variables, sandbox escapes.

    `session.X` must be a field of the sessions model or a custom field some session has (`session_fields`)."""
    from edumail.sessions import VIEW_FIELDS

    contact = set(CONTACT_FIELDS) | set(contact_fields)
    session = set(VIEW_FIELDS) | set(session_fields or ())
    roots = set(GLOBALS) | set(EXTRAS) | set(library.env.globals)
    layouts = library.layouts()
    problems = _layout_problems(library, layouts, roots | set(LAYOUT_VARIABLES), contact)
    for path in library.misnamed():
        problems.append(
            Problem(
                library.display(path),
                0,
                "not a usable template name: use letters, digits, -, _ and . (rename the file)",
            )
        )
    names = library.names()
    for name in names:
        try:
            template = library.get(name)
            sources = template_sources(library, name)
        except RenderError as exc:
            problems.append(exc.problem)
            continue
        if template.layout is not None and template.layout not in layouts:
            have = ", ".join(layouts) or "no layouts"
            problems.append(
                Problem(
                    template.file,
                    template.lines.get("layout", 1),
                    f"unknown layout {template.layout!r} ({library.prefix}{LAYOUTS_DIR}/ has: {have})",
                )
            )
        event = set(event_fields[name]) if event_fields and name in event_fields else None
        for source, shown in sources:
            problems += _check_source(
                library, source, shown, roots=roots, contact=contact, event=event, session=session
            )
    for path in sorted(library.dir.glob("*.txt")) if library.dir.is_dir() else []:
        if path.stem not in names:
            problems.append(Problem(library.display(path), 0, f"text part without a template: add {path.stem}.html"))
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.file, p.line, p.message))


def bound_problems(library: TemplateLibrary, now: datetime) -> list[Problem]:
    """Templates that stop at a render bound (time, size) with the sample data: render bombs.

    Only the bounds are reported here: what else a sample render may stumble on (a variable the sample
    lacks) is the static check's to say, from the templates' syntax trees."""
    from edumail.render import render

    problems = []
    for name in library.names():
        try:
            render(
                library,
                name,
                contact=sample_contact(),
                event=sample_event(name),
                now=now,
                unsubscribe_url="https://example.invalid/u/sample",
                preferences_url="https://example.invalid/p/sample",
            )
        except RenderLimitError as exc:
            problems.append(exc.problem)
        except EdumailError:
            continue
    return problems


# --- sample data ------------------------------------------------------------

_SAMPLE_CONTACT: dict[str, Any] = {
    "email": "camille.martin@example.org",
    "first_name": "Camille",
    "last_name": "Martin",
    "stage": "prospect",
    "tags": ["webinaire-2026", "bureautique"],
    "consent": "opted_in",
    "timezone": "Europe/Paris",
    "ville": "Lyon",
    "entreprise": "Atelier Martin",
}

_SAMPLE_EVENT: dict[str, Any] = {
    "formation": "Excel : tableaux croisés dynamiques",
    "session_start": "2026-12-01T09:00:00",
    "session_end": "2026-12-02T17:00:00",
    "lieu": "Centre de formation, 12 rue de la République, 69002 Lyon",
    "formateur": "Sophie Durand",
    "duree": "2 jours (14 heures)",
    "lien_programme": "https://centre.example/formations/excel-tcd",
    "lien_inscription": "https://centre.example/inscription/excel-tcd",
    "lien_enquete": "https://centre.example/enquete/excel-tcd",
    "lien_ressources": "https://centre.example/ressources/excel-tcd",
    "lien_catalogue": "https://centre.example/catalogue",
    "lien_rdv": "https://centre.example/rendez-vous",
}

_SAMPLE_BY_TEMPLATE: dict[str, dict[str, Any]] = {
    # Session journeys: the event names the session; the mail reads it as `session.*` (`sample_session`).
    **{
        name: {"session": "EXCEL-2026-12-LYON"}
        for name in (
            "confirmation-inscription",
            "rappel-session",
            "enquete-satisfaction",
            "convocation",
            "evaluation-a-chaud",
            "evaluation-a-froid",
        )
    },
    "changement-de-date": {
        "session": "EXCEL-2026-12-LYON",
        "field": "start",
        "from": "2026-12-07T09:30:00+01:00",
        "to": "2026-12-14T09:30:00+01:00",
    },
    "session-annulee": {"session": "EXCEL-2026-12-LYON", "reason": "formatrice malade"},
    "absence": {"session": "EXCEL-2026-12-LYON", "date": "2026-12-14"},
    "double-optin": {},
    "bienvenue": {"lien_catalogue": _SAMPLE_EVENT["lien_catalogue"]},
    "newsletter": {},
}


def sample_contact() -> dict[str, Any]:
    """A plausible learner, for previews and the demo."""
    contact = dict(_SAMPLE_CONTACT)
    contact["tags"] = list(contact["tags"])
    return contact


def sample_session() -> dict[str, Any]:
    """What `session.*` reads in a session journey's mail (as `sessions.view` gives it), for renders without a store."""
    return {
        "salle": "Salle B12",
        "id": "EXCEL-2026-12-LYON",
        "formation": "Excel perfectionnement",
        "start": "2026-12-14T09:30:00+01:00",
        "end": "2026-12-15T17:00:00+01:00",
        "lieu": "Centre de formation, 12 rue de la République, 69002 Lyon",
        "formateur": "Anne Morel",
        "status": "planned",
        "cancel_reason": "",
        "duree": "2 jours (14 heures)",
        "lien_programme": "https://centre.example/formations/excel-perfectionnement",
        "lien_enquete": "https://centre.example/enquete/excel-perfectionnement",
        "lien_evaluation": "https://centre.example/evaluation/excel-perfectionnement",
        "lien_evaluation_froid": "https://centre.example/evaluation-a-froid/excel-perfectionnement",
    }


def sample_event(name: str) -> dict[str, Any]:
    """Plausible trigger-event data for template NAME (a session, a training, its links)."""
    return dict(_SAMPLE_BY_TEMPLATE.get(name, _SAMPLE_EVENT))
