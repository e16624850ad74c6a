"""segments/NAME.yaml: a named audience that campaigns (`send --segment`) and sequences
(`audience: {segment: NAME}`) share (SPEC 16).

A segment file holds the audience keys of a sequence at its top level (`stage`,
`tags`, `not_tags`, `fields`) and an optional `description`. It is parsed into
the same `Audience` the sequences use, so one rule decides who matches.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edumail import yamlfile
from edumail.conditions import AUDIENCE_KEYS, Audience, parse_audience
from edumail.errors import ConfigError, InputError, NotFound, Problem

if TYPE_CHECKING:
    from edumail.project import Project
    from edumail.sequence_model import Sequence

FOLDER = "segments"
KEYS = (*AUDIENCE_KEYS, "description")


def folder(project: Project) -> Path:
    return project.root / FOLDER


def files(project: Project) -> dict[str, Path]:
    """{segment name: file}, by name."""
    where = folder(project)
    if not where.is_dir():
        return {}
    found = sorted([*where.glob("*.yaml"), *where.glob("*.yml")])
    return {path.stem: path for path in found}


def parse(data: Any, shown: str, problems: list[Problem]) -> Audience | None:
    """Validate one parsed segment file; appends problems and returns None on any."""
    if not isinstance(data, dict):
        line = getattr(data, "line", 1) or 1
        problems.append(Problem(shown, line, "expected a mapping such as `stage: [prospect, lead]` and `tags: [...]`"))
        return None
    before = len(problems)
    for key in data:
        if key not in KEYS:
            hint = yamlfile.did_you_mean(str(key), KEYS)
            line = data.line_of(key) if isinstance(data, yamlfile.YDict) else 1
            problems.append(Problem(shown, line, f"unknown key {key!r}{hint} (known: {', '.join(KEYS)})"))
    audience_part = yamlfile.YDict({k: v for k, v in data.items() if k in AUDIENCE_KEYS})
    if isinstance(data, yamlfile.YDict):
        audience_part.line, audience_part.key_lines = data.line, data.key_lines
    audience = parse_audience(audience_part, shown, 1, problems, what="segment")
    if audience is not None and audience.empty and len(problems) == before:
        problems.append(Problem(shown, 1, "a segment needs at least one of stage, tags, not_tags, fields"))
    return audience if len(problems) == before else None


def load_one(project: Project, name: str) -> Audience:
    """The segment NAME, or NotFound / ConfigError (file:line) saying what is wrong."""
    known = files(project)
    path = known.get(name.strip())
    if path is None:
        have = ", ".join(known) or f"none: create {FOLDER}/{name.strip()}.yaml"
        raise NotFound(f"unknown segment {name.strip()!r} ({FOLDER}/ has: {have})")
    shown = f"{FOLDER}/{path.name}"
    problems: list[Problem] = []
    audience = parse(yamlfile.load(path, shown), shown, problems)
    if audience is None:
        raise ConfigError(problems)
    return audience


def load_all(project: Project) -> tuple[dict[str, Audience], list[Problem]]:
    """Every segment that validates, and every problem found."""
    segments: dict[str, Audience] = {}
    problems: list[Problem] = []
    for name, path in files(project).items():
        shown = f"{FOLDER}/{path.name}"
        try:
            data = yamlfile.load(path, shown)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        audience = parse(data, shown, problems)
        if audience is not None:
            segments[name] = audience
    return segments, problems


def check(project: Project) -> list[Problem]:
    """Every problem in segments/*.yaml."""
    return load_all(project)[1]


def merge(first: Audience, second: Audience, what: str = "the segment") -> Audience:
    """Both audiences at once (a contact must match each); InputError when nobody could."""
    stage = first.stage or second.stage
    if first.stage and second.stage:
        stage = tuple(s for s in first.stage if s in second.stage)
        if not stage:
            raise InputError(
                f"{what}'s stage ({', '.join(first.stage)}) and the stage asked ({', '.join(second.stage)}) "
                "have nothing in common: nobody could match"
            )
    fields = dict(first.fields)
    for key, value in second.fields.items():
        if key in fields and fields[key] != value:
            raise InputError(f"{what} wants {key}={fields[key]} and the filter {key}={value}: nobody could match")
        fields[key] = value
    return replace(
        first,
        stage=stage,
        tags=tuple(dict.fromkeys((*first.tags, *second.tags))),
        not_tags=tuple(dict.fromkeys((*first.not_tags, *second.not_tags))),
        fields=fields,
        segment=first.segment or second.segment,
    )


def apply(sequence: Sequence, data: Any, file: str, segments: dict[str, Audience], problems: list[Problem]) -> Sequence:
    """The sequence with the segments its audience or segment trigger names merged in (problems appended)."""
    audience_line = data.line_of("audience") if isinstance(data, yamlfile.YDict) else 1
    try:
        audience = resolve(sequence.audience, segments, file, audience_line)
        trigger = sequence.trigger
        if trigger.segment is not None and trigger.segment.segment:
            resolved = resolve(trigger.segment, segments, file, trigger.line)
            trigger = replace(trigger, segment=resolved)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return sequence
    return replace(sequence, audience=audience, trigger=trigger)


def resolve(audience: Audience, segments: dict[str, Audience], file: str, line: int) -> Audience:
    """An audience naming `segment:` with the segment's keys merged in; ConfigError (file:line) if unknown."""
    if not audience.segment:
        return audience
    found = segments.get(audience.segment)
    if found is None:
        have = ", ".join(segments) or "none"
        hint = yamlfile.did_you_mean(audience.segment, list(segments))
        raise ConfigError([Problem(file, line, f"unknown segment {audience.segment!r}{hint} ({FOLDER}/ has: {have})")])
    try:
        return merge(
            replace(found, segment=audience.segment), replace(audience, segment=None), f"segment {audience.segment!r}"
        )
    except InputError as exc:
        raise ConfigError([Problem(file, line, str(exc))]) from None
