"""Enrol contacts and advance journeys: decisions from (store, sequences, now).

One journey = one contact going through one sequence for one trigger. The
engine enrols (enrolment.py: event, segment, inactive, schedule, at
triggers), ends the journeys an `exit_on` event or an unsubscribe stops, then
runs every step that is due (step.py: guard, condition, actions) and the time
of the next step. Each step is one transaction: the mail is queued in the
outbox together with the journey's advance, so a crash never sends or skips
twice. Every decision is written to journey_log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import clock, contacts, events, journeys, live_edits, sessions
from edumail.conditions import evaluate
from edumail.decisions import BATCH, Decision, EngineReport
from edumail.enrolment import Enrolment
from edumail.errors import EdumailError, InputError
from edumail.journeys import JOURNEY
from edumail.sequences import Sequence, Step
from edumail.session_journeys import SESSION_EVENTS, SessionJourneys
from edumail.step import NOTIFY_TEMPLATE, StepRunner, _Facts
from edumail.store.journeys import moment_text

if TYPE_CHECKING:
    from edumail.project import Project

__all__ = ["JOURNEY", "NOTIFY_TEMPLATE", "Decision", "Engine", "EngineReport"]

MAX_PASSES = 5  # actions record events (tag_added...) that may enrol into other sequences in the same run
COMMIT_EVERY = 100  # journeys per transaction: commits cost, a savepoint keeps each journey atomic


# --- the engine -------------------------------------------------------------------------------


class Engine(Enrolment, StepRunner, SessionJourneys):
    """Decides and records, for one project and its validated sequences."""

    def __init__(
        self,
        project: Project,
        sequences: list[Sequence],
        *,
        backfill: bool = False,
        broken: frozenset[str] = frozenset(),
    ):
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
        self.broken = broken  # sequences whose file has an error this run: their journeys wait
        self._ids = {s.name: [step.id for step in s.steps] for s in sequences}

    def run(self, now: datetime) -> EngineReport:
        """Enrol, end what must end, run every due step; repeat while actions record new events."""
        report = EngineReport(now)
        self.sync(now, report)
        for _ in range(MAX_PASSES):
            mark = self.store.max_event_id()
            self.enrol(now, report)
            self.exits(now, report)
            self.advance(now, report)
            if self.store.max_event_id() == mark:
                break
            self.backfill = False
        return report

    # --- exits and goals from new events -------------------------------------------------------

    def exits(self, now: datetime, report: EngineReport) -> None:
        """End journeys on their exit_on events and on unsubscribes; note goals reached."""
        exit_names = {n for s in self.sequences.values() for n in s.exit_on}
        goal_names = {s.goal.event for s in self.sequences.values() if s.goal}
        names = exit_names | goal_names | {events.UNSUBSCRIBED} | SESSION_EVENTS
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
        if name in SESSION_EVENTS:
            self.on_session_event(event, now, report)
        if name == events.UNSUBSCRIBED:
            for journey in self.store.active_journeys_of(contact_id, purpose=events.MARKETING):
                self._exit(journey, "unsubscribed", now, report)
        for sequence in self.sequences.values():
            if name in sequence.exit_on:
                scope = sessions.session_id_of(json.loads(event["data"] or "{}"))
                for journey in self.store.active_journeys_of(contact_id, [sequence.name]):
                    if scope is not None and journey["session_id"] not in (None, scope):
                        continue  # another session's event ends only that session's journey
                    if journey["started_at"] <= event["at"] and journey["trigger_event_id"] != event["id"]:
                        self._exit(journey, f"exit_on: {name}", now, report)
            goal = sequence.goal
            if goal is not None and goal.event == name:
                for journey in self.store.journeys_reaching_goal(contact_id, sequence.name, event["at"]):
                    started = journey["started_at"]
                    if journey["trigger_event_id"] == event["id"]:
                        continue
                    if goal.within is None or _within(event["at"], started, goal.within):
                        reason = f"{name} at {moment_text(event['at'])}"
                        self.store.log_step(journey["id"], JOURNEY, now, "goal", reason)
                        report.decisions.append(
                            Decision(
                                now, sequence.name, JOURNEY, contact_id, "", "goal", name, purpose=sequence.purpose
                            )
                        )

    def _exit(self, journey: dict[str, Any], reason: str, now: datetime, report: EngineReport) -> None:
        sequence = self.sequences.get(journey["sequence"])
        step = self.next_step(sequence, journey) if sequence is not None else None
        step_id = step.id if step is not None else JOURNEY
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
        their_tags = tags[contact["id"]]

        def advance(
            sequence: Sequence, journey: dict[str, Any], contact: dict[str, Any], now: datetime, report: EngineReport
        ) -> bool:
            return self._advance_journey(sequence, journey, contact, their_tags, now, report)

        changed = self._isolated(sequence, dict(journey), contact, now, report, advance)
        if changed:
            people.update(self.store.contacts_by_ids([contact["id"]]))
            tags.update(self.store.tags_by_ids([contact["id"]]))

    def _isolated(
        self,
        sequence: Sequence,
        journey: dict[str, Any],
        contact: dict[str, Any],
        now: datetime,
        report: EngineReport,
        action: Callable[[Sequence, dict[str, Any], dict[str, Any], datetime, EngineReport], Any],
    ) -> bool:
        """Run `action` for one journey in a savepoint: any error fails this journey alone (SPEC 11).

        Returns what the action returned (True when the contact changed), True after a failure.
        """
        decided = len(report.decisions)
        try:
            with self.store.savepoint():
                return bool(action(sequence, journey, contact, now, report))
        except Exception as exc:  # noqa: BLE001 - whatever it is, it stops this journey only
            del report.decisions[decided:]  # undone with the savepoint
            self._failed(sequence, journey, contact, exc, now, report)
            return True

    def _failed(
        self,
        sequence: Sequence,
        journey: dict[str, Any],
        contact: dict[str, Any],
        exc: Exception,
        now: datetime,
        report: EngineReport,
    ) -> None:
        step = self.next_step(sequence, journey)
        step_id = step.id if step else JOURNEY
        reason = f"error: {_why(exc)}"
        with self.store.transaction():
            journeys.end(self.store, journey, reason, now, step_id=step_id, outcome="failed")
        report.errors.append(f"{sequence.name}/{step_id} for {contact['email']}: {_why(exc)}")
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
            step = self.next_step(sequence, journey)
            if step is None:  # nothing left (a step removed since): complete
                self._schedule(sequence, journey, contact, now, report)
                return changed
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
            journey["last_step_id"] = step.id
            journey["last_step_at"] = max(journey["last_step_at"], journey["due_at"])
            self._schedule(sequence, journey, contact, now, report)
        return changed

    # --- when is the next step? -------------------------------------------------------------

    def _schedule(
        self, sequence: Sequence, journey: dict[str, Any], contact: dict[str, Any], now: datetime, report: EngineReport
    ) -> None:
        """Set the journey's next due time; skip (and log) steps whose time cannot be known."""
        while (step := self.next_step(sequence, journey)) is not None:
            due, why = self.step_time(sequence, step, journey, contact)
            if due is not None:
                journey["due_at"] = due
                self.store.move_journey(journey["id"], journey["last_step_id"], journey["last_step_at"], due)
                return
            self._log(sequence, step, journey, contact, now, report, "skipped", why)
            journey["last_step_id"] = step.id
        journey["due_at"] = None
        journey["state"] = "completed"
        self.store.move_journey(journey["id"], journey["last_step_id"], journey["last_step_at"], None)
        if journeys.end(self.store, journey, "all steps done", now, state="completed"):
            report.decisions.append(
                Decision(
                    now, sequence.name, JOURNEY, contact["id"], contact["email"], "completed", purpose=sequence.purpose
                )
            )

    def next_step(self, sequence: Sequence, journey: dict[str, Any]) -> Step | None:
        """The step this journey runs next, from the id of the last one it ran (SPEC 12)."""
        ids = self._ids[sequence.name]
        last = journey.get("last_step_id")
        if last is not None and last not in ids:  # an edit we have no snapshot of: ask the journey's log
            last = journey["last_step_id"] = live_edits.fallback_last(ids, self.store.steps_run(journey["id"]))
        index = live_edits.next_index(ids, last)
        return sequence.steps[index] if index < len(ids) else None

    # --- live edits -------------------------------------------------------------------------------

    def sync(self, now: datetime, report: EngineReport) -> None:
        """Bring journeys in line with the files: re-time edited sequences, end those whose file is gone."""
        seen = self.store.sequences_seen()
        for sequence in self.sequences.values():
            row = seen.get(sequence.name)
            if row is None:
                continue
            new = live_edits.snapshot(sequence)
            if row["steps"] is not None and row["steps"] != new:
                self._retime(sequence, row["steps"], now, report)
            if row["steps"] != new:
                with self.store.transaction():
                    self.store.set_sequence_steps(sequence.name, new)
        for name in seen:
            if name not in self.sequences and name not in self.broken:
                self._removed(name, now, report)

    def _retime(self, sequence: Sequence, old: live_edits.Snapshot, now: datetime, report: EngineReport) -> None:
        """After an edit: each journey in flight goes on from its last step, at the new times."""
        ids, after = self._ids[sequence.name], 0
        while batch := self.store.active_journeys_in(sequence.name, after, BATCH):
            after = batch[-1]["id"]
            people = self.store.contacts_by_ids(j["contact_id"] for j in batch)
            with self.store.transaction():
                for row in batch:
                    journey, contact = dict(row), people.get(row["contact_id"])
                    if contact is None:
                        continue
                    journey["last_step_id"] = live_edits.anchor(old, ids, journey["last_step_id"])
                    self._isolated(sequence, journey, contact, now, report, self._schedule)

    def _removed(self, name: str, now: datetime, report: EngineReport) -> None:
        """A sequence file deleted: its journeys end (`exited`, reason `sequence removed`)."""
        after = 0
        while batch := self.store.active_journeys_in(name, after, BATCH):
            after = batch[-1]["id"]
            with self.store.transaction():
                for journey in batch:
                    self._exit(journey, "sequence removed", now, report)

    def step_time(
        self, sequence: Sequence, step: Step, journey: dict[str, Any], contact: dict[str, Any]
    ) -> tuple[datetime | None, str]:
        """When this step is due (UTC), or None and why it can never be."""
        tz = self.contact_tz(contact)
        last = journey["last_step_at"]
        if step.at is not None and step.at.moment is not None:
            base = step.at.moment  # a literal `at: 2026-12-01T09:00`
        elif step.at is not None:
            source, owner = self._at_source(step.at.source, journey, contact, tz)
            raw = source.get(step.at.field)
            if raw is None or str(raw).strip() == "":
                return None, f"at: {step.at.text}: {owner} has no {step.at.field!r}"
            try:
                base = clock.shift(clock.parse_iso(str(raw), tz), step.at.offset, tz)
            except InputError as exc:
                return None, f"at: {step.at.text}: {owner}'s {step.at.field}: {exc}"
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

    def _at_source(
        self, source: str, journey: dict[str, Any], contact: dict[str, Any], tz: Any
    ) -> tuple[dict[str, Any], str]:
        """What an `at:` reads (event data, contact fields or the session), and how to name it in a reason."""
        if source == "event":
            return self._event_data(journey), "the trigger event"
        if source == "session":
            return self.session_view(journey, tz), "the session"
        return contacts.template_view(contact, []), "the contact"

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


def _why(exc: Exception) -> str:
    """A failure in words a person can act on."""
    if isinstance(exc, OverflowError):
        return "a date beyond the year 9999 (check this step's wait/at and the dates in the event or contact)"
    if isinstance(exc, EdumailError | ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _within(moment: datetime, start: datetime, span: timedelta) -> bool:
    try:
        return moment <= start + span
    except OverflowError:  # a goal window reaching past the year 9999: no limit
        return True
