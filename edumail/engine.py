"""Enrol contacts and advance journeys: decisions from (store, sequences, now).

One journey = one contact going through one sequence for one trigger. The
engine enrols (event, segment, inactive, schedule, at triggers), ends the
journeys an `exit_on` event or an unsubscribe stops, then runs every step that
is due: guard (consent, exit_on, audience), condition, actions, and the time of
the next step. Each step is one transaction: the mail is queued in the outbox
together with the journey's advance, so a crash never sends or skips twice.
Every decision is written to journey_log.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import audience, clock, contacts, events, journeys
from edumail.conditions import evaluate
from edumail.errors import EdumailError, InputError
from edumail.journeys import JOURNEY
from edumail.message import new_message_id
from edumail.sequences import Sequence, Step
from edumail.store.journeys import moment_text, trigger_key

if TYPE_CHECKING:
    from edumail.project import Project
    from edumail.store import Store

MAX_PASSES = 5  # actions record events (tag_added...) that may enrol into other sequences in the same run
BATCH = 500
COMMIT_EVERY = 100  # journeys per transaction: commits cost, a savepoint keeps each journey atomic
NOTIFY_TEMPLATE = "__notify__"
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


@dataclass
class EngineReport:
    now: datetime
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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


# --- time ------------------------------------------------------------------------


def _show_delta(delta: timedelta) -> str:
    """2d3h, 24h5m, 40m: precise enough to see why a step was too late."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days >= 2:
        return f"{days}d{hours}h" if hours else f"{days}d"
    hours += days * 24
    if hours:
        return f"{hours}h{mins}m" if mins else f"{hours}h"
    return f"{mins}m"


# --- the journey's view for conditions ----------------------------------------------------


class _Facts:
    def __init__(self, store: Store, journey: dict[str, Any], contact: dict[str, Any], tags: set[str]):
        self.store, self.journey = store, journey
        self.contact_id = contact["id"]
        self.tags = tags
        self.stage = contact.get("stage") or ""
        self.fields = contacts.template_view(contact, sorted(tags))

    def mailed(self, step_id: str) -> bool:
        return self.store.step_mail_id(self.journey["id"], step_id) is not None

    def opened(self, step_id: str) -> bool:
        # A person's click means the mail was opened, even when its images (the pixel) were blocked.
        return self.store.step_mail_event(self.journey["id"], step_id, events.EMAIL_OPENED, events.EMAIL_CLICKED)

    def clicked(self, step_id: str) -> bool:
        return self.store.step_mail_event(self.journey["id"], step_id, events.EMAIL_CLICKED)

    def had_event(self, names: tuple[str, ...]) -> bool:
        found = self.store.contact_had_event(
            self.contact_id, list(names), self.journey["started_at"], self.journey.get("trigger_event_id")
        )
        return found is not None


# --- the engine -------------------------------------------------------------------------------


