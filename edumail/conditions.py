"""Step conditions (`if:`) and audiences: parsed from YAML, evaluated against facts.

A condition is a small tree. Leaves look at the contact (tag, stage, fields),
at the journey's own mails (opened, clicked: human opens and clicks only) or
at the events since the journey started (event, no_event); `all`, `any` and
`not` combine them. Evaluation asks a `Facts` object, so the engine decides
how to fetch what a condition needs (and fetches nothing it does not need).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from edumail import yamlfile
from edumail.errors import Problem

MAIL_KINDS = ("opened", "not_opened", "clicked", "not_clicked")
LEAF_KINDS = (*MAIL_KINDS, "event", "no_event", "tag", "not_tag", "stage", "fields")
KINDS = (*LEAF_KINDS, "all", "any", "not")
CORE_FIELDS = ("email", "first_name", "last_name", "timezone")
AUDIENCE_KEYS = ("stage", "tags", "not_tags", "fields")


class Facts(Protocol):
    """What a condition may ask about one journey."""

    tags: set[str]
    stage: str
    fields: dict[str, Any]

    def mailed(self, step_id: str) -> bool: ...

    def opened(self, step_id: str) -> bool: ...

    def clicked(self, step_id: str) -> bool: ...

    def had_event(self, names: tuple[str, ...]) -> bool: ...


@dataclass(frozen=True)
class Condition:
    kind: str
    value: Any  # a step id, a tuple of names, a dict of fields, or a tuple of Conditions
    line: int = 0

    def describe(self) -> str:
        """A short human form, for logs and `plan`."""
        if self.kind in ("all", "any"):
            joined = f" {'and' if self.kind == 'all' else 'or'} ".join(c.describe() for c in self.value)
            return f"({joined})"
        if self.kind == "not":
            return f"not {self.value.describe()}"
        if isinstance(self.value, tuple):
            shown = ", ".join(self.value)
        elif isinstance(self.value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in self.value.items())
        else:
            shown = str(self.value)
        return f"{self.kind.replace('_', ' ')} {shown}"

    def step_refs(self) -> list[tuple[str, int]]:
        """The (step id, line) pairs this condition refers to."""
        if self.kind in MAIL_KINDS:
            return [(self.value, self.line)]
        if self.kind in ("all", "any"):
            return [ref for child in self.value for ref in child.step_refs()]
        if self.kind == "not":
            return self.value.step_refs()
        return []

    def looks_at_mail(self) -> bool:
        """True when the answer depends on opens or clicks (which `plan` cannot foresee)."""
        return bool(self.step_refs())


@dataclass(frozen=True)
class Audience:
    """Who a sequence is for: stage one of, all tags, none of not_tags, fields equal."""

    stage: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
    segment: str | None = None  # segments/NAME.yaml, merged in when the sequences load (segments.resolve)

    @property
    def empty(self) -> bool:
        return not (self.stage or self.tags or self.not_tags or self.fields)

    def matches(self, stage: str, tags: set[str], fields: dict[str, Any]) -> bool:
        if self.stage and stage not in self.stage:
            return False
        if any(t not in tags for t in self.tags) or any(t in tags for t in self.not_tags):
            return False
        return fields_match(self.fields, fields)

    def describe(self) -> str:
        parts = []
        if self.stage:
            parts.append(f"stage {'/'.join(self.stage)}")
        if self.tags:
            parts.append(f"tags {', '.join(self.tags)}")
        if self.not_tags:
            parts.append(f"without {', '.join(self.not_tags)}")
        if self.fields:
            parts.append(", ".join(f"{k}={v}" for k, v in self.fields.items()))
        shown = "; ".join(parts) or "everyone"
        return f"segment {self.segment} ({shown})" if self.segment else shown


def same_value(actual: Any, expected: Any) -> bool:
    """Field equality as a spreadsheet user means it: 3 == "3", true == "true"."""
    return field_text(actual) == field_text(expected)


def field_text(value: Any) -> str:
    """A field value as the audience rule compares it: trimmed text, true/false, 3 for 3.0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def fields_match(expected: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Every expected field equals (or, for a list, is one of) the contact's value."""
    for key, want in expected.items():
        have = fields.get(key)
        options = want if isinstance(want, list) else [want]
        if not any(same_value(have, option) for option in options):
            return False
    return True


def evaluate(condition: Condition, facts: Facts) -> bool:
    """True when the condition holds for these facts."""
    kind, value = condition.kind, condition.value
    if kind == "all":
        return all(evaluate(child, facts) for child in value)
    if kind == "any":
        return any(evaluate(child, facts) for child in value)
    if kind == "not":
        return not evaluate(value, facts)
    if kind in MAIL_KINDS and not facts.mailed(value):
        return False  # no mail from that step in this journey: neither opened nor "not opened"
    if kind in ("opened", "not_opened"):
        return facts.opened(value) == (kind == "opened")
    if kind in ("clicked", "not_clicked"):
        return facts.clicked(value) == (kind == "clicked")
    if kind in ("event", "no_event"):
        return facts.had_event(value) == (kind == "event")
    if kind == "tag":
        return all(tag in facts.tags for tag in value)
    if kind == "not_tag":
        return not any(tag in facts.tags for tag in value)
    if kind == "stage":
        return facts.stage in value
    if kind == "fields":
        return fields_match(value, facts.fields)
    raise ValueError(f"unknown condition {kind!r}")


# --- parsing ------------------------------------------------------------------


def _line(raw: Any, key: Any, default: int) -> int:
    return raw.line_of(key) if isinstance(raw, yamlfile.YDict) else default


def names(raw: Any) -> tuple[str, ...] | None:
    """A name or a list of names -> tuple; None when it is neither."""
    if isinstance(raw, str) and raw.strip():
        return (raw.strip(),)
    if isinstance(raw, list) and raw and all(isinstance(x, (str, int)) and str(x).strip() for x in raw):
        return tuple(str(x).strip() for x in raw)
    return None


def parse(raw: Any, file: str, line: int, problems: list[Problem]) -> Condition | None:
    """Parse an `if:` value; appends problems and returns None when it is not valid."""
    if not isinstance(raw, dict) or not raw:
        problems.append(Problem(file, line, f"a condition is a mapping such as {{not_opened: relance-1}}, got {raw!r}"))
        return None
    parts = []
    for key, value in raw.items():
        key_line = _line(raw, key, line)
        part = _parse_one(str(key), value, file, key_line, problems)
        if part is not None:
            parts.append(part)
    if len(parts) != len(raw):
        return None
    return parts[0] if len(parts) == 1 else Condition("all", tuple(parts), line)


def _parse_one(key: str, value: Any, file: str, line: int, problems: list[Problem]) -> Condition | None:
    if key not in KINDS:
        hint = yamlfile.did_you_mean(key, KINDS)
        problems.append(Problem(file, line, f"unknown condition {key!r}{hint} (known: {', '.join(KINDS)})"))
        return None
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            problems.append(Problem(file, line, f"{key}: expected a list of conditions"))
            return None
        children = [
            parse(child, file, value.line_of(i) if isinstance(value, yamlfile.YList) else line, problems)
            for i, child in enumerate(value)
        ]
        if any(c is None for c in children):
            return None
        return Condition(key, tuple(children), line)
    if key == "not":
        child = parse(value, file, line, problems)
        return None if child is None else Condition("not", child, line)
    if key in MAIL_KINDS:
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(file, line, f"{key}: expected a step id, got {value!r}"))
            return None
        return Condition(key, value.strip(), line)
    if key == "fields":
        if not isinstance(value, dict) or not value:
            problems.append(Problem(file, line, "fields: expected a mapping such as {ville: Lyon}"))
            return None
        return Condition(key, dict(value), line)
    listed = names(value)
    if listed is None:
        what = {"event": "an event name", "no_event": "an event name", "stage": "a stage"}.get(key, "a tag")
        problems.append(Problem(file, line, f"{key}: expected {what} or a list of them, got {value!r}"))
        return None
    return Condition(key, listed, line)


