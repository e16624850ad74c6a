"""What a sequence file means once validated: Sequence, Trigger, Step, Action (SPEC section 4).

edumail.sequence_parse builds these from YAML; edumail.sequences loads a project's files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import events
from edumail.conditions import Audience, Condition, fields_match

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

SEQUENCE_KEYS = (
    "name",
    "description",
    "purpose",
    "enabled",
    "trigger",
    "audience",
    "exit_on",
    "reenter",
    "goal",
    "steps",
    "topic",
)
TRIGGER_KINDS = ("event", "segment", "inactive", "schedule", "at")
# Actions run in this order within a step: the contact is updated before a mail renders it.
ACTION_KEYS = ("set", "stage", "tag", "untag", "send", "notify", "webhook")
STEP_KEYS = ("id", "wait", "at", "time", "if", "else", *ACTION_KEYS)


@dataclass(frozen=True)
class AtExpr:
    """`at:` of a step: a date in the trigger event's data or a contact field, plus or minus a duration,
    or a literal time (`at: 2026-12-01T09:00`, in the project timezone)."""

    source: str  # "event", "contact", "session" or "literal"
    field: str
    offset: timedelta
    text: str
    moment: datetime | None = None  # the literal time (UTC)


@dataclass(frozen=True)
class Action:
    kind: str  # one of ACTION_KEYS
    value: Any


@dataclass(frozen=True)
class Step:
    id: str
    index: int
    line: int
    actions: tuple[Action, ...]
    wait: timedelta | None = None
    at: AtExpr | None = None
    time: tuple[int, int] | None = None  # local hour, minute
    condition: Condition | None = None
    else_exit: bool = False

    @property
    def template(self) -> str | None:
        """The template this step sends, if it sends one."""
        for action in self.actions:
            if action.kind == "send":
                return str(action.value)
        return None

    def action(self, kind: str) -> Action | None:
        for action in self.actions:
            if action.kind == kind:
                return action
        return None


@dataclass(frozen=True)
class Trigger:
    kind: str  # one of TRIGGER_KINDS
    line: int = 0
    event: str | None = None
    where: dict[str, Any] = field(default_factory=dict)
    segment: Audience | None = None
    inactive: timedelta | None = None
    schedule: str | None = None
    at: datetime | None = None  # UTC
    data: tuple[str, ...] = ()  # event trigger: the keys its events carry (`data: [formation, session_start]`)

    def accepts(self, data: dict[str, Any]) -> bool:
        """For an event trigger: does this event's data pass `where:`?"""
        return fields_match(self.where, data)

    def describe(self) -> str:
        if self.kind == "event":
            where = f" where {', '.join(f'{k}={v}' for k, v in self.where.items())}" if self.where else ""
            return f"event {self.event}{where}"
        if self.kind == "segment":
            return f"segment {self.segment.describe() if self.segment else ''}"
        if self.kind == "inactive":
            return f"inactive {show_duration(self.inactive or timedelta())}"
        if self.kind == "schedule":
            return f"schedule {self.schedule}"
        return f"at {self.at.isoformat() if self.at else ''}"


@dataclass(frozen=True)
class Goal:
    event: str
    within: timedelta | None = None


@dataclass(frozen=True)
class Sequence:
    name: str
    file: str
    trigger: Trigger
    steps: tuple[Step, ...]
    description: str = ""
    purpose: str = events.MARKETING
    enabled: bool = True
    audience: Audience = field(default_factory=Audience)
    exit_on: tuple[str, ...] = ()
    reenter: bool = False
    goal: Goal | None = None
    topic: str | None = None  # settings `topics:`: contacts who left it get none of its mail

    @property
    def hangs_on_session(self) -> bool:
        """A session sequence: a step's `at:` reads `session.*`, so it only starts for an event naming a session."""
        return any(step.at is not None and step.at.source == "session" for step in self.steps)

    def step(self, step_id: str) -> Step | None:
        for step in self.steps:
            if step.id == step_id:
                return step
        return None

    def cron(self, tz: Any) -> CronTrigger:
        """The APScheduler trigger of a `schedule:` sequence, in the project timezone."""
        from apscheduler.triggers.cron import CronTrigger

        return CronTrigger.from_crontab(str(self.trigger.schedule), timezone=tz)


def show_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
