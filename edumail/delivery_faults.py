"""What delivery does when the database fails under it: a full disk, a damaged file, a worker that dies.

A mail the server accepted is never left 'sending' (the next run would send
it again): its record goes to the journal (edumail.journal) and the row is
marked sent in place, which a full disk still takes most of the time. A
worker that stops puts its mail back and says which mail and why; the run
then exits 1 (SPEC 11).
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail import contacts, journal

if TYPE_CHECKING:
    from edumail import lease
    from edumail.delivery import DeliveryReport
    from edumail.project import Project
    from edumail.store import Store


Sent = tuple[dict[str, Any], str, list[str], tuple[dict[str, str], ...]]  # mail, subject, links, attachments


def write_sent(store: Store, sent: list[Sent], at: datetime) -> None:
    """Mails the server accepted: each row and its email_sent event (inside the caller's transaction)."""
    store.mark_mails_sent([(int(mail["id"]), subject, links) for mail, subject, links, _ in sent], at)
    contacts.record_sent_many(
        store, [(mail, _sent_data(mail, subject, files)) for mail, subject, _, files in sent], at=at
    )


def keep_all_accepted(project: Project, store: Store, sent: list[Sent], at: datetime, write: threading.Lock) -> str:
    """write_sent met a full disk: each record waits in the journal; returns why delivery stops."""
    stop = ""
    for mail, subject, links, files in sent:
        stop = keep_accepted(project, store, mail, at, (subject, links, _sent_data(mail, subject, files)), write)
    return stop


def _sent_data(mail: dict[str, Any], subject: str, files: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
    data: dict[str, Any] = {"template": mail["template"], "subject": subject}
    if files:  # the proof of what was attached (SPEC 15: names and SHA-256)
        data["attachments"] = list(files)
    for key in ("sequence", "step_id", "campaign_id"):
        if mail.get(key) is not None:
            data[key.replace("_id", "") if key == "step_id" else key] = mail[key]
    return data


def keep_accepted(
    project: Project,
    store: Store,
    mail: dict[str, Any],
    at: datetime,
    record: tuple[str, list[str], Any],
    write: threading.Lock,
) -> str:
    """The server accepted the mail but the disk is full; returns why delivery stops."""
    database, mail_id = project.database_path, int(mail["id"])
    subject, links, data = record
    kept = marked = True
    try:
        journal.keep_sent(database, mail, at, subject, links, data)
    except OSError:
        kept = False
    try:
        with write:
            store.mark_mail_accepted(mail_id, at)
    except sqlite3.DatabaseError:
        marked = False
    if kept:
        fate = f"its record waits in {journal.path_for(database)} and is written by the next command"
    elif marked:
        fate = "it is marked sent (its links and history entry could not be written)"
    else:
        fate = "it could not be recorded anywhere: the next run sends it again, with the same Message-ID"
    return (
        f"the disk is full: {database} could not be written after the server accepted mail {mail_id}; {fate}. "
        f"Delivery stopped: free some space on the disk of {database.parent}, then run again"
    )


def unwritten_journal(project: Project, store: Store) -> str | None:
    """Why delivery may not start: the journal holds accepted mails the database still cannot take."""
    database = project.database_path
    if journal.pending(database):
        journal.replay(store, database)
    if not journal.pending(database):
        return None
    return (
        f"{journal.path_for(database)} could not be written into {database} yet (is the disk still full?); "
        "delivery waits for it so that no accepted mail goes twice: free some space, then run again"
    )


def put_back(store: Store, mail: dict[str, Any] | None, reason: str, write: threading.Lock) -> str:
    """A worker stopped on a fault (`reason`) with `mail`: back to the queue if the database lets us; returns why."""
    if mail is not None:
        try:
            with write:
                store.release_mail(int(mail["id"]), f"internal error: {reason}" if reason else None)
        except sqlite3.Error:
            pass  # the same fault again: the next run finds the mail in 'sending' and sends it
    which = f" at mail {mail['id']} (template {mail['template']})" if mail is not None else ""
    return f"a sending worker stopped{which}: {reason}"


def settle(store: Store, lock: lease.Lease, report: DeliveryReport, write: threading.Lock) -> None:
    """Campaign states and the lock, after a run; a fault already reported is not raised again."""
    try:
        with write:
            store.settle_campaigns()
            lock.release()
    except sqlite3.DatabaseError:
        if not report.stopped:
            raise


def still_queued(store: Store, now: datetime) -> int:
    try:
        return store.count_due_mails(now)
    except sqlite3.DatabaseError:
        return 0  # the database fails: the stop message already says so
