"""Enrolment: the five triggers (event, segment, inactive, schedule, at) and when they next fire.

Mixed into Engine; `plan` asks `next_firing` when the next scheduled entry happens.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import clock, contacts, live_edits
from edumail.decisions import ALWAYS_EXIT, BATCH, EXITED_MARKETING, Decision, EngineReport, contact_fields, show_delta
from edumail.journeys import JOURNEY
from edumail.sequences import Sequence
from edumail.store.journeys import trigger_key

if TYPE_CHECKING:
    from edumail.engine import Engine


class Enrolment:
    # --- enrolment ----------------------------------------------------------------------

    def enrol(self: Engine, now: datetime, report: EngineReport) -> None:
        upto = self.store.max_event_id()
        seen = self.store.sequences_seen()
        for sequence in self.sequences.values():
            row = seen.get(sequence.name)
            first = row is None
            if row is None:
                with self.store.transaction():
                    self.store.add_sequence_seen(sequence.name, now, upto)
                    self.store.set_sequence_steps(sequence.name, live_edits.snapshot(sequence))
                self._left_out(sequence, upto, report)
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

    def _left_out(self: Engine, sequence: Sequence, upto: int, report: EngineReport) -> None:
        """A new event sequence enrols nobody from older events (SPEC 4): say how many, and how to enrol them."""
        name = sequence.trigger.event
        if self.backfill or sequence.trigger.kind != "event" or name is None:
            return
        older = self.store.count_events_named(name, upto)
        if older:
            report.notes.append(
                f"{sequence.name}: {older} {name} event{'s' if older != 1 else ''} recorded before this sequence "
                "existed left out; `edumail run --once --backfill` enrols them"
            )

    def _enrol_events(
        self: Engine, sequence: Sequence, row: dict[str, Any], upto: int, now: datetime, report: EngineReport
    ) -> None:
        trigger = sequence.trigger
        after = 0 if self.backfill else int(row["cursor_event_id"])
        unlinked = 0  # events naming no session, for a sequence hanging on `session.*`
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
                        session_id, may = self.enrolling_session(sequence, data)
                        if not may:  # the session is cancelled (only its notice may start), or none is named
                            unlinked += session_id is None
                            continue
                        key = f"event:{event['id']}" if sequence.reenter else "event"
                        if session_id is not None and not sequence.reenter:
                            key = f"session:{session_id}"  # one journey per contact, sequence and session
                        started = event["at"]
                        self._enter(
                            sequence,
                            contact,
                            tags[contact["id"]],
                            key,
                            event["id"],
                            started,
                            now,
                            report,
                            data,
                            session_id=session_id,
                        )
                self.store.set_sequence_cursor(sequence.name, batch[-1]["id"])
            after = batch[-1]["id"]
        with self.store.transaction():
            self.store.set_sequence_cursor(sequence.name, upto)
        if unlinked:
            report.notes.append(
                f"{sequence.name}: {unlinked} {trigger.event} event{'s' if unlinked != 1 else ''} "
                f"name{'s' if unlinked == 1 else ''} no session (data session=ID): no journey started"
            )

    def _enrol_segment(self: Engine, sequence: Sequence, first: bool, now: datetime, report: EngineReport) -> None:
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
                    if cid in people and segment.matches(people[cid]["stage"], tags[cid], contact_fields(people[cid]))
                ]
                self.store.add_segment_members(sequence.name, members)
                if (first and not self.backfill) or not sequence.enabled:
                    continue  # already matching when the sequence appeared: they did not "start matching"
                for cid in members:
                    if self.backfill and sequence.reenter and self.store.has_journey(sequence.name, cid):
                        continue
                    key = trigger_key("segment", now) if sequence.reenter else "segment"
                    self._enter(sequence, people[cid], tags[cid], key, None, now, now, report, {})

    def _enrol_inactive(
        self: Engine, sequence: Sequence, row: dict[str, Any], now: datetime, report: EngineReport
    ) -> None:
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

    def _enrol_scheduled(
        self: Engine, sequence: Sequence, row: dict[str, Any], now: datetime, report: EngineReport
    ) -> None:
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
                f"{show_delta(late)} late (limits.max_late): nobody entered"
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

    def _last_firing(self: Engine, sequence: Sequence, last: datetime, now: datetime, never: bool) -> datetime | None:
        """The latest schedule/at firing in (last, now], if any."""
        if sequence.trigger.kind == "at":
            moment = sequence.trigger.at
            return moment if never and moment is not None and moment <= now else None
        # The next firing after `last`, kept from an earlier run for the same schedule and zone: a run before
        # it decides without APScheduler (its import is most of what a cron line with nothing due costs).
        key, mark = f"schedule.next:{sequence.name}", f"{self.tz} {clock.to_db(last)} {sequence.trigger.schedule}"
        kept, _, kept_mark = (self.store.get_meta(key) or "").partition(" ")
        if kept and kept_mark == mark and clock.from_db(kept) > now:
            return None
        cron = sequence.cron(self.tz)
        latest = None
        probe = cron.get_next_fire_time(None, last + timedelta(seconds=1))
        for _ in range(100_000):
            if probe is None or probe > now:
                break
            latest = probe
            probe = cron.get_next_fire_time(latest, latest + timedelta(seconds=1))
        if probe is not None:
            after = last if latest is None else latest
            with self.store.transaction():
                self.store.set_meta(
                    key, f"{clock.to_db(probe)} {self.tz} {clock.to_db(after)} {sequence.trigger.schedule}"
                )
        return None if latest is None else latest.astimezone(clock.UTC)

    def next_firing(self: Engine, after: datetime) -> datetime | None:
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
        self: Engine,
        sequence: Sequence,
        contact: dict[str, Any],
        tags: set[str],
        key: str,
        event_id: int | None,
        started: datetime,
        now: datetime,
        report: EngineReport,
        data: dict[str, Any],
        session_id: str | None = None,
    ) -> None:
        """One contact enters one sequence, if it may (in the caller's transaction)."""
        refusal = contacts.may_receive(contact, sequence.purpose)
        if refusal in ALWAYS_EXIT or refusal in EXITED_MARKETING:
            return  # they get no mail of this purpose at all: no journey to record
        if not sequence.audience.matches(contact["stage"], tags, contact_fields(contact)):
            return
        journey_id = self.store.insert_journey(
            sequence.name, contact["id"], key, event_id, started, sequence.purpose, session_id
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
            "session_id": session_id,
            "started_at": started,
            "last_step_id": None,
            "last_step_at": started,
            "state": "active",
        }
        self._isolated(sequence, journey, contact, now, report, self._schedule)
