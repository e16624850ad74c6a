"""sequences/*.yaml -> validated Sequence models (SPEC section 4).

The models are in edumail.sequence_model, the parsing of one file in
edumail.sequence_parse. Every problem is a `Problem(file, line, message)`:
`check(project)` returns them all, `load_all(project)` raises ConfigError
with them all, and `run` refuses to start while there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edumail import segments, template_files, yamlfile
from edumail.errors import ConfigError, Problem
from edumail.sequence_model import (
    ACTION_KEYS,
    SEQUENCE_KEYS,
    STEP_KEYS,
    TRIGGER_KINDS,
    Action,
    AtExpr,
    Goal,
    Sequence,
    Step,
    Trigger,
)
from edumail.sequence_parse import line_of, parse_sequence

if TYPE_CHECKING:
    from edumail.project import Project

__all__ = [
    "ACTION_KEYS",
    "SEQUENCE_KEYS",
    "STEP_KEYS",
    "TRIGGER_KINDS",
    "Action",
    "AtExpr",
    "Goal",
    "Sequence",
    "Step",
    "Trigger",
    "check",
    "files",
    "load",
    "load_all",
    "parse_sequence",
]


# --- loading --------------------------------------------------------------------


def files(project: Project) -> list[Path]:
    """The sequence files of a project, sorted."""
    folder = project.sequences_dir
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def available_templates(project: Project) -> list[str]:
    """Template names the project has, as the template library sees them."""
    return template_files.names(project.templates_dir)


def load(project: Project) -> tuple[list[Sequence], list[Problem]]:
    """Every sequence that validates, and every problem found."""
    problems: list[Problem] = []
    sequences: list[Sequence] = []
    templates = available_templates(project)
    known_segments, _ = segments.load_all(project)  # their own problems are `check`'s (segments.check)
    topics = project.settings.topics
    seen: dict[str, str] = {}
    for path in files(project):
        shown = f"{project.sequences_dir.name}/{path.name}"
        try:
            data = yamlfile.load(path, shown)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        before = len(problems)
        sequence = parse_sequence(data, shown, path.stem, project.settings.tz, problems)
        _check_templates(shown, templates, data, problems)
        problems[before:] = sorted(problems[before:], key=lambda p: p.line)
        if sequence is None:
            continue
        sequence = segments.apply(sequence, data, shown, known_segments, problems)
        if sequence.topic is not None and sequence.topic not in topics:
            line = data.line_of("topic") if isinstance(data, yamlfile.YDict) else 1
            have = ", ".join(topics) or "none: name them under topics: in edumail.yaml"
            problems.append(Problem(shown, line, f"unknown topic {sequence.topic!r} (topics: {have})"))
        if sequence.name in seen:
            line = data.line_of("name") if isinstance(data, yamlfile.YDict) else 1
            problems.append(
                Problem(shown, line, f"sequence name {sequence.name!r} is already used by {seen[sequence.name]}")
            )
        seen.setdefault(sequence.name, shown)
        if len(problems) == before:
            sequences.append(sequence)
    return sequences, problems


def check(project: Project) -> list[Problem]:
    """Every problem in sequences/*.yaml, as file:line: message."""
    return load(project)[1]


def load_all(project: Project) -> list[Sequence]:
    """All sequences, or ConfigError listing every problem."""
    sequences, problems = load(project)
    if problems:
        raise ConfigError(problems)
    return sequences


def _check_templates(file: str, templates: list[str], data: Any, problems: list[Problem]) -> None:
    """Unknown templates, found in the raw steps so they are reported alongside any other problem."""
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list):
        return
    shown = ", ".join(templates) if templates else "no templates"
    for index, step in enumerate(steps):
        name = step.get("send") if isinstance(step, dict) else None
        if isinstance(name, str) and name.strip() and name.strip() not in templates:
            line = step.line_of("send") if isinstance(step, yamlfile.YDict) else line_of(steps, index, 1)
            hint = yamlfile.did_you_mean(name.strip(), templates)
            problems.append(Problem(file, line, f"unknown template {name.strip()!r}{hint} (templates/ has: {shown})"))
