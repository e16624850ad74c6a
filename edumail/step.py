"""One due step of a journey: the guard (consent, exit_on, audience), the condition, the actions.

Mixed into Engine. Actions run in the caller's savepoint: a mail is queued in
the outbox together with the journey's advance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail import audience, contacts, events, staff_alert, topics
from edumail.decisions import ALWAYS_EXIT, EXITED_MARKETING, Decision, EngineReport, contact_fields, show_delta
from edumail.message import new_message_id
from edumail.sequences import Sequence, Step
from edumail.session_journeys import SESSION_CANCELLED

if TYPE_CHECKING:
    from edumail.engine import Engine
    from edumail.store import Store

NOTIFY_TEMPLATE = "__notify__"
_CONTACT_ACTIONS = ("set", "stage", "tag", "untag")


@dataclass
class _StepRun:
    """One step being run: what it acts on, and what it did so far."""

    sequence: Sequence
    step: Step
    journey: dict[str, Any]
    contact: dict[str, Any]
    tags: set[str]
    due: datetime
    now: datetime
    done: list[str] = field(default_factory=list)
    withheld: str | None = None
    mail_id: int | None = None
    changed: bool = False


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
            self.contact_id,
            list(names),
            self.journey["started_at"],
            self.journey.get("trigger_event_id"),
            self.journey.get("session_id"),
        )
        return found is not None


class StepRunner:
    def _guard(
        self: Engine, sequence: Sequence, journey: dict[str, Any], contact: dict[str, Any], tags: set[str]
    ) -> str | None:
        """Why this journey must end before its next step, or None."""
        refusal = contacts.may_receive(contact, sequence.purpose)
        if refusal in ALWAYS_EXIT or refusal in EXITED_MARKETING:
            return refusal
        if journey.get("session_id") and self.session_cancelled(sequence, journey):
            return SESSION_CANCELLED
        if sequence.exit_on:
            found = self.store.contact_had_event(
                contact["id"],
                list(sequence.exit_on),
                journey["started_at"],
                journey.get("trigger_event_id"),
                journey.get("session_id"),
            )
            if found:
                return f"exit_on: {found}"
        if not sequence.audience.matches(contact["stage"], tags, contact_fields(contact)):
            return f"no longer in the audience ({sequence.audience.describe()})"
        return None

    def _run_step(
        self: Engine,
        sequence: Sequence,
        step: Step,
        journey: dict[str, Any],
        contact: dict[str, Any],
        tags: set[str],
        due: datetime,
        now: datetime,
        report: EngineReport,
    ) -> bool:
        """Run the step's actions; True when the contact itself changed."""
        run = _StepRun(sequence, step, journey, contact, tags, due, now)
        late = now - due
        for action in step.actions:
            kind, value = action.kind, action.value
            if kind in _CONTACT_ACTIONS:
                self._contact_action(run, kind, value)
            elif kind == "webhook":
                payload = self._webhook_payload(value, sequence, step, journey, contact, tags, now)
                self.store.add_task("webhook", payload, journey["id"], step.id, now)
                run.done.append(f"webhook {value}")
            elif late > self.settings.limits.max_late:
                run.withheld = f"{show_delta(late)} late (limits.max_late {show_delta(self.settings.limits.max_late)})"
            elif kind == "notify":
                self._queue_notify(run, value)
            else:
                self._queue_mail(run, value)
        if run.withheld is not None:
            reason = run.withheld + (f"; done: {', '.join(run.done)}" if run.done else "")
            self._log(sequence, step, journey, contact, now, report, "skipped", reason, done=run.done)
        else:
            outcome, at = ("sent", due) if run.mail_id is not None else ("done", now)
            done = ", ".join(run.done)
            self._log(sequence, step, journey, contact, at, report, outcome, done, mail_id=run.mail_id, done=run.done)
        return run.changed

    def _contact_action(self: Engine, run: _StepRun, kind: str, value: Any) -> None:
        cid, source = run.contact["id"], f"sequence:{run.sequence.name}"
        if kind == "set":
            contacts.set_fields(self.store, cid, dict(value), run.now)
            run.done.append(f"set {', '.join(value)}")
        elif kind == "stage":
            contacts.set_stage(self.store, cid, value, run.now, source)
            run.done.append(f"stage {value}")
        else:
            change = contacts.add_tags if kind == "tag" else contacts.remove_tags
            change(self.store, cid, list(value), run.now, source)
            run.done.append(f"{kind} {', '.join(value)}")
        run.changed = True

    def _queue_notify(self: Engine, run: _StepRun, address: str) -> None:
        # The alert shows the contact as this step left it: its stage, tag and field actions ran already.
        contact = (self.store.contact(run.contact["id"]) or run.contact) if run.changed else run.contact
        tags = sorted(self.store.tags_of(contact["id"])) if run.changed else sorted(run.tags)
        context = staff_alert.alert(
            run.sequence, run.step, contact, tags, self._event_data(run.journey), run.mail_id is not None
        )
        self.store.enqueue_mail(
            message_id=new_message_id(self.domain),
            template=NOTIFY_TEMPLATE,
            purpose=events.SERVICE,
            not_before=run.now,
            now=run.now,
            contact_id=run.contact["id"],
            to_email=address,
            context=context,
            journey_id=run.journey["id"],
            step_id=f"{run.step.id}:notify",
            sequence=run.sequence.name,
        )
        run.done.append(f"notify {address}")

    def _queue_mail(self: Engine, run: _StepRun, template: str) -> None:
        run.withheld = self._mail_refusal(run.sequence, run.contact, run.now)
        if run.withheld is not None:
            return
        run.mail_id = self.store.enqueue_mail(
            message_id=new_message_id(self.domain),
            template=template,
            purpose=run.sequence.purpose,
            not_before=run.due,
            now=run.now,
            contact_id=run.contact["id"],
            context=self._mail_context(run),
            journey_id=run.journey["id"],
            step_id=run.step.id,
            sequence=run.sequence.name,
        )
        if run.mail_id is None:
            run.withheld = "already queued for this journey"

    def _mail_context(self: Engine, run: _StepRun) -> dict[str, Any]:
        context: dict[str, Any] = {"event": self._event_data(run.journey)}
        if run.journey.get("session_id"):  # read fresh when the mail is composed: a moved session shows its new date
            context["session_id"] = run.journey["session_id"]
        if run.sequence.topic:  # the unsubscribe page offers to leave only this topic
            context["topic"] = run.sequence.topic
        return context

    def _mail_refusal(self: Engine, sequence: Sequence, contact: dict[str, Any], now: datetime) -> str | None:
        refusal = contacts.may_receive(contact, sequence.purpose)
        if refusal is not None:
            return refusal
        if topics.has_left(self.store, int(contact["id"]), sequence.topic):
            return topics.reason_left(str(sequence.topic))
        limit = self.settings.limits.marketing_per_week
        if sequence.purpose == events.MARKETING and limit:
            recent = audience.weekly_marketing(self.store, now, [contact["id"]]).get(contact["id"], 0)
            if recent >= limit:
                return (
                    f"weekly marketing limit reached ({recent} in the last 7 days, limits.marketing_per_week {limit})"
                )
        return None

    def _log(
        self: Engine,
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
                session=journey.get("session_id"),
            )
        )

    # --- payloads -------------------------------------------------------------------------------

    def _webhook_payload(
        self: Engine,
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
