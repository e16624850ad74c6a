"""What the events that trigger a sequence carry, and who reads more (SPEC 11).

A trigger may declare its events' data: `trigger: {event: X, data: [formation,
session_start]}`. `check` reports each template of the sequence that reads
another `event.x` without a `default`; an event recorded without a declared
key is accepted with a warning naming the sequence and the key (the CLI, CSV
import and API call `warnings` / `warnings_for`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edumail.errors import Problem, RenderError

if TYPE_CHECKING:
    from edumail.project import Project
    from edumail.render import TemplateLibrary
    from edumail.sequence_model import Sequence


def carried(sequence: Sequence, library: TemplateLibrary, template: str) -> set[str]:
    """The event keys a template of this sequence may read: declared data, `where:` keys, the template's own list."""
    trigger = sequence.trigger
    return set(trigger.data) | set(trigger.where) | set(library.documented_event_fields(template))


def check(loaded: list[Sequence], library: TemplateLibrary) -> list[Problem]:
    """Templates reading `event.x` that the events of a sequence declaring `data:` do not carry."""
    from edumail.render_check import required_event_fields

    problems = []
    for sequence in loaded:
        if sequence.trigger.kind != "event" or not sequence.trigger.data:
            continue
        for step in sequence.steps:
            template = step.template
            if template is None or not library.exists(template):
                continue
            try:
                reads = required_event_fields(library, template)
            except RenderError:
                continue  # the template's own error is reported by the template checks
            for key in sorted(reads - carried(sequence, library, template)):
                declared = ", ".join(sequence.trigger.data)
                problems.append(
                    Problem(
                        sequence.file,
                        step.line,
                        f"template {template!r} reads event.{key}, which {sequence.trigger.event} events do not carry "
                        f"(trigger data: [{declared}]); add {key} to data: or write "
                        f"{{{{ event.{key} | default('') }}}}",
                    )
                )
    return problems


def warnings(loaded: list[Sequence], name: str, data: dict[str, Any]) -> list[str]:
    """For an event about to be recorded: each key a sequence triggered by it declares and the event lacks."""
    found = []
    for sequence in loaded:
        trigger = sequence.trigger
        if trigger.kind == "event" and trigger.event == name:
            for key in trigger.data:
                if key not in data or data[key] in (None, ""):
                    found.append(f"sequence {sequence.name!r} expects {key!r} in {name} events (trigger data:)")
    return found


def warnings_for(project: Project, name: str, data: dict[str, Any]) -> list[str]:
    """`warnings` against the project's sequences (those that load), re-read only when a file changed."""
    from edumail import sequences

    try:
        signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sequences.files(project))
    except OSError:  # a file removed meanwhile: read them again
        signature = ()
    cached = _LOADED.get(project.root)
    if cached is None or cached[0] != signature:
        cached = (signature, sequences.load(project)[0])
        _LOADED[project.root] = cached
    return warnings(cached[1], name, data)


# The API server records many events: its sequences are parsed again only when a file changed.
_LOADED: dict[Path, tuple[tuple[tuple[str, int, int], ...], list[Sequence]]] = {}
