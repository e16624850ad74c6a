"""`edumail check`: settings, sequences and templates, every problem as file:line: message."""

from __future__ import annotations

from pathlib import Path

from edumail import clock, forms, live_edits, provider_check, render, render_check, segments, sequences, trigger_data
from edumail import project as project_module
from edumail.errors import ConfigError, Problem


def live_edits_notes(given: Path | None) -> list[str]:
    """What the sequence edits since the last run will do to the journeys in flight (SPEC 12)."""
    try:
        project = project_module.load(given)
    except ConfigError:
        return []
    loaded, problems = sequences.load(project)
    broken = {Path(p.file).stem for p in problems}
    found = live_edits.notes(project.store(), loaded, broken)
    project.close()
    return found


def check(given: Path | None) -> tuple[list[Problem], dict[str, int]]:
    """All problems of the project, and counts of what was checked."""
    try:
        project = project_module.load(given)
    except ConfigError as exc:
        return list(exc.problems), {}
    counts = {"settings": 1}
    problems: list[Problem] = []
    problems.extend(provider_check.problems(project))
    problems.extend(segments.check(project))
    if segments.files(project):
        counts["segments"] = len(segments.files(project))
    problems.extend(sequences.check(project))
    library = render.TemplateLibrary(project.templates_dir, project.settings)
    problems.extend(trigger_data.check(sequences.load(project)[0], library))
    problems.extend(forms.check(project))
    if forms.files(project):
        counts["forms"] = len(forms.files(project))
    counts["sequences"] = len(list(project.sequences_dir.glob("*.yaml")))
    fields = project.store().custom_field_names()
    session_fields = project.store().session_field_names()
    problems.extend(render_check.check_templates(library, contact_fields=fields, session_fields=session_fields))
    problems.extend(render_check.bound_problems(library, clock.now()))
    problems.extend(_attachment_problems(project.root, library))
    counts["templates"] = len(library.names())
    project.close()
    return problems, counts


def _attachment_problems(root: Path, library: render.TemplateLibrary) -> list[Problem]:
    """Static attachments (no Jinja in the path) that do not exist or leave files/ (SPEC 14)."""
    from edumail import attachments
    from edumail.errors import EdumailError

    found: list[Problem] = []
    for name in library.names():
        try:
            template = library.get(name)
        except EdumailError:
            continue  # reported by the template checks
        line = template.lines.get("attachments", 0)
        found.extend(Problem(template.file, line, p) for p in attachments.missing_static(root, template.attachments))
    return found


def warnings(given: Path | None) -> list[str]:
    """What works but should be fixed: printed by `check` without failing it."""
    try:
        project = project_module.load(given)
    except ConfigError:
        return []  # already reported as problems
    found: list[str] = provider_check.warnings(project)
    base = project.settings.tracking.base_url
    if base and not base.lower().startswith("https://"):
        found.append(
            f"edumail.yaml: tracking.base_url is {base}: RFC 8058 one-click unsubscribe needs https, so mails go "
            "without List-Unsubscribe-Post (Gmail and Yahoo want it from bulk senders); serve the tracker over https"
        )
    return found
