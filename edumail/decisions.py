"""What the engine decided: one Decision per thing done (or that a plan foresees), and the run's report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from edumail import contacts, events

BATCH = 500
EXITED_MARKETING = ("opted out",)
ALWAYS_EXIT = ("forgotten", "bounced")


@dataclass
class Decision:
    """One thing the engine did (or would do, in a dry run or a plan)."""

    at: datetime  # when it takes effect: the mail's not_before, else the run's now
    sequence: str
    step: str
    contact_id: int
    email: str
    outcome: str  # entered | sent | done | skipped | exited | completed | failed | goal
    reason: str = ""
    template: str | None = None
    purpose: str = events.MARKETING
    mail_id: int | None = None
    actions: tuple[str, ...] = ()
    conditional: bool = False  # depended on opens or clicks, which a plan cannot foresee
    session: str | None = None  # the session of a session journey (SPEC 13)


@dataclass
class EngineReport:
    now: datetime
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Decision]:
        """The journeys that failed this run (each logged with its reason; `errors` says them in words)."""
        return [d for d in self.decisions if d.outcome == "failed"]

    def count(self, outcome: str, sequence: str | None = None) -> int:
        return sum(1 for d in self.decisions if d.outcome == outcome and (sequence is None or d.sequence == sequence))

    def by_sequence(self) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = {}
        for d in self.decisions:
            table.setdefault(d.sequence, Counter())[d.outcome] += 1
        return table

    def skip_reasons(self) -> Counter[str]:
        return Counter(
            f"{d.sequence}/{d.step}: {d.reason}" for d in self.decisions if d.outcome in ("skipped", "failed")
        )


def show_delta(delta: timedelta) -> str:
    """2d3h, 24h5m, 40m: precise enough to see why a step was too late."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days >= 2:
        return f"{days}d{hours}h" if hours else f"{days}d"
    hours += days * 24
    if hours:
        return f"{hours}h{mins}m" if mins else f"{hours}h"
    return f"{mins}m"


def contact_fields(contact: dict[str, Any]) -> dict[str, Any]:
    return contacts.template_view(contact, [])
