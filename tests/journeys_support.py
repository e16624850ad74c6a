"""Helpers for the sequence, engine, run and plan tests: a project with the real
library (templates and example sequences), contacts and events through the
domain functions, and the engine run at a given local time."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edumail import clock, contacts, runner
from edumail import project as project_module
from edumail.project import Project

REPO = Path(__file__).resolve().parents[1]
PARIS = ZoneInfo("Europe/Paris")


def T(text: str) -> datetime:
    """A local (Europe/Paris) time, as the aware UTC datetime the engine uses."""
    return clock.parse_iso(text, PARIS)


def db(text: str) -> datetime:
    """A local time as the store hands it back (aware UTC datetime)."""
    return T(text)


# The session library's sequences (issue 14): their own tests run them (test_session_library.py).
SESSION_LIBRARY = {"convocation", "changement-de-date", "session-annulee", "evaluation-a-chaud", "evaluation-a-froid"}
SESSION_LIBRARY |= {"absence"}


# A project created before the library's rappel-session moved to session journeys (issue 14): its own copy
# reads the session from the enrolment event's data (`at: event.session_start - 24h`). The engine tests use it
# for event-anchored steps; it keeps working in such a project.
LEGACY = Path(__file__).resolve().parent / "legacy_library"


def install_library(root: Path, sequences: bool = True) -> None:
    shutil.copytree(REPO / "templates", root / "templates", dirs_exist_ok=True)
    shutil.copytree(LEGACY / "templates", root / "templates", dirs_exist_ok=True)
    shutil.copytree(REPO / "files", root / "files", dirs_exist_ok=True)  # the attachments the templates name
    if sequences:
        for path in (REPO / "sequences").glob("*.yaml"):
            if path.stem in SESSION_LIBRARY:
                continue
            shutil.copy(path, root / "sequences" / path.name)
        shutil.copytree(LEGACY / "sequences", root / "sequences", dirs_exist_ok=True)


def write_sequence(root: Path, name: str, text: str) -> Path:
    path = root / "sequences" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def add_settings(root: Path, text: str) -> None:
    path = root / "edumail.yaml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def open_project(root: Path) -> Project:
    return project_module.load(root)


def add_contact(
    project: Project,
    email: str,
    *,
    consent: str = "opted_in",
    basis: str | None = None,
    stage: str | None = None,
    tags: tuple[str, ...] = (),
    fields: dict[str, Any] | None = None,
    timezone: str | None = None,
    at: str = "2026-11-01T09:00",
) -> int:
    store, now = project.store(), T(at)
    contact, _ = contacts.get_or_create(store, email, now, "test")
    cid = int(contact["id"])
    if consent != "unknown":
        contacts.set_consent(store, cid, consent, basis=basis, now=now, source="test", proof={})
    if stage:
        contacts.set_stage(store, cid, stage, now, "test")
    if tags:
        contacts.add_tags(store, cid, list(tags), now, "test")
    values = dict(fields or {})
    if timezone:
        values["timezone"] = timezone
    if values:
        contacts.set_fields(store, cid, values, now)
    return cid


def event(project: Project, contact_id: int, name: str, at: str, **data: Any) -> int:
    now = T(at)
    return contacts.record_event(project.store(), contact_id, name, at=now, data=data, source="test", now=now)


def run(project: Project, at: str, **options: Any) -> runner.RunSummary:
    """The engine part of `run --once` at a local time (no delivery: mails stay queued)."""
    options.setdefault("deliver", False)
    return runner.run_once(project, now=T(at), **options)


def mails(project: Project, contact_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM mails"
    params: list[Any] = []
    if contact_id is not None:
        sql += " WHERE contact_id = ?"
        params.append(contact_id)
    return project.store().rows(sql + " ORDER BY id", params)


def sent(project: Project, contact_id: int | None = None) -> list[tuple[str, str, str]]:
    """(step id, template, local not_before) of each queued mail, in order."""
    return [
        (m["step_id"], m["template"], m["not_before"].astimezone(PARIS).strftime("%Y-%m-%dT%H:%M"))
        for m in mails(project, contact_id)
    ]


def journal(project: Project, contact_id: int) -> list[tuple[str, str, str, str]]:
    """(sequence, step, outcome, reason) of every journey_log row of a contact."""
    return [
        (r["sequence"], r["step_id"], r["outcome"], r["reason"]) for r in project.store().journey_steps_of(contact_id)
    ]


def outcomes(project: Project, contact_id: int) -> list[tuple[str, str]]:
    return [(step, outcome) for _, step, outcome, _ in journal(project, contact_id)]


def journeys(project: Project, contact_id: int) -> list[dict[str, Any]]:
    return project.store().journeys_of(contact_id)


def context(mail: dict[str, Any]) -> dict[str, Any]:
    return json.loads(mail["context"])


SESSION_DATA = {
    "formation": "Excel avancé",
    "session_start": "2026-12-10T09:00",
    "session_end": "2026-12-11T17:00",
    "lien_enquete": "https://centre.example/avis",
}
