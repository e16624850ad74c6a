"""Public signup forms (SPEC 17): forms/NAME.yaml -> Form, and what a post records.

A post creates or updates the contact without changing its consent, adds the
form's tags, records `subscribed` (data: form, topics) and keeps the proof
(the wording shown, the form as shown, IP, user agent) in `form_signups`. The
double opt-in's confirmation link turns that proof into consent
(`confirm_signup`). Everything a post writes is one transaction.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edumail import contacts, events, topics, yamlfile
from edumail.errors import ConfigError, InputError, NotFound, Problem

if TYPE_CHECKING:
    from edumail.project import Project
    from edumail.store import Store

FOLDER = "forms"
KEYS = ("title", "intro", "fields", "consent", "tags", "topics", "thanks", "button")
FIELD_KEYS = ("name", "label", "required")
HONEYPOT = "website"  # a field people never see; bots fill it
MAX_VALUE = 500  # characters in one posted value
RESEND_AFTER = timedelta(hours=1)  # a second post for an unconfirmed address records nothing before that
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FORM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
_RESERVED = {"stage", "consent", "tags", "timezone", "basis", "topics", HONEYPOT}
LABELS = {"email": "Adresse e-mail", "first_name": "Prénom", "last_name": "Nom"}
AUTOCOMPLETE = {"email": "email", "first_name": "given-name", "last_name": "family-name"}
DEFAULT_THANKS = "Merci ! Un e-mail vient de vous être envoyé : cliquez sur son lien pour confirmer votre inscription."


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    required: bool = False


@dataclass(frozen=True)
class Form:
    name: str
    file: str
    fields: tuple[Field, ...]
    consent: str
    title: str = "Inscription"
    intro: str = ""
    tags: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    thanks: str = DEFAULT_THANKS
    button: str = "Je m’inscris"
    labels: dict[str, str] = field(default_factory=dict)  # topic -> label, from settings

    def snapshot(self) -> dict[str, Any]:
        """The form as people saw it: kept with each signup as proof."""
        shown = asdict(self)
        shown.pop("file")
        return shown


# --- loading ----------------------------------------------------------------------


def files(project: Project) -> dict[str, Path]:
    where = project.root / FOLDER
    if not where.is_dir():
        return {}
    return {p.stem: p for p in sorted([*where.glob("*.yaml"), *where.glob("*.yml")])}


def load_one(project: Project, name: str) -> Form:
    """The form NAME, or NotFound / ConfigError (file:line)."""
    known = files(project)
    if not _FORM_NAME.match(name) or name not in known:
        have = ", ".join(known) or f"none: create {FOLDER}/{name}.yaml"
        raise NotFound(f"unknown form {name!r} ({FOLDER}/ has: {have})")
    path = known[name]
    shown = f"{FOLDER}/{path.name}"
    problems: list[Problem] = []
    form = parse(yamlfile.load(path, shown), name, shown, project.settings.topics, problems)
    if form is None:
        raise ConfigError(problems)
    return form


def check(project: Project) -> list[Problem]:
    """Every problem in forms/*.yaml."""
    problems: list[Problem] = []
    for name, path in files(project).items():
        shown = f"{FOLDER}/{path.name}"
        try:
            data = yamlfile.load(path, shown)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        parse(data, name, shown, project.settings.topics, problems)
    return problems


def _line(raw: Any, key: Any) -> int:
    if isinstance(raw, (yamlfile.YDict, yamlfile.YList)):
        return raw.line_of(key)
    return 1


def _text(raw: Any, key: str, shown: str, problems: list[Problem], default: str | None = None) -> str | None:
    value = raw.get(key, default)
    if value is None:
        problems.append(Problem(shown, 1, f"missing {key}: ({_HELP[key]})"))
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(shown, _line(raw, key), f"{key}: expected a text ({_HELP[key]})"))
        return None
    return value.strip()


_HELP = {
    "title": "the page's heading",
    "intro": "a sentence under the heading",
    "consent": "the sentence shown beside the unticked box, e.g. J'accepte de recevoir la lettre mensuelle",
    "thanks": "the text of the page shown after posting",
    "button": "the button's text",
}


def parse(data: Any, name: str, shown: str, labels: dict[str, str], problems: list[Problem]) -> Form | None:
    """Validate one parsed form file; appends problems and returns None on any."""
    if not isinstance(data, dict):
        problems.append(Problem(shown, getattr(data, "line", 1) or 1, "expected a mapping with fields: and consent:"))
        return None
    before = len(problems)
    for key in data:
        if key not in KEYS:
            hint = yamlfile.did_you_mean(str(key), KEYS)
            problems.append(Problem(shown, _line(data, key), f"unknown key {key!r}{hint} (known: {', '.join(KEYS)})"))
    texts = {
        key: _text(data, key, shown, problems, default)
        for key, default in (("title", "Inscription"), ("intro", None), ("consent", None), ("thanks", DEFAULT_THANKS))
        if key != "intro" or "intro" in data
    }
    button = _text(data, "button", shown, problems, "Je m’inscris")
    fields = _fields(data.get("fields"), shown, _line(data, "fields"), problems)
    tags = _names(data, "tags", shown, problems)
    chosen = _names(data, "topics", shown, problems)
    for topic in chosen:
        if topic not in labels:
            have = ", ".join(labels) or "none: name them under topics: in edumail.yaml"
            problems.append(Problem(shown, _line(data, "topics"), f"unknown topic {topic!r} (topics: {have})"))
    if len(problems) > before or fields is None:
        return None
    return Form(
        name=name,
        file=shown,
        fields=fields,
        consent=str(texts["consent"]),
        title=str(texts["title"]),
        intro=str(texts.get("intro") or ""),
        tags=tags,
        topics=chosen,
        thanks=str(texts["thanks"]),
        button=str(button),
        labels={t: labels[t] for t in chosen},
    )


def _names(data: Any, key: str, shown: str, problems: list[Problem]) -> tuple[str, ...]:
    raw = data.get(key)
    if raw is None:
        return ()
    listed = [raw] if isinstance(raw, str) else raw
    if not isinstance(listed, list) or not all(isinstance(x, str) and x.strip() for x in listed):
        problems.append(Problem(shown, _line(data, key), f"{key}: expected a name or a list of names"))
        return ()
    return tuple(dict.fromkeys(x.strip() for x in listed))


def _fields(raw: Any, shown: str, line: int, problems: list[Problem]) -> tuple[Field, ...] | None:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(shown, line, "fields: expected a list such as [email, first_name, ville]"))
        return None
    result: list[Field] = []
    for index, item in enumerate(raw):
        item_line = _line(raw, index)
        found = _field(item, shown, item_line, problems)
        if found is None:
            continue
        if any(f.name == found.name for f in result):
            problems.append(Problem(shown, item_line, f"field {found.name!r} is listed twice"))
            continue
        result.append(found)
    if not any(f.name == "email" for f in result):
        problems.append(Problem(shown, line, "fields: email is required (the form subscribes an address)"))
        return None
    return tuple(result) if len(result) == len(raw) else None


def _field(item: Any, shown: str, line: int, problems: list[Problem]) -> Field | None:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        problems.append(Problem(shown, line, "a field is a name (first_name) or {name: ville, label: Ville}"))
        return None
    unknown = [k for k in item if k not in FIELD_KEYS]
    if unknown:
        hint = yamlfile.did_you_mean(str(unknown[0]), FIELD_KEYS)
        problems.append(Problem(shown, line, f"unknown key {unknown[0]!r}{hint} (known: {', '.join(FIELD_KEYS)})"))
        return None
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        problems.append(
            Problem(shown, line, f"field {name!r}: expected a field name in lower case (e.g. ville), not {name!r}")
        )
        return None
    label = item.get("label", LABELS.get(name, name.replace("_", " ").capitalize()))
    required = item.get("required", name == "email")
    if not isinstance(label, str) or not label.strip() or not isinstance(required, bool):
        problems.append(Problem(shown, line, f"field {name}: label is a text and required is true or false"))
        return None
    return Field(name, label.strip(), required or name == "email")


# --- a post -----------------------------------------------------------------------


@dataclass
class Outcome:
    """What a post did: `errors` (field -> French message) to show again, or recorded."""

    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    chosen: tuple[str, ...] = ()
    recorded: bool = False
    ignored: str = ""  # why nothing was stored although the page says thanks (honeypot, forgotten)


def validate(form: Form, posted: dict[str, str]) -> Outcome:
    """Check a post against the form; French messages per field, nothing stored."""
    values = {f.name: (posted.get(f.name) or "").strip()[: MAX_VALUE + 1] for f in form.fields}
    outcome = Outcome(values=values)
    if (posted.get(HONEYPOT) or "").strip():
        outcome.ignored = "honeypot"
        return outcome
    errors = outcome.errors
    for f in form.fields:
        if len(values[f.name]) > MAX_VALUE:
            errors[f.name] = f"Ce champ est trop long ({MAX_VALUE} caractères au plus)."
        elif f.required and not values[f.name]:
            errors[f.name] = "Indiquez votre adresse e-mail." if f.name == "email" else "Ce champ est obligatoire."
    if "email" not in errors:
        try:
            values["email"] = contacts.normalize_email(values["email"])
        except InputError:
            errors["email"] = "Cette adresse e-mail ne semble pas valide : vérifiez-la (exemple : nom@domaine.fr)."
    if (posted.get("consent") or "") != "oui":
        errors["consent"] = "Cochez la case pour confirmer votre accord."
    outcome.chosen = form.topics
    if len(form.topics) > 1:
        outcome.chosen = tuple(t for t in form.topics if posted.get(f"topic_{t}") == "oui")
        if not outcome.chosen:
            errors["topics"] = "Choisissez au moins un sujet."
    return outcome


def submit(
    store: Store, form: Form, posted: dict[str, str], *, ip: str | None, user_agent: str, now: datetime
) -> Outcome:
    """Validate and, when valid, record the signup in one transaction."""
    outcome = validate(form, posted)
    if outcome.errors or outcome.ignored:
        return outcome
    address = outcome.values["email"]
    if contacts.is_forgotten(store, address):
        outcome.ignored = "forgotten"
        return outcome
    if _asked_lately(store, address, now):
        outcome.ignored = "already asked within the hour"  # no second confirmation mail to that inbox
        return outcome
    source = f"form {form.name}"
    with store.transaction():
        contact, _ = contacts.get_or_create(store, address, now, source)
        _fill_empty_fields(store, contact, outcome.values, now)
        if form.tags:
            contacts.add_tags(store, int(contact["id"]), list(form.tags), now, source)
        data = {"form": form.name, "topics": list(outcome.chosen)}
        event_id = contacts.record_event(
            store, int(contact["id"]), events.SUBSCRIBED, at=now, data=data, source=source, now=now
        )
        store.insert_form_signup(
            int(contact["id"]),
            form.name,
            now,
            ip=ip,
            user_agent=user_agent[:300],
            wording=form.consent,
            topics=list(outcome.chosen),
            snapshot=form.snapshot(),
            event_id=event_id,
        )
    outcome.recorded = True
    return outcome


def _asked_lately(store: Store, address: str, now: datetime) -> bool:
    """A confirmation is already on its way: posting the address again (by anyone) sends no more mail."""
    found = store.contact_by_email(address)
    pending = store.pending_form_signup(int(found["id"])) if found else None
    return pending is not None and now - pending["at"] < RESEND_AFTER


def _fill_empty_fields(store: Store, contact: dict[str, Any], values: dict[str, str], now: datetime) -> None:
    """A post is not authenticated: it fills what is empty and never overwrites what is stored."""
    current = contacts.template_view(contact, [])
    missing = {k: v for k, v in values.items() if k != "email" and v and not str(current.get(k) or "").strip()}
    if missing:
        contacts.set_fields(store, int(contact["id"]), missing, now)


def confirm_signup(store: Store, contact_id: int, now: datetime, proof: dict[str, Any]) -> dict[str, Any]:
    """On the double opt-in's confirmation: the pending signup's proof (merged into `proof`), topics chosen."""
    signup = store.pending_form_signup(contact_id)
    if signup is None:
        return proof
    merged = {
        **proof,
        "confirmed_with": proof.get("form"),
        "confirmation_wording": proof.get("wording"),
        "form": signup["form"],
        "wording": signup["wording"],
        "signup_at": signup["at"].isoformat(),
        "signup_ip": signup["ip"],
        "signup_user_agent": signup["user_agent"],
        "signup_id": signup["id"],
        "topics": signup["topics"],
    }
    offered = signup["form_snapshot"].get("topics") or []
    with store.transaction():
        store.confirm_form_signups(contact_id, now)
        for topic in signup["topics"]:
            topics.join(store, contact_id, topic, now)
        states = store.topic_states(contact_id)
        for topic in offered:
            if topic not in signup["topics"] and topic not in states:  # offered, not ticked: not wanted
                topics.leave(
                    store, contact_id, topic, now, f"form {signup['form']}", {"reason": "not ticked on the form"}
                )
    return merged
