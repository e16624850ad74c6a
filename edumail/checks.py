"""`edumail check`: settings, sequences and templates, every problem as file:line: message."""

from __future__ import annotations

from pathlib import Path

from edumail import forms, render, render_check, segments, sequences
from edumail import project as project_module
from edumail.errors import ConfigError, Problem


def check(given: Path | None) -> tuple[list[Problem], dict[str, int]]:
    """All problems of the project, and counts of what was checked."""
    try:
        project = project_module.load(given)
    except ConfigError as exc:
        return list(exc.problems), {}
    counts = {"settings": 1}
    problems: list[Problem] = []
    problems.extend(segments.check(project))
    if segments.files(project):
        counts["segments"] = len(segments.files(project))
    problems.extend(sequences.check(project))
    problems.extend(forms.check(project))
    if forms.files(project):
        counts["forms"] = len(forms.files(project))
    counts["sequences"] = len(list(project.sequences_dir.glob("*.yaml")))
    library = render.TemplateLibrary(project.templates_dir, project.settings)
    fields = project.store().custom_field_names()
    problems.extend(render_check.check_templates(library, contact_fields=fields))
    counts["templates"] = len(library.names())
    project.close()
    return problems, counts
