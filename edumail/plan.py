"""`edumail plan`: what the sequences will do over the next days, sending nothing.

The forecast is the engine itself, run forward in time inside one database
transaction that is rolled back at the end: at each moment something is due
(a step, a cron firing, a contact turning inactive) the engine runs as a
daemon would at that instant. So the plan and the later runs make the same
decisions from the same facts. What it cannot know: events that have not
happened yet (opens, clicks, replies, enrolments); conditions on opens and
clicks are marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import clock, sequences
from edumail.engine import JOURNEY, Decision, Engine
from edumail.errors import NotFound
from edumail.runner import broken_names, rolled_back
from edumail.yamlfile import did_you_mean

if TYPE_CHECKING:
    from edumail.project import Project

MAX_MOMENTS = 20_000


@dataclass
class Plan:
    start: datetime
    until: datetime
    timezone: str
    decisions: list[Decision] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # sequence files skipped for an error, file:line: message

    @property
    def mails(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome == "sent"]

    @property
    def skipped(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome in ("skipped", "failed")]

    @property
    def actions(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome in ("sent", "done") and d.actions]

    @property
    def exits(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome == "exited"]

    def as_json(self) -> dict[str, Any]:
        tz = clock.zone(self.timezone)

        def item(d: Decision) -> dict[str, Any]:
            return {
                "at": d.at.astimezone(tz).isoformat(),
                "sequence": d.sequence,
                "step": d.step,
                "contact": d.email,
                "outcome": d.outcome,
                "template": d.template if d.outcome == "sent" else None,
                "purpose": d.purpose,
                "actions": list(d.actions),
                "conditional": d.conditional,
                "reason": d.reason,
                "session": d.session,
            }

        shown = [d for d in self.decisions if d.step != JOURNEY or d.outcome == "exited"]
        return {
            "from": self.start.astimezone(tz).isoformat(),
            "until": self.until.astimezone(tz).isoformat(),
            "timezone": self.timezone,
            "items": [item(d) for d in shown],
            "totals": {
                "mails": len(self.mails),
                "marketing": sum(1 for d in self.mails if d.purpose == "marketing"),
                "service": sum(1 for d in self.mails if d.purpose == "service"),
                "contacts": len({d.contact_id for d in self.mails}),
                "skipped": len(self.skipped),
                "exited": len(self.exits),
            },
            "notes": self.notes,
            "problems": self.problems,
        }


def forecast(project: Project, *, now: datetime, days: int, sequence: str | None = None) -> Plan:
    """Simulate the next `days` days from `now` and return every decision, changing nothing.

    A sequence file with an error is reported in `problems` and left out, its journeys waiting, as `run` does.
    """
    loaded, problems = sequences.load(project)
    names = [s.name for s in loaded]
    if sequence is not None and sequence not in names:
        raise NotFound(
            f"no sequence {sequence!r}{did_you_mean(sequence, names)} (sequences: {', '.join(names) or 'none'})"
        )
    until = now + timedelta(days=days)
    plan = Plan(now, until, project.settings.timezone, problems=[str(p) for p in problems])
    store = project.store()
    engine = Engine(project, loaded, broken=broken_names(project, problems))
    with rolled_back(store):
        moment: datetime | None = now
        for _ in range(MAX_MOMENTS):
            assert moment is not None
            report = engine.run(moment)
            plan.decisions.extend(report.decisions)
            plan.notes.extend(report.notes)
            plan.notes.extend(report.errors)
            moment = _next_moment(engine, moment)
            if moment is None or moment > until:
                break
        else:
            plan.notes.append(f"stopped after {MAX_MOMENTS} moments; try fewer --days")
        emails = {c["id"]: c["email"] for c in store.contacts_by_ids(d.contact_id for d in plan.decisions).values()}
    for decision in plan.decisions:
        decision.email = decision.email or emails.get(decision.contact_id, "")
    if sequence is not None:
        plan.decisions = [d for d in plan.decisions if d.sequence == sequence]
    plan.decisions.sort(key=lambda d: (d.at, d.sequence, d.email))
    return plan


def _next_moment(engine: Engine, after: datetime) -> datetime | None:
    candidates = []
    due = engine.store.next_due_at(engine.enabled, after)
    if due:
        candidates.append(due)
    firing = engine.next_firing(after)
    if firing is not None:
        candidates.append(firing)
    return min(candidates) if candidates else None
