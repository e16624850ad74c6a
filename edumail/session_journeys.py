"""Session journeys (SPEC 13): what a moved or cancelled session does to the journeys hanging on it.

A journey whose trigger event named a session (`session: ID`) is a session
journey: one per contact, sequence and session. Its `at:` steps and templates
read `session.*` from the sessions table, so they follow the calendar. When a
session moves, the `session_changed` events re-time, at the next run, the step
each journey waits for and its queued mail; a mail already sent is never sent
again, and one whose new time is more than `limits.max_late` past is
cancelled. When a session is cancelled, its journeys end before any further
step (reason `session cancelled`), except those a `session_cancelled` event
started: they send the notice.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail import events, sessions
from edumail.decisions import Decision, EngineReport, show_delta

if TYPE_CHECKING:
    from edumail.engine import Engine
    from edumail.sequences import Sequence

SESSION_CANCELLED = "session cancelled"
SESSION_EVENTS = frozenset({events.SESSION_CHANGED, events.SESSION_CANCELLED})


class SessionJourneys:
    def session_of(self: Engine, journey: dict[str, Any]) -> dict[str, Any] | None:
        session_id = journey.get("session_id")
        if not session_id:
            return None
        cache: dict[str, Any] = self.__dict__.setdefault("_sessions", {})
        if session_id not in cache:
            cache[session_id] = self.store.session(session_id)
        return cache[session_id]

    def session_view(self: Engine, journey: dict[str, Any], tz: Any) -> dict[str, Any]:
        session = self.session_of(journey)
        return {} if session is None else sessions.view(session, tz)

    def session_cancelled(self: Engine, sequence: Sequence, journey: dict[str, Any]) -> bool:
        """Must this session journey end? (Not the ones that announce the cancellation.)"""
        session = self.session_of(journey)
        return (
            session is not None
            and session["status"] == sessions.CANCELLED
            and sequence.trigger.event != events.SESSION_CANCELLED
        )

    def enrolling_session(self: Engine, sequence: Sequence, data: dict[str, Any]) -> tuple[str | None, bool]:
        """(the session an event enrols into, whether it may enrol at all).

        A sequence hanging on `session.*` starts only for an event naming a session that exists."""
        session_id = sessions.session_id_of(data)
        if session_id is None:
            return None, not sequence.hangs_on_session
        journey = {"session_id": session_id}
        if self.session_of(journey) is None:
            return None, not sequence.hangs_on_session  # named a session that is gone: an ordinary journey
        return session_id, not self.session_cancelled(sequence, journey)

    def on_session_event(self: Engine, event: dict[str, Any], now: datetime, report: EngineReport) -> None:
        """`session_changed`: re-time the contact's journeys of that session; `session_cancelled`: end them."""
        data = event["data"] if isinstance(event["data"], dict) else json.loads(event["data"] or "{}")
        session_id = sessions.session_id_of(data)
        if session_id is None:
            return
        self.__dict__.setdefault("_sessions", {}).pop(session_id, None)  # read the new dates
        for journey in self.store.active_session_journeys(event["contact_id"], session_id):
            sequence = self.sequences.get(journey["sequence"])
            if sequence is None:
                continue
            if event["name"] == events.SESSION_CANCELLED:
                if self.session_cancelled(sequence, journey):
                    self._exit(journey, SESSION_CANCELLED, now, report)
            elif journey["trigger_event_id"] != event["id"]:
                self._retime_session_journey(sequence, dict(journey), now, report)

    def _retime_session_journey(
        self: Engine, sequence: Sequence, journey: dict[str, Any], now: datetime, report: EngineReport
    ) -> None:
        contact = self.store.contact(journey["contact_id"])
        if contact is None:
            return
        for mail in self.store.queued_journey_mails(journey["id"]):
            step = next((s for s in sequence.steps if s.id == mail["step_id"]), None)
            if step is None or step.at is None or step.at.source != "session":
                continue
            due, _ = self.step_time(sequence, step, journey, contact)
            if due is None or due == mail["not_before"]:
                continue
            late = now - due
            if late > self.settings.limits.max_late:
                reason = f"session moved: {show_delta(late)} late (limits.max_late)"
                self.store.cancel_mail(mail["id"], reason)
                self._note(sequence, step.id, contact, now, report, "skipped", reason)
            else:
                self.store.retime_mail(mail["id"], max(due, now))
                self._note(sequence, step.id, contact, now, report, "retimed", f"queued mail now at {due.isoformat()}")
        step = self.next_step(sequence, journey)
        if step is not None and step.at is not None and step.at.source == "session":
            self._isolated(sequence, journey, contact, now, report, self._schedule)

    def _note(
        self: Engine,
        sequence: Sequence,
        step_id: str,
        contact: dict[str, Any],
        now: datetime,
        report: EngineReport,
        outcome: str,
        reason: str,
    ) -> None:
        report.decisions.append(
            Decision(
                now, sequence.name, step_id, contact["id"], contact["email"], outcome, reason, purpose=sequence.purpose
            )
        )
