"""Actions (tag, untag, stage, set, notify, webhook) and conditions (all, any, not, else: exit)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from journeys_support import (
    T,
    add_contact,
    context,
    event,
    install_library,
    journal,
    mails,
    open_project,
    outcomes,
    run,
    write_sequence,
)

from edumail import clock, contacts, runner, webhooks
from edumail.project import Project

SECRET = b"test-secret-key-not-for-production"


@pytest.fixture
def root(project_dir: Path) -> Path:
    install_library(project_dir, sequences=False)
    return project_dir


def start(root: Path, text: str) -> Project:
    write_sequence(root, "s", text)
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    return project


def test_contact_actions_run_in_order_and_are_recorded_as_events(root: Path) -> None:
    project = start(
        root,
        "trigger: {event: x}\nsteps:\n  - set: {relance: faite, score: 3}\n    stage: perdu\n"
        "    tag: [prospect-froid, relance]\n    untag: nouveau\n",
    )
    ada = add_contact(project, "ada@example.org", stage="prospect", tags=("nouveau",))
    event(project, ada, "x", "2026-12-01T09:00")
    run(project, "2026-12-01T09:00")
    store = project.store()
    contact = store.contact(ada)
    assert contact is not None and contact["stage"] == "perdu"
    assert json.loads(contact["fields"]) == {"relance": "faite", "score": 3}
    assert store.tags_of(ada) == ["prospect-froid", "relance"]
    names = [e["name"] for e in store.events_of(ada) if e["source"] == "sequence:s"]
    assert names == ["stage_changed", "tag_added", "tag_added", "tag_removed"]
    assert journal(project, ada)[1] == (
        "s",
        "step-1",
        "done",
        "set relance, score, stage perdu, tag prospect-froid, relance, untag nouveau",
    )


def test_a_step_that_sends_and_tags_marks_the_contact_even_without_consent(root: Path) -> None:
    project = start(root, "trigger: {event: x}\nsteps:\n  - send: bienvenue\n    tag: relance\n")
    ada = add_contact(project, "ada@example.org", consent="unknown")
    event(project, ada, "x", "2026-12-01T09:00")
    run(project, "2026-12-01T09:00")
    assert mails(project) == [] and project.store().tags_of(ada) == ["relance"]
    assert journal(project, ada)[1][2:] == ("skipped", "no marketing consent; done: tag relance")


def test_actions_trigger_other_sequences_in_the_same_run(root: Path) -> None:
    write_sequence(
        root,
        "chaud",
        "trigger:\n  event: tag_added\n  where: {tag: chaud}\nsteps:\n  - notify: equipe@centre.example\n",
    )
    project = start(root, "trigger: {event: clic_tarifs}\nsteps:\n  - tag: chaud\n")
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "clic_tarifs", "2026-12-01T09:00", page="/tarifs")
    run(project, "2026-12-01T09:00")
    (alert,) = mails(project)
    assert (alert["template"], alert["to_email"], alert["purpose"], alert["contact_id"]) == (
        "__notify__",
        "equipe@centre.example",
        "service",
        ada,
    )
    assert context(alert)["subject"] == "[edumail] ada@example.org\u00a0: chaud"
    assert (
        "ada@example.org> vient de passer l'étape 1\u00a0sur 1\u00a0de la séquence «\u00a0chaud\u00a0»"
        in (context(alert)["body"])
    )


def test_the_staff_alert_is_french_names_the_description_and_shows_the_contact_after_the_step(root: Path) -> None:
    write_sequence(
        root,
        "prospects-chauds",
        "description: Prévenir l'équipe quand un prospect regarde les tarifs\n"
        "trigger: {event: clic_tarifs}\n"
        "steps:\n"
        "  - id: alerte-interne-7\n"
        "    stage: lead\n"
        "    tag: prospect-chaud\n"
        "    set: {score: 3}\n"
        "    notify: equipe@centre.example\n",
    )
    project = open_project(root)
    run(project, "2026-12-01T08:00")  # the sequence is live before the event
    ada = add_contact(
        project, "ada@example.org", stage="prospect", fields={"first_name": "Ada", "last_name": "Lovelace"}
    )
    event(project, ada, "clic_tarifs", "2026-12-01T09:00", page="/tarifs")
    run(project, "2026-12-01T09:00")
    (alert,) = mails(project)
    subject, body = context(alert)["subject"], context(alert)["body"]
    nbsp = "\u00a0"
    assert subject == f"[edumail] Ada Lovelace{nbsp}: Prévenir l'équipe quand un prospect regarde les tarifs"
    assert f"de la séquence «{nbsp}Prévenir l'équipe quand un prospect regarde les tarifs{nbsp}»" in body
    assert "alerte-interne-7" not in body and "step" not in body
    assert f"Stade{nbsp}: lead" in body and "prospect" + nbsp not in body
    assert f"Étiquettes{nbsp}: prospect-chaud" in body
    assert f"score{nbsp}: 3" in body
    assert f"étiquette ajoutée{nbsp}: prospect-chaud" in body
    assert "Tout son historique" in body and "edumail contacts show ada@example.org" in body


def test_conditions_on_tags_stage_fields_and_events(root: Path) -> None:
    project = start(
        root,
        "trigger: {event: x}\nsteps:\n"
        "  - id: a\n    if: {all: [{tag: vip}, {stage: [lead, client]}, {fields: {ville: Lyon}}]}\n    tag: a\n"
        "  - id: b\n    if: {any: [{not_tag: vip}, {event: devis}]}\n    tag: b\n"
        "  - id: c\n    if: {not: {no_event: devis}}\n    tag: c\n",
    )
    ada = add_contact(project, "ada@example.org", stage="lead", tags=("vip",), fields={"ville": "Lyon"})
    bob = add_contact(project, "bob@example.org", stage="lead", tags=("vip",), fields={"ville": "Paris"})
    event(project, ada, "x", "2026-12-01T09:00")
    event(project, bob, "x", "2026-12-01T09:00")
    event(project, ada, "devis", "2026-12-01T09:00")
    event(project, bob, "devis", "2026-11-30T09:00")  # before the journey started: does not count
    run(project, "2026-12-01T09:00")
    store = project.store()
    assert store.tags_of(ada) == ["a", "b", "c", "vip"]
    assert store.tags_of(bob) == ["vip"]
    assert journal(project, bob)[1][3] == "condition not met: (tag vip and stage lead, client and fields ville=Lyon)"


def test_else_exit_ends_the_journey(root: Path) -> None:
    project = start(root, "trigger: {event: x}\nsteps:\n  - if: {tag: vip}\n    else: exit\n    tag: a\n  - tag: b\n")
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "x", "2026-12-01T09:00")
    run(project, "2026-12-01T09:00")
    assert project.store().tags_of(ada) == []
    assert outcomes(project, ada) == [("", "entered"), ("step-1", "exited")]
    assert journal(project, ada)[1][3] == "condition not met: tag vip (else: exit)"


def test_opened_condition_reads_human_opens_of_that_steps_mail(root: Path) -> None:
    project = start(
        root,
        "trigger: {event: x}\nsteps:\n  - send: bienvenue\n  - wait: 2d\n"
        "    if: {opened: bienvenue}\n    tag: lecteur\n",
    )
    ada = add_contact(project, "ada@example.org")
    bob = add_contact(project, "bob@example.org")
    for cid in (ada, bob):
        event(project, cid, "x", "2026-12-01T09:00")
    run(project, "2026-12-01T09:00")
    store = project.store()
    by_contact = {m["contact_id"]: m["id"] for m in mails(project)}
    at = T("2026-12-01T09:00")
    contacts.record_event(
        store, ada, "email_opened", at=at, data={}, source="tracking", now=at, mail_id=by_contact[ada]
    )
    contacts.record_event(
        store, bob, "email_opened", at=at, data={}, source="tracking", now=at, mail_id=by_contact[bob], machine=True
    )
    run(project, "2026-12-03T09:00")
    assert (store.tags_of(ada), store.tags_of(bob)) == (["lecteur"], [])


def test_a_human_click_counts_as_an_open_when_the_pixel_was_blocked(root: Path) -> None:
    project = start(
        root,
        "trigger: {event: x}\nsteps:\n  - send: bienvenue\n  - wait: 2d\n"
        "    if: {not_opened: bienvenue}\n    tag: relancer\n",
    )
    ada = add_contact(project, "ada@example.org")
    bob = add_contact(project, "bob@example.org")
    for cid in (ada, bob):
        event(project, cid, "x", "2026-12-01T09:00")
    run(project, "2026-12-01T09:00")
    store = project.store()
    mail = next(m for m in mails(project) if m["contact_id"] == ada)
    at = T("2026-12-01T10:00")
    contacts.record_event(
        store,
        ada,
        "email_clicked",
        at=at,
        data={"url": "https://x.example"},
        source="tracking",
        now=at,
        mail_id=mail["id"],
    )
    run(project, "2026-12-03T09:00")
    # Bob, who neither opened nor clicked, shows the step ran: only Ada's click kept the tag away.
    assert (store.tags_of(ada), store.tags_of(bob)) == ([], ["relancer"])
    assert ("step-2", "skipped") in outcomes(project, ada)


def test_contact_field_dates_drive_at_steps(root: Path) -> None:
    project = start(
        root,
        "trigger: {event: x}\nsteps:\n  - at: contact.date_naissance + 0d\n    time: '10:00'\n    send: bienvenue\n",
    )
    ada = add_contact(project, "ada@example.org", fields={"date_naissance": "2026-12-24"})
    event(project, ada, "x", "2026-12-01T09:00")
    run(project, "2026-12-24T10:00")
    assert [m["not_before"] for m in mails(project)] == [clock.from_db("2026-12-24T09:00:00.000000Z")]


# --- webhooks against a real local HTTP server -------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"body": body, "headers": dict(self.headers)})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/crm", handler
    server.shutdown()
    server.server_close()


def test_webhook_posts_signed_json_of_the_contact_and_step(root: Path, receiver: tuple[str, Any]) -> None:
    url, handler = receiver
    project = start(root, f"trigger: {{event: devis}}\nsteps:\n  - id: crm\n    webhook: {url}\n")
    ada = add_contact(project, "ada@example.org", stage="lead", tags=("vip",))
    event(project, ada, "devis", "2026-12-01T09:00", montant="1200")
    summary = run(project, "2026-12-01T09:00")
    assert summary.webhooks is not None and summary.webhooks.delivered == 1
    (request,) = handler.received
    payload = json.loads(request["body"])
    assert payload["contact"]["email"] == "ada@example.org" and payload["contact"]["tags"] == ["vip"]
    assert (payload["sequence"], payload["step"], payload["event"]) == ("s", "crm", {"montant": "1200"})
    expected = "sha256=" + hmac.new(SECRET, request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Edumail-Signature"] == expected
    assert request["headers"]["Content-Type"].startswith("application/json")
    run(project, "2026-12-01T09:10")
    assert len(handler.received) == 1


def test_failing_webhook_is_retried_with_backoff_then_given_up(root: Path, receiver: tuple[str, Any]) -> None:
    url, handler = receiver
    handler.status = 503
    project = start(root, f"trigger: {{event: devis}}\nsteps:\n  - id: crm\n    webhook: {url}\n  - tag: suite\n")
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "devis", "2026-12-01T09:00")
    summary = run(project, "2026-12-01T09:00")
    assert summary.webhooks is not None and summary.webhooks.retrying == 1
    assert "answered 503" in summary.webhooks.errors[0]
    assert project.store().tags_of(ada) == ["suite"]  # the journey did not wait for the webhook
    run(project, "2026-12-01T09:00:30")
    assert len(handler.received) == 1  # not before the backoff
    moment = T("2026-12-01T09:00")
    for delay in webhooks.BACKOFF:
        moment += timedelta(seconds=delay)
        runner.run_once(project, now=moment, deliver=False)
    assert len(handler.received) == len(webhooks.BACKOFF) + 1
    task = project.store().rows("SELECT * FROM tasks")[0]
    assert task["state"] == "failed" and "503" in task["last_error"]
    assert journal(project, ada)[-1][2:] == (
        "failed",
        f"webhook failed 6 times, giving up: {url} answered 503 Service Unavailable",
    )


def test_unreachable_webhook_does_not_hold_up_the_run(root: Path) -> None:
    project = start(root, "trigger: {event: devis}\nsteps:\n  - webhook: http://127.0.0.1:9/nothing-listens\n")
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "devis", "2026-12-01T09:00")
    summary = run(project, "2026-12-01T09:00")
    assert summary.webhooks is not None and summary.webhooks.retrying == 1
    assert "127.0.0.1:9" in summary.webhooks.errors[0]
