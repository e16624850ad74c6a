"""One sequence file's YAML -> a validated Sequence, every problem as file:line: message."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from edumail import clock, cron_text, events, yamlfile
from edumail.conditions import names, parse, parse_audience
from edumail.errors import InputError, Problem
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

_AT = re.compile(r"^\s*(event|contact|session)\.([A-Za-z_]\w*)\s*(?:([+-])\s*(.+?))?\s*$")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def line_of(raw: Any, key: Any, default: int) -> int:
    """The line of `key` in a YAML mapping or list, or `default`."""
    return raw.line_of(key) if isinstance(raw, (yamlfile.YDict, yamlfile.YList)) else default


def _unknown_keys(
    raw: dict[str, Any], known: tuple[str, ...], what: str, file: str, line: int, problems: list[Problem]
) -> bool:
    ok = True
    for key in raw:
        if key not in known:
            hint = yamlfile.did_you_mean(str(key), known)
            prefix = f"{what}." if what else ""
            problems.append(
                Problem(file, line_of(raw, key, line), f"unknown key {prefix}{key}{hint} (known: {', '.join(known)})")
            )
            ok = False
    return ok


def _duration(value: Any, what: str, file: str, line: int, problems: list[Problem]) -> timedelta | None:
    try:
        return clock.parse_duration(value)
    except InputError as exc:
        problems.append(Problem(file, line, f"{what}: {exc}"))
        return None


def _bool(raw: Any, key: str, default: bool, file: str, problems: list[Problem]) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        problems.append(Problem(file, line_of(raw, key, 1), f"{key}: expected true or false, got {value!r}"))
        return default
    return value


def parse_sequence(data: Any, file: str, stem: str, tz: Any, problems: list[Problem]) -> Sequence | None:
    """Validate one parsed sequence file; appends problems and returns None on any."""
    if not isinstance(data, dict):
        problems.append(Problem(file, getattr(data, "line", 1) or 1, "expected a mapping with trigger: and steps:"))
        return None
    before = len(problems)
    _unknown_keys(data, SEQUENCE_KEYS, "", file, 1, problems)
    name = str(data.get("name", stem)).strip()
    if not name:
        problems.append(Problem(file, line_of(data, "name", 1), "name: expected a non-empty name"))
    purpose = data.get("purpose", events.MARKETING)
    if purpose not in (events.MARKETING, events.SERVICE):
        hint = yamlfile.did_you_mean(str(purpose), (events.MARKETING, events.SERVICE))
        problems.append(
            Problem(file, line_of(data, "purpose", 1), f"purpose: expected marketing or service, got {purpose!r}{hint}")
        )
    enabled = _bool(data, "enabled", True, file, problems)
    reenter = _bool(data, "reenter", False, file, problems)
    description = data.get("description") or ""
    if "trigger" not in data:
        problems.append(Problem(file, 1, "missing trigger: (one of event, segment, inactive, schedule, at)"))
        trigger = None
    else:
        trigger = _trigger(data["trigger"], file, line_of(data, "trigger", 1), tz, problems)
    audience = parse_audience(data.get("audience"), file, line_of(data, "audience", 1), problems, allow_segment=True)
    topic = data.get("topic")
    if topic is not None and (not isinstance(topic, str) or not topic.strip()):
        problems.append(Problem(file, line_of(data, "topic", 1), f"topic: expected a topic name, got {topic!r}"))
    exit_on: tuple[str, ...] = ()
    if data.get("exit_on") is not None:
        listed = names(data["exit_on"])
        if listed is None:
            problems.append(
                Problem(file, line_of(data, "exit_on", 1), "exit_on: expected an event name or a list of them")
            )
        else:
            exit_on = listed
    goal = _goal(data.get("goal"), file, line_of(data, "goal", 1), problems) if "goal" in data else None
    steps = _steps(data.get("steps"), file, line_of(data, "steps", 1), problems, tz) if "steps" in data else None
    if "steps" not in data:
        problems.append(Problem(file, 1, "missing steps: (a list of steps, each with an action such as send:)"))
    if len(problems) > before or trigger is None or audience is None or steps is None:
        return None
    return Sequence(
        name=name,
        file=file,
        trigger=trigger,
        steps=tuple(steps),
        description=str(description),
        purpose=str(purpose),
        enabled=enabled,
        audience=audience,
        exit_on=exit_on,
        reenter=reenter,
        goal=goal,
        topic=topic.strip() if isinstance(topic, str) else None,
    )


def _trigger(raw: Any, file: str, line: int, tz: Any, problems: list[Problem]) -> Trigger | None:
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                file, line, "trigger: expected a mapping with exactly one of event, segment, inactive, schedule, at"
            )
        )
        return None
    if not _unknown_keys(raw, (*TRIGGER_KINDS, "where", "data"), "trigger", file, line, problems):
        return None
    kinds = [k for k in TRIGGER_KINDS if k in raw]
    if len(kinds) != 1:
        found = f"it has {', '.join(kinds)}" if kinds else "it has none"
        problems.append(
            Problem(file, line, f"trigger: expected exactly one of event, segment, inactive, schedule, at ({found})")
        )
        return None
    kind = kinds[0]
    value, kline = raw[kind], line_of(raw, kind, line)
    for key in ("where", "data"):
        if key in raw and kind != "event":
            where_line = line_of(raw, key, line)
            problems.append(Problem(file, where_line, f"trigger.{key}: only an event trigger takes {key}:"))
            return None
    if kind == "event":
        return _event_trigger(raw, value, file, line, kline, problems)
    if kind == "segment":
        segment = parse_audience(value, file, kline, problems, what="trigger.segment", allow_segment=True)
        if segment is not None and segment.empty and not segment.segment:
            problems.append(
                Problem(file, kline, "trigger.segment: expected at least one of stage, tags, not_tags, fields")
            )
            return None
        return None if segment is None else Trigger("segment", line, segment=segment)
    if kind == "inactive":
        delta = _duration(value, "trigger.inactive", file, kline, problems)
        return None if delta is None else Trigger("inactive", line, inactive=delta)
    if kind == "schedule":
        try:
            if not cron_text.plainly_valid(str(value)):  # the usual forms need no APScheduler import
                from apscheduler.triggers.cron import CronTrigger

                CronTrigger.from_crontab(str(value), timezone=tz)
        except (ValueError, TypeError) as exc:
            problems.append(
                Problem(
                    file, kline, f'trigger.schedule: {value!r} is not a cron expression ({exc}); e.g. "0 9 * * mon"'
                )
            )
            return None
        return Trigger("schedule", line, schedule=str(value))
    try:
        moment = clock.parse_iso(str(value), tz)
    except InputError as exc:
        problems.append(Problem(file, kline, f"trigger.at: {exc}"))
        return None
    return Trigger("at", line, at=moment)


def _event_trigger(
    raw: dict[str, Any], value: Any, file: str, line: int, kline: int, problems: list[Problem]
) -> Trigger | None:
    where = raw.get("where") or {}
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(file, kline, f"trigger.event: expected an event name, got {value!r}"))
        return None
    if not isinstance(where, dict):
        problems.append(
            Problem(file, line_of(raw, "where", line), "trigger.where: expected a mapping such as {formation: excel}")
        )
        return None
    data = raw.get("data") or []
    if not isinstance(data, list) or not all(isinstance(k, str) and k.strip().isidentifier() for k in data):
        problems.append(
            Problem(file, line_of(raw, "data", line), "trigger.data: expected a list of keys such as [formation, lieu]")
        )
        return None
    return Trigger("event", line, event=value.strip(), where=dict(where), data=tuple(k.strip() for k in data))


def _goal(raw: Any, file: str, line: int, problems: list[Problem]) -> Goal | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
        problems.append(Problem(file, line, "goal: expected {event: NAME, within: DURATION}"))
        return None
    if not _unknown_keys(raw, ("event", "within"), "goal", file, line, problems):
        return None
    within = None
    if "within" in raw:
        within = _duration(raw["within"], "goal.within", file, line_of(raw, "within", line), problems)
        if within is None:
            return None
    return Goal(raw["event"].strip(), within)


def _steps(raw: Any, file: str, line: int, problems: list[Problem], tz: Any = None) -> list[Step] | None:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(file, line, "steps: expected a list of steps (e.g. - send: bienvenue)"))
        return None
    steps: list[Step] = []
    ok = True
    ids: dict[str, int] = {}
    for index, item in enumerate(raw):
        item_line = raw.line_of(index) if isinstance(raw, yamlfile.YList) else line
        step = _step(item, index, file, item_line, problems, tz)
        if step is None:
            ok = False
            continue
        if step.id in ids:
            problems.append(
                Problem(
                    file,
                    step.line,
                    f"duplicate step id {step.id!r} (also on line {ids[step.id]}); give one of them an id:",
                )
            )
            ok = False
        ids.setdefault(step.id, step.line)
        steps.append(step)
    if not ok:
        return None
    for step in steps:
        if step.condition is None:
            continue
        for ref, ref_line in step.condition.step_refs():
            target = next((s for s in steps if s.id == ref), None)
            if target is None:
                hint = yamlfile.did_you_mean(ref, list(ids))
                problems.append(Problem(file, ref_line, f"unknown step id {ref!r}{hint} (steps: {', '.join(ids)})"))
                ok = False
            elif target.template is None:
                problems.append(
                    Problem(file, ref_line, f"step {ref!r} sends no mail, so it cannot be opened or clicked")
                )
                ok = False
            elif target.index >= step.index:
                problems.append(
                    Problem(
                        file, ref_line, f"step {ref!r} comes after step {step.id!r}; a condition can only look back"
                    )
                )
                ok = False
    return steps if ok else None


def _step(raw: Any, index: int, file: str, line: int, problems: list[Problem], tz: Any = None) -> Step | None:
    if not isinstance(raw, dict):
        problems.append(Problem(file, line, f"a step is a mapping such as {{send: bienvenue}}, got {raw!r}"))
        return None
    before = len(problems)
    _unknown_keys(raw, STEP_KEYS, "step", file, line, problems)
    actions = [
        _action(kind, raw[kind], file, line_of(raw, kind, line), problems) for kind in ACTION_KEYS if kind in raw
    ]
    if not actions:
        problems.append(Problem(file, line, f"step {index + 1} has no action (one of {', '.join(ACTION_KEYS)})"))
    wait = _duration(raw["wait"], "wait", file, line_of(raw, "wait", line), problems) if "wait" in raw else None
    at = _at(raw["at"], file, line_of(raw, "at", line), problems, tz) if "at" in raw else None
    if "wait" in raw and "at" in raw:
        problems.append(Problem(file, line_of(raw, "at", line), "a step takes wait: or at:, not both"))
    time = _time(raw["time"], file, line_of(raw, "time", line), problems) if "time" in raw else None
    condition = parse(raw["if"], file, line_of(raw, "if", line), problems) if "if" in raw else None
    else_value = raw.get("else")
    if else_value is not None and else_value not in ("exit", "skip"):
        problems.append(
            Problem(file, line_of(raw, "else", line), f"else: expected exit (or skip, the default), got {else_value!r}")
        )
    if else_value is not None and "if" not in raw:
        problems.append(Problem(file, line_of(raw, "else", line), "else: only makes sense with if:"))
    step_id = raw.get("id")
    if step_id is not None and (not isinstance(step_id, (str, int)) or not str(step_id).strip()):
        problems.append(Problem(file, line_of(raw, "id", line), f"id: expected a name, got {step_id!r}"))
    if len(problems) > before:
        return None
    template = raw.get("send")
    default_id = str(template) if template is not None else f"step-{index + 1}"
    return Step(
        id=str(step_id).strip() if step_id is not None else default_id,
        index=index,
        line=line,
        actions=tuple(a for a in actions if a is not None),
        wait=wait,
        at=at,
        time=time,
        condition=condition,
        else_exit=else_value == "exit",
    )


def _action(kind: str, value: Any, file: str, line: int, problems: list[Problem]) -> Action | None:
    if kind in ("send", "stage"):
        if not isinstance(value, str) or not value.strip():
            problems.append(
                Problem(
                    file, line, f"{kind}: expected a {'template' if kind == 'send' else 'stage'} name, got {value!r}"
                )
            )
            return None
        return Action(kind, value.strip())
    if kind in ("tag", "untag"):
        listed = names(value)
        if listed is None:
            problems.append(Problem(file, line, f"{kind}: expected a tag or a list of tags, got {value!r}"))
            return None
        return Action(kind, listed)
    if kind == "set":
        if not isinstance(value, dict) or not value:
            problems.append(Problem(file, line, "set: expected a mapping of fields, e.g. {relance: faite}"))
            return None
        bad = [k for k in value if k in ("email", "stage", "consent", "tags")]
        if bad:
            problems.append(Problem(file, line, f"set: {bad[0]!r} cannot be set here (use stage:, tag: or untag:)"))
            return None
        return Action(kind, dict(value))
    if kind == "webhook":
        if not isinstance(value, str) or not re.match(r"^https?://\S+$", value.strip()):
            problems.append(Problem(file, line, f"webhook: expected an http(s) URL, got {value!r}"))
            return None
        return Action(kind, value.strip())
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        problems.append(
            Problem(file, line, f"notify: expected the e-mail address of the person to alert, got {value!r}")
        )
        return None
    return Action(kind, value.strip())


def _at(value: Any, file: str, line: int, problems: list[Problem], tz: Any = None) -> AtExpr | None:
    match = _AT.match(str(value))
    if not match:
        literal = _literal_at(value, tz)
        if literal is not None:
            return literal
        problems.append(
            Problem(
                file,
                line,
                f"at: expected a time such as 2026-12-01T09:00, or event.FIELD, contact.FIELD or session.FIELD "
                f"optionally +/- a duration (e.g. event.session_start - 24h), got {value!r}",
            )
        )
        return None
    source, name, sign, amount = match.groups()
    offset = timedelta()
    if sign:
        delta = _duration(amount, "at", file, line, problems)
        if delta is None:
            return None
        offset = delta if sign == "+" else -delta
    return AtExpr(source, name, offset, str(value).strip())


def _literal_at(value: Any, tz: Any) -> AtExpr | None:
    """`at: 2026-12-01T09:00` (or a date: midnight), in the project timezone; None if it is not a time."""
    zone = tz or clock.UTC
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=zone)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=zone)
    elif isinstance(value, str) and re.match(r"^\s*\d{4}-\d{2}-\d{2}", value):
        try:
            moment = clock.parse_iso(value, zone)
        except InputError:
            return None
    else:
        return None
    return AtExpr("literal", "", timedelta(), str(value).strip(), moment.astimezone(clock.UTC))


def _time(value: Any, file: str, line: int, problems: list[Problem]) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 9:00 as the base-60 number 540.
        value = f"{value // 60}:{value % 60:02d}"
    match = _TIME.match(str(value))
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour < 24 and minute < 60:
            return hour, minute
    problems.append(Problem(file, line, f'time: expected a local time of day such as "09:00", got {value!r}'))
    return None