def parse_audience(
    raw: Any, file: str, line: int, problems: list[Problem], what: str = "audience", allow_segment: bool = False
) -> Audience | None:
    """Parse an `audience:` (or `segment:`) mapping; `segment: NAME` is kept for segments.resolve."""
    if raw is None:
        return Audience()
    if allow_segment and isinstance(raw, str) and raw.strip():
        return Audience(segment=raw.strip())
    if not isinstance(raw, dict):
        problems.append(Problem(file, line, f"{what}: expected a mapping with stage, tags, not_tags, fields"))
        return None
    known = (*AUDIENCE_KEYS, "segment") if allow_segment else AUDIENCE_KEYS
    values: dict[str, Any] = {}
    ok = True
    for key, value in raw.items():
        key_line = _line(raw, key, line)
        if key not in known:
            hint = yamlfile.did_you_mean(str(key), known)
            problems.append(Problem(file, key_line, f"unknown key {what}.{key}{hint} (known: {', '.join(known)})"))
            ok = False
        elif key == "fields":
            if not isinstance(value, dict) or not value:
                problems.append(Problem(file, key_line, f"{what}.fields: expected a mapping such as {{ville: Lyon}}"))
                ok = False
            else:
                values["fields"] = dict(value)
        elif key == "segment":
            if not isinstance(value, str) or not value.strip():
                problems.append(
                    Problem(file, key_line, f"{what}.segment: expected a segment name (segments/NAME.yaml)")
                )
                ok = False
            else:
                values["segment"] = value.strip()
        else:
            listed = names(value)
            if listed is None:
                problems.append(
                    Problem(file, key_line, f"{what}.{key}: expected a name or a list of names, got {value!r}")
                )
                ok = False
            else:
                values[key] = listed
    return Audience(**values) if ok else None