class Engine:
    """Decides and records, for one project and its validated sequences."""

    def __init__(self, project: Project, sequences: list[Sequence], *, backfill: bool = False):
        self.project = project
        self.store = project.store()
        self.settings = project.settings
        self.tz = self.settings.tz
        self.sequences = {s.name: s for s in sequences}
        self.enabled = sorted(s.name for s in sequences if s.enabled)
        self.backfill = backfill
        self.domain = self.settings.sender.domain
        self._event_cache: dict[int, dict[str, Any]] = {}
        self.heartbeat: Any = None  # called between batches (the run renews its lock)

    def run(self, now: datetime) -> EngineReport:
        """Enrol, end what must end, run every due step; repeat while actions record new events."""
        report = EngineReport(now)
        for _ in range(MAX_PASSES):
            mark = self.store.max_event_id()
            self.enrol(now, report)
            self.exits(now, report)
            self.advance(now, report)
            if self.store.max_event_id() == mark:
                break
            self.backfill = False
        return report

    # --- enrolment ----------------------------------------------------------------------

    def enrol(self, now: datetime, report: EngineReport) -> None:
        upto = self.store.max_event_id()
        seen = self.store.sequences_seen()
        for sequence in self.sequences.values():
            row = seen.get(sequence.name)
            first = row is None
            if row is None:
                with self.store.transaction():
                    self.store.add_sequence_seen(sequence.name, now, upto)
                row = {
                    "first_seen_at": now,
                    "first_event_id": upto,
                    "cursor_event_id": upto,
                    "last_schedule_at": None,
                }
            kind = sequence.trigger.kind
            if kind == "event":
                self._enrol_events(sequence, row, upto, now, report)
            elif kind == "segment":
                self._enrol_segment(sequence, first, now, report)
            elif kind == "inactive":
                self._enrol_inactive(sequence, row, now, report)
            else:
                self._enrol_scheduled(sequence, row, now, report)

    def _enrol_events(
        self, sequence: Sequence, row: dict[str, Any], upto: int, now: datetime, report: EngineReport
    ) -> None:
        trigger = sequence.trigger
        after = 0 if self.backfill else int(row["cursor_event_id"])
        while after < upto:
            batch = self.store.events_named_between([str(trigger.event)], after, upto, BATCH)
            if not batch:
                break
            people = self.store.contacts_by_ids(e["contact_id"] for e in batch)
            tags = self.store.tags_by_ids(people)
            with self.store.transaction():
                for event in batch:
                    data = json.loads(event["data"] or "{}")
                    contact = people.get(event["contact_id"])
                    if sequence.enabled and contact is not None and trigger.accepts(data):
                        key = f"event:{event['id']}" if sequence.reenter else "event"
                        started = event["at"]
                        self._enter(
                            sequence, contact, tags[contact["id"]], key, event["id"], started, now, report, data
                        )
                self.store.set_sequence_cursor(sequence.name, batch[-1]["id"])
            after = batch[-1]["id"]
        with self.store.transaction():
            self.store.set_sequence_cursor(sequence.name, upto)

    def _enrol_segment(self, sequence: Sequence, first: bool, now: datetime, report: EngineReport) -> None:
        segment = sequence.trigger.segment
        assert segment is not None
        with self.store.transaction():
            self.store.segment_departures(sequence.name, segment)
            arrivals = self.store.segment_arrivals(sequence.name, segment)
            if self.backfill:
                arrivals = self.store.audience_contact_ids(segment)
        for start in range(0, len(arrivals), BATCH):
            chunk = arrivals[start : start + BATCH]
            people = self.store.contacts_by_ids(chunk)
            tags = self.store.tags_by_ids(chunk)
            with self.store.transaction():
                members = [
                    cid
                    for cid in chunk
                    if cid in people and segment.matches(people[cid]["stage"], tags[cid], _fields(people[cid]))
                ]
                self.store.add_segment_members(sequence.name, members)
                if (first and not self.backfill) or not sequence.enabled:
                    continue  # already matching when the sequence appeared: they did not "start matching"
                for cid in members:
                    if self.backfill and sequence.reenter and self.store.has_journey(sequence.name, cid):
                        continue
                    key = trigger_key("segment", now) if sequence.reenter else "segment"
                    self._enter(sequence, people[cid], tags[cid], key, None, now, now, report, {})

    def _enrol_inactive(self, sequence: Sequence, row: dict[str, Any], now: datetime, report: EngineReport) -> None:
        span = sequence.trigger.inactive
        assert span is not None
        first_seen = row["first_seen_at"]
        floor = None if self.backfill else first_seen - span
        found = self.store.inactive_contacts(sequence.name, now - span, floor, sequence.reenter)
        if not sequence.enabled:
            return
        for start in range(0, len(found), BATCH):
            chunk = found[start : start + BATCH]
            people = self.store.contacts_by_ids(r["id"] for r in chunk)
            tags = self.store.tags_by_ids(people)
            with self.store.transaction():
                for item in chunk:
                    since = item["since"]
                    started = since + span if since + span >= first_seen else now
                    key = trigger_key("inactive", item["since"]) if sequence.reenter else "inactive"
                    contact = people[item["id"]]
                    self._enter(sequence, contact, tags[contact["id"]], key, None, started, now, report, {})

    def _enrol_scheduled(self, sequence: Sequence, row: dict[str, Any], now: datetime, report: EngineReport) -> None:
        last = row["last_schedule_at"] or row["first_seen_at"]
        firing = self._last_firing(sequence, last, now, row["last_schedule_at"] is None)
        if firing is None:
            return
        with self.store.transaction():
            self.store.set_sequence_fired(sequence.name, firing)
        if not sequence.enabled:
            return
        late = now - firing
        if late > self.settings.limits.max_late:
            report.notes.append(
                f"{sequence.name}: the {sequence.trigger.describe()} firing of {clock.show(firing, self.tz)} is "
                f"{_show_delta(late)} late (limits.max_late): nobody entered"
            )
            return
        key = trigger_key(sequence.trigger.kind, firing) if sequence.reenter else sequence.trigger.kind
        ids = self.store.audience_contact_ids(sequence.audience)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            people = self.store.contacts_by_ids(chunk)
            tags = self.store.tags_by_ids(chunk)
            with self.store.transaction():
                for cid in chunk:
                    self._enter(sequence, people[cid], tags[cid], key, None, firing, now, report, {})

    def _last_firing(self, sequence: Sequence, last: datetime, now: datetime, never: bool) -> datetime | None:
        """The latest schedule/at firing in (last, now], if any."""
        if sequence.trigger.kind == "at":
            moment = sequence.trigger.at
            return moment if never and moment is not None and moment <= now else None
        cron = sequence.cron(self.tz)
        latest = None
        probe = cron.get_next_fire_time(None, last + timedelta(seconds=1))
        for _ in range(100_000):
            if probe is None or probe > now:
                break
            latest = probe
            probe = cron.get_next_fire_time(latest, latest + timedelta(seconds=1))
        return None if latest is None else latest.astimezone(clock.UTC)

    def next_firing(self, after: datetime) -> datetime | None:
        """When the next schedule/at trigger fires after `after` (for `plan`)."""
        seen = self.store.sequences_seen()
        found: list[datetime] = []
        for sequence in self.sequences.values():
            if not sequence.enabled:
                continue
            row = seen.get(sequence.name) or {}
            if sequence.trigger.kind == "at" and sequence.trigger.at and not row.get("last_schedule_at"):
                if sequence.trigger.at > after:
                    found.append(sequence.trigger.at)
            elif sequence.trigger.kind == "schedule":
                probe = sequence.cron(self.tz).get_next_fire_time(None, after + timedelta(seconds=1))
                if probe is not None:
                    found.append(probe.astimezone(clock.UTC))
            elif sequence.trigger.kind == "inactive" and sequence.trigger.inactive:
                since = self.store.next_inactivity_since(after - sequence.trigger.inactive)
                if since:
                    found.append(since + sequence.trigger.inactive)
        return min(found) if found else None

    def _enter(
        self,
        sequence: Sequence,
        contact: dict[str, Any],
        tags: set[str],
        key: str,
        event_id: int | None,
        started: datetime,
        now: datetime,
        report: EngineReport,
        data: dict[str, Any],
    ) -> None:
        """One contact enters one sequence, if it may (in the caller's transaction)."""
        refusal = contacts.may_receive(contact, sequence.purpose)
        if refusal in ALWAYS_EXIT or refusal in EXITED_MARKETING:
            return  # they get no mail of this purpose at all: no journey to record
        if not sequence.audience.matches(contact["stage"], tags, _fields(contact)):
            return
        journey_id = self.store.insert_journey(
            sequence.name, contact["id"], key, event_id, started, sequence.purpose
        )
        if journey_id is None:
            return
        self.store.log_step(journey_id, JOURNEY, now, "entered", f"trigger: {sequence.trigger.describe()}")
        report.decisions.append(
            Decision(now, sequence.name, JOURNEY, contact["id"], contact["email"], "entered", purpose=sequence.purpose)
        )
        if event_id is not None:
            self._event_cache[event_id] = data
        journey = {
            "id": journey_id,
            "sequence": sequence.name,
            "contact_id": contact["id"],
            "trigger_event_id": event_id,
            "started_at": started,
            "step_index": 0,
            "last_step_at": started,
            "state": "active",
        }
        self._schedule(sequence, journey, contact, now, report)

    # --- exits and goals from new events -------------------------------------------------------

    def exits(self, now: datetime, report: EngineReport) -> None:
        """End journeys on their exit_on events and on unsubscribes; note goals reached."""
        exit_names = {n for s in self.sequences.values() for n in s.exit_on}
        goal_names = {s.goal.event for s in self.sequences.values() if s.goal}
        names = exit_names | goal_names | {events.UNSUBSCRIBED}
        upto = self.store.max_event_id()
        stored = self.store.get_meta("engine.exit_cursor")
        after = 0 if self.backfill or stored is None else int(stored)
        if stored is None and not self.backfill:
            after = upto
        while after < upto:
            batch = self.store.events_named_between(names, after, upto, BATCH)
            if not batch:
                break
            with self.store.transaction():
                for event in batch:
                    self._on_event(event, now, report)
            after = batch[-1]["id"]
        with self.store.transaction():
            self.store.set_meta("engine.exit_cursor", str(upto))

    def _on_event(self, event: dict[str, Any], now: datetime, report: EngineReport) -> None:
        name, contact_id = event["name"], event["contact_id"]
        if name == events.UNSUBSCRIBED:
            for journey in self.store.active_journeys_of(contact_id, purpose=events.MARKETING):
                self._exit(journey, "unsubscribed", now, report)
        for sequence in self.sequences.values():
            if name in sequence.exit_on:
                for journey in self.store.active_journeys_of(contact_id, [sequence.name]):
                    if journey["started_at"] <= event["at"] and journey["trigger_event_id"] != event["id"]:
                        self._exit(journey, f"exit_on: {name}", now, report)
            goal = sequence.goal
            if goal is not None and goal.event == name:
                for journey in self.store.journeys_reaching_goal(contact_id, sequence.name, event["at"]):
                    started = journey["started_at"]
                    if journey["trigger_event_id"] == event["id"]:
                        continue
                    if goal.within is None or event["at"] <= started + goal.within:
                        reason = f"{name} at {moment_text(event['at'])}"
                        self.store.log_step(journey["id"], JOURNEY, now, "goal", reason)
                        report.decisions.append(
                            Decision(
                                now, sequence.name, JOURNEY, contact_id, "", "goal", name, purpose=sequence.purpose
                            )
                        )

    def _exit(self, journey: dict[str, Any], reason: str, now: datetime, report: EngineReport) -> None:
        sequence = self.sequences.get(journey["sequence"])
        step_id = JOURNEY
        if sequence is not None and journey["step_index"] < len(sequence.steps):
            step_id = sequence.steps[journey["step_index"]].id
        if journeys.end(self.store, journey, reason, now, step_id=step_id):
            report.decisions.append(
                Decision(
                    now,
                    journey["sequence"],
                    step_id,
                    journey["contact_id"],
                    "",
                    "exited",
                    reason,
                    purpose=journey["purpose"],
                )
            )

    # --- advancing ----------------------------------------------------------------------------

    def advance(self, now: datetime, report: EngineReport) -> None:
        """Run every step due at `now`, journey by journey, each all-or-nothing."""
        after = 0
        while True:
            batch = self.store.due_journeys(self.enabled, now, after, BATCH)
            if not batch:
                break
            after = batch[-1]["id"]
            people = self.store.contacts_by_ids(j["contact_id"] for j in batch)
            tags = self.store.tags_by_ids(people)
            if len(self._event_cache) > 10 * BATCH:
                self._event_cache.clear()
            self._event_cache.update(self.store.event_data_many(j["trigger_event_id"] for j in batch))
            for start in range(0, len(batch), COMMIT_EVERY):
                # One commit per slice of journeys; a savepoint per journey keeps each one all-or-nothing.
                with self.store.transaction():
                    for journey in batch[start : start + COMMIT_EVERY]:
                        self._advance_one(journey, people, tags, now, report)
            if self.heartbeat is not None:
                self.heartbeat()

    def _advance_one(
        self,
        journey: dict[str, Any],
        people: dict[int, dict[str, Any]],
        tags: dict[int, set[str]],
        now: datetime,
        report: EngineReport,
    ) -> None:
        sequence = self.sequences[journey["sequence"]]
        contact = people.get(journey["contact_id"])
        if contact is None:
            return
        decided = len(report.decisions)
        try:
            with self.store.savepoint():
                changed = self._advance_journey(sequence, dict(journey), contact, tags[contact["id"]], now, report)
        except (EdumailError, ValueError) as exc:
            del report.decisions[decided:]  # undone with the savepoint
            self._failed(sequence, journey, contact, exc, now, report)
            changed = True
        if changed:
            people.update(self.store.contacts_by_ids([contact["id"]]))
            tags.update(self.store.tags_by_ids([contact["id"]]))

    def _failed(
        self,
        sequence: Sequence,
        journey: dict[str, Any],
        contact: dict[str, Any],
        exc: Exception,
        now: datetime,
        report: EngineReport,
    ) -> None:
        step = sequence.steps[journey["step_index"]] if journey["step_index"] < len(sequence.steps) else None
        step_id = step.id if step else JOURNEY
        reason = f"error: {exc}"
        with self.store.transaction():
            journeys.end(self.store, journey, reason, now, step_id=step_id, outcome="failed")
        report.errors.append(f"{sequence.name}/{step_id} for {contact['email']}: {exc}")
        report.decisions.append(
            Decision(now, sequence.name, step_id, contact["id"], contact["email"], "failed", reason)
        )

    def _advance_journey(
        self,
        sequence: Sequence,
        journey: dict[str, Any],
        contact: dict[str, Any],
        tags: set[str],
        now: datetime,
        report: EngineReport,
    ) -> bool:
        """Run this journey's due steps; True when the contact itself changed."""
        changed = False
        while journey["state"] == "active" and journey["due_at"] is not None and journey["due_at"] <= now:
            step = sequence.steps[journey["step_index"]]
            due = journey["due_at"]
            stop = self._guard(sequence, journey, contact, tags)
            if stop:
                self._exit(journey, stop, now, report)
                return changed
            if step.condition is not None and not evaluate(step.condition, _Facts(self.store, journey, contact, tags)):
                why = f"condition not met: {step.condition.describe()}"
                unsent = [
                    ref for ref, _ in step.condition.step_refs() if not self.store.step_mail_id(journey["id"], ref)
                ]
                if unsent:
                    why += f" ({', '.join(sorted(set(unsent)))} sent no mail in this journey)"
                if step.else_exit:
                    self._exit(journey, f"{why} (else: exit)", now, report)
                    return changed
                self._log(
                    sequence,
                    step,
                    journey,
                    contact,
                    now,
                    report,
                    "skipped",
                    why,
                    conditional=step.condition.looks_at_mail(),
                )
            else:
                changed = self._run_step(sequence, step, journey, contact, tags, due, now, report) or changed
                if changed:
                    contact = self.store.contact(contact["id"]) or contact
                    tags = set(self.store.tags_of(contact["id"]))
            journey["step_index"] += 1
            journey["last_step_at"] = max(journey["last_step_at"], journey["due_at"])
            self._schedule(sequence, journey, contact, now, report)
        return changed

    def _guard(
        self, sequence: Sequence, journey: dict[str, Any], contact: dict[str, Any], tags: set[str]
    ) -> str | None:
        """Why this journey must end before its next step, or None."""
        refusal = contacts.may_receive(contact, sequence.purpose)
        if refusal in ALWAYS_EXIT or refusal in EXITED_MARKETING:
            return refusal
        if sequence.exit_on:
            found = self.store.contact_had_event(
                contact["id"], list(sequence.exit_on), journey["started_at"], journey.get("trigger_event_id")
            )
            if found:
                return f"exit_on: {found}"
        if not sequence.audience.matches(contact["stage"], tags, _fields(contact)):
            return f"no longer in the audience ({sequence.audience.describe()})"
        return None

    def _run_step(
        self,
        sequence: Sequence,
        step: Step,
        journey: dict[str, Any],
        contact: dict[str, Any],
        tags: set[str],
        due: datetime,
        now: datetime,
        report: EngineReport,
    ) -> bool:
        late = now - due
        too_late = late > self.settings.limits.max_late
        source = f"sequence:{sequence.name}"
        done: list[str] = []
        withheld: str | None = None
        mail_id: int | None = None
        changed = False
        for action in step.actions:
            kind, value = action.kind, action.value
            if kind == "set":
                contacts.set_fields(self.store, contact["id"], dict(value), now)
                done.append(f"set {', '.join(value)}")
                changed = True
            elif kind == "stage":
                contacts.set_stage(self.store, contact["id"], value, now, source)
                done.append(f"stage {value}")
                changed = True
            elif kind in ("tag", "untag"):
                change = contacts.add_tags if kind == "tag" else contacts.remove_tags
                change(self.store, contact["id"], list(value), now, source)
                done.append(f"{kind} {', '.join(value)}")
                changed = True
            elif kind == "webhook":
                self.store.add_task(
                    "webhook",
                    self._webhook_payload(value, sequence, step, journey, contact, tags, now),
                    journey["id"],
                    step.id,
                    now,
                )
                done.append(f"webhook {value}")
            elif too_late:
                withheld = f"{_show_delta(late)} late (limits.max_late {_show_delta(self.settings.limits.max_late)})"
            elif kind == "notify":
                self.store.enqueue_mail(
                    message_id=new_message_id(self.domain),
                    template=NOTIFY_TEMPLATE,
                    purpose=events.SERVICE,
                    not_before=now,
                    now=now,
                    contact_id=contact["id"],
                    to_email=value,
                    context=self._notify_context(sequence, step, contact, tags, journey),
                    journey_id=journey["id"],
                    step_id=f"{step.id}:notify",
                    sequence=sequence.name,
                )
                done.append(f"notify {value}")
            else:
                withheld = self._mail_refusal(sequence, contact, now)
                if withheld is None:
                    mail_id = self.store.enqueue_mail(
                        message_id=new_message_id(self.domain),
                        template=value,
                        purpose=sequence.purpose,
                        not_before=due,
                        now=now,
                        contact_id=contact["id"],
                        context={"event": self._event_data(journey)},
                        journey_id=journey["id"],
                        step_id=step.id,
                        sequence=sequence.name,
                    )
                    if mail_id is None:
                        withheld = "already queued for this journey"
        at = due if mail_id is not None else now
        if withheld is not None:
            reason = withheld + (f"; done: {', '.join(done)}" if done else "")
            self._log(sequence, step, journey, contact, now, report, "skipped", reason, done=done)
        else:
            outcome = "sent" if mail_id is not None else "done"
            self._log(
                sequence, step, journey, contact, at, report, outcome, ", ".join(done), mail_id=mail_id, done=done
            )
        return changed

    def _mail_refusal(self, sequence: Sequence, contact: dict[str, Any], now: datetime) -> str | None:
        refusal = contacts.may_receive(contact, sequence.purpose)
        if refusal is not None:
            return refusal
        limit = self.settings.limits.marketing_per_week
        if sequence.purpose == events.MARKETING and limit:
            recent = audience.weekly_marketing(self.store, now, [contact["id"]]).get(contact["id"], 0)
            if recent >= limit:
                return (
                    f"weekly marketing limit reached ({recent} in the last 7 days, limits.marketing_per_week {limit})"
                )
        return None

    def _log(
        self,
        sequence: Sequence,
        step: Step,
        journey: dict[str, Any],
        contact: dict[str, Any],
        at: datetime,
        report: EngineReport,
        outcome: str,
        reason: str,
        *,
        mail_id: int | None = None,
        done: list[str] | None = None,
        conditional: bool = False,
    ) -> None:
        self.store.log_step(journey["id"], step.id, report.now, outcome, reason, mail_id)
        mentions_mail = step.condition is not None and step.condition.looks_at_mail()
        report.decisions.append(
            Decision(
                at,
                sequence.name,
                step.id,
                contact["id"],
                contact["email"],
                outcome,
                reason,
                template=step.template,
                purpose=sequence.purpose,
                mail_id=mail_id,
                actions=tuple(done or ()),
                conditional=conditional or mentions_mail,
            )
        )

    # --- when is the next step? -------------------------------------------------------------

    def _schedule(
        self, sequence: Sequence, journey: dict[str, Any], contact: dict[str, Any], now: datetime, report: EngineReport
    ) -> None:
        """Set the journey's next due time; skip (and log) steps whose time cannot be known."""
        while journey["step_index"] < len(sequence.steps):
            step = sequence.steps[journey["step_index"]]
            due, why = self.step_time(sequence, step, journey, contact)
            if due is not None:
                journey["due_at"] = due
                self.store.move_journey(
                    journey["id"], journey["step_index"], journey["last_step_at"], journey["due_at"]
                )
                return
            self._log(sequence, step, journey, contact, now, report, "skipped", why)
            journey["step_index"] += 1
        journey["due_at"] = None
        journey["state"] = "completed"
        self.store.move_journey(journey["id"], journey["step_index"], journey["last_step_at"], None)
        if journeys.end(self.store, journey, "all steps done", now, state="completed"):
            report.decisions.append(
                Decision(
                    now, sequence.name, JOURNEY, contact["id"], contact["email"], "completed", purpose=sequence.purpose
                )
            )

    def step_time(
        self, sequence: Sequence, step: Step, journey: dict[str, Any], contact: dict[str, Any]
    ) -> tuple[datetime | None, str]:
        """When this step is due (UTC), or None and why it can never be."""
        tz = self.contact_tz(contact)
        last = journey["last_step_at"]
        if step.at is not None and step.at.moment is not None:
            base = step.at.moment  # a literal `at: 2026-12-01T09:00`
        elif step.at is not None:
            source = self._event_data(journey) if step.at.source == "event" else contacts.template_view(contact, [])
            owner = "the trigger event" if step.at.source == "event" else "the contact"
            raw = source.get(step.at.field)
            if raw is None or str(raw).strip() == "":
                return None, f"at: {step.at.text}: {owner} has no {step.at.field!r}"
            try:
                base = clock.shift(clock.parse_iso(str(raw), tz), step.at.offset, tz)
            except InputError:
                return None, f"at: {step.at.text}: {owner}'s {step.at.field} = {raw!r} is not a date"
        elif step.wait is not None:
            base = clock.shift(last, step.wait, tz)
        else:
            base = last
        if step.time is not None:
            base = clock.at_local_time(base, step.time, tz)
        window = self.settings.send_window
        if window is not None and sequence.purpose == events.MARKETING and step.template is not None:
            base = window.next_opening(base, tz)
        return base, ""

    def contact_tz(self, contact: dict[str, Any]) -> Any:
        name = contact.get("timezone")
        if name:
            try:
                return clock.zone(name)
            except InputError:
                pass
        return self.tz

    def _event_data(self, journey: dict[str, Any]) -> dict[str, Any]:
        event_id = journey.get("trigger_event_id")
        if event_id is None:
            return {}
        if event_id not in self._event_cache:
            self._event_cache[event_id] = self.store.event_data(event_id)
        return self._event_cache[event_id]

    # --- payloads -------------------------------------------------------------------------------

    def _webhook_payload(
        self,
        url: str,
        sequence: Sequence,
        step: Step,
        journey: dict[str, Any],
        contact: dict[str, Any],
        tags: set[str],
        now: datetime,
    ) -> dict[str, Any]:
        body = {
            "contact": contacts.template_view(contact, sorted(tags)),
            "sequence": sequence.name,
            "step": step.id,
            "journey_id": journey["id"],
            "event": self._event_data(journey),
            "at": now.isoformat(),
        }
        return {"url": url, "body": body}

    def _notify_context(
        self, sequence: Sequence, step: Step, contact: dict[str, Any], tags: set[str], journey: dict[str, Any]
    ) -> dict[str, Any]:
        name = contacts.display_name(contact) or contact["email"]
        lines = [
            f"{name} <{contact['email']}> reached step {step.id!r} of the sequence {sequence.name!r}.",
            "",
            f"stage: {contact.get('stage') or '-'}",
            f"tags: {', '.join(sorted(tags)) or '-'}",
        ]
        data = self._event_data(journey)
        if data:
            lines.append("event: " + ", ".join(f"{k}={v}" for k, v in sorted(data.items())))
        return {"subject": f"[edumail] {sequence.name}: {name}", "body": "\n".join(lines)}


def _fields(contact: dict[str, Any]) -> dict[str, Any]:
    return contacts.template_view(contact, [])
