"""What a refused or deferred mail does to the run, the mail and the contact (SPEC 6, 11, 19).

`FailureHandling` is mixed into delivery's run: it holds the retry schedule, the
streak counters that stop a run, and who a failure is charged to.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import contacts, events
from edumail.bounce_charge import charged_contact, mark_bounced
from edumail.project import Project
from edumail.store import Store
from edumail.transport import BOUNCE, PERMANENT, POLICY, RECIPIENT_POLICY, RELAY_STAGES, TEMPORARY, SendFailure

if TYPE_CHECKING:
    from edumail.delivery import DeliveryReport

# Temporary failures: retry after these delays; the attempt after the last one gives up (~2 days in all).
BACKOFF = [timedelta(minutes=m) for m in (5, 15, 30, 60, 120, 240, 480, 480, 720, 720)]
MAX_ATTEMPTS = len(BACKOFF) + 1
GIVE_UP_AFTER = timedelta(days=2)
DEFERRALS_TO_PAUSE = 10  # in a row: the server is throttling us, stop pushing for this run
POLICY_STREAK = 5  # 5.7.x at RCPT for this many recipients in a row: the refusal is about us, not them
REFUSALS_TO_STOP = 20  # permanent refusals in a row: a misconfiguration, not bad addresses
RELAY_TO_STOP = 5  # the relay's 4xx before any recipient, in a row: stop the run
RELAY_TO_STOP_AT_START = 3  # ... or this many before the run sent anything (a relay down, not a hiccup)
RELAY = "relay"  # its streak's key in the run's in_a_row counters (a sent mail resets them all)
WRITE = threading.Lock()  # one writer per process: SQLite's busy handler sleeps in steps of ms


class FailureHandling:
    """The failure side of a delivery run; the run sets these attributes."""

    project: Project
    report: DeliveryReport
    now: datetime
    lock: threading.Lock
    stop: threading.Event
    in_a_row: dict[str, int]
    policy_streak: list[int]

    def _failed(self, store: Store, mail: dict[str, Any], failure: SendFailure) -> None:
        mail_id, reason = int(mail["id"]), str(failure)
        if failure.stops_run:
            with WRITE:
                store.release_mail(mail_id, reason)
            self._halt(stop_message(failure, self.project))
            return
        if failure.kind == TEMPORARY and failure.stage in RELAY_STAGES:  # the relay's, before any recipient
            self._relay_refused(store, mail, failure)
            return
        if failure.kind == BOUNCE and charged_contact(mail) is None:  # staff mail: the address is the team's
            self._fail(store, mail_id, f"the staff address was refused (no contact is charged): {reason}")
            return
        if failure.kind == BOUNCE:
            self._bounce(store, mail, failure, "hard")
            return
        if failure.kind == RECIPIENT_POLICY:  # this mail alone, never charged to the contact (SPEC 19)
            self._refused_by_policy(store, mail_id, failure)
            return
        if failure.kind == TEMPORARY:
            self._temporary(store, mail, failure)
            return
        self._fail(store, mail_id, reason)  # PERMANENT
        self._in_a_row(
            PERMANENT,
            f"the server refused {REFUSALS_TO_STOP} mails in a row (last: {reason}); "
            "check the sender address and the smtp settings",
        )

    def _relay_refused(self, store: Store, mail: dict[str, Any], failure: SendFailure) -> None:
        """The relay's 4xx before any recipient (SPEC 19): retried with backoff, never given up, nobody charged.

        A relay that keeps refusing stops delivery: RELAY_TO_STOP in a row, or 3 before it took any mail.
        """
        mail_id, reason = int(mail["id"]), str(failure)
        attempts = int(mail["attempts"] or 0) + 1
        wait = max(BACKOFF[min(attempts, len(BACKOFF)) - 1], timedelta(seconds=failure.retry_after or 0))
        with WRITE:  # no first attempt recorded: the mail has not yet been tried for its recipient
            store.defer_mail(mail_id, self.now + wait, reason)
        self._count("deferred", reason)
        with self.lock:
            streak = self.in_a_row[RELAY] = self.in_a_row.get(RELAY, 0) + 1
        if streak >= RELAY_TO_STOP or (streak >= RELAY_TO_STOP_AT_START and not self.report.sent):
            self._halt(stop_message(failure, self.project))
            return
        self._deferred_in_a_row(reason)

    def _temporary(self, store: Store, mail: dict[str, Any], failure: SendFailure) -> None:
        """Retry with backoff for 2 days from the mail's first attempt (SPEC 19), then give up."""
        mail_id, reason = int(mail["id"]), str(failure)
        attempts = int(mail["attempts"] or 0) + 1
        age = self.now - (mail.get("first_attempt_at") or self.now)
        if attempts < MAX_ATTEMPTS and age < GIVE_UP_AFTER:
            with WRITE:
                wait = max(BACKOFF[attempts - 1], timedelta(seconds=failure.retry_after or 0))
                store.defer_mail(mail_id, self.now + wait, reason, first_attempt=self.now)
            self._count("deferred", reason)
            self._deferred_in_a_row(reason)
            return
        given_up = f"gave up after {attempts} attempts: {reason}"
        if failure.code and failure.stage == "rcpt" and charged_contact(mail) is not None:
            self._bounce(store, mail, failure, "soft", given_up)  # the recipient's server kept saying 4xx
            return
        self._fail(store, mail_id, given_up)  # the relay's or the whole message's: nobody is charged

    def _deferred_in_a_row(self, reason: str) -> None:
        self._in_a_row(
            TEMPORARY,
            f"the server deferred {DEFERRALS_TO_PAUSE} mails in a row (last: {reason}); "
            "the rest waits for the next run",
        )

    def _fail(self, store: Store, mail_id: int, reason: str) -> None:
        with WRITE:
            store.fail_mail(mail_id, reason)
        self._count("failed", reason)

    def _refused_by_policy(self, store: Store, mail_id: int, failure: SendFailure) -> None:
        reason = f"refused by policy for this recipient (the address is kept): {failure}"
        with WRITE:
            store.fail_mail(mail_id, reason)
        with self.lock:
            self.policy_streak.append(mail_id)
            self.report._note(reason)
            streak, full = self.policy_streak, len(self.policy_streak) >= POLICY_STREAK
            self.report.failed -= len(streak) - 1 if full else -1  # a full streak goes back to the queue
            self.policy_streak = [] if full else streak
        if full:
            with WRITE, store.transaction():  # the same refusal for every recipient: ours to fix, keep them
                store.requeue_mails(streak, self.now)
            self._halt(stop_message(SendFailure(POLICY, str(failure)), self.project))

    def _bounce(
        self, store: Store, mail: dict[str, Any], failure: SendFailure, kind: str, reason: str | None = None
    ) -> None:
        mail_id = int(mail["id"])
        with WRITE, store.transaction():
            store.fail_mail(mail_id, reason or str(failure))
            contact_id = charged_contact(mail)
            if contact_id is not None:
                data = {"kind": kind, "status": failure.status or str(failure.code or ""), "diagnostic": str(failure)}
                contacts.record_event(
                    store,
                    contact_id,
                    events.BOUNCED,
                    at=self.now,
                    data=data,
                    source="delivery",
                    now=self.now,
                    mail_id=mail_id,
                )
                mark_bounced(store, contact_id, kind, self.now)
        self._count("failed", str(failure))
        if kind == "hard":
            with self.lock:
                self.report.bounced += 1

    def _count(self, what: str, reason: str | None = None) -> None:
        with self.lock:
            setattr(self.report, what, getattr(self.report, what) + 1)
            if reason:
                self.report._note(reason)

    def _in_a_row(self, kind: str, message: str) -> None:
        limit = DEFERRALS_TO_PAUSE if kind == TEMPORARY else REFUSALS_TO_STOP
        with self.lock:
            self.in_a_row[kind] += 1
            reached = self.in_a_row[kind] >= limit
        if reached:
            self._halt(message)

    def _halt(self, message: str) -> None:
        with self.lock:
            self.report.stopped = self.report.stopped or message
        self.stop.set()


def stop_message(failure: SendFailure, project: Project) -> str:
    domain = project.settings.sender.domain
    if failure.kind == POLICY:
        return (
            f"delivery stopped: {failure} — a policy or reputation block, the addresses are fine: check SPF, "
            f"DKIM and DMARC for {domain} and whether the server's IP is on a blocklist, then run again"
        )
    if failure.kind == TEMPORARY and failure.stage in RELAY_STAGES:
        return (
            f"delivery stopped: {failure} — the relay refuses mail for now (not about any recipient: nobody "
            "is charged); the mails stay queued and are retried"
        )
    return f"delivery stopped: {failure}"
