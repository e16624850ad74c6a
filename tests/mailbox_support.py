"""Helpers shared by the bounce and reply tests: a contact, a mail already sent to it, its events."""

from __future__ import annotations

import json

from edumail import clock
from edumail.store import Store


def db(cli) -> Store:
    return Store(cli.root / "edumail.db")


def add_contact(cli, email: str = "marie@example.fr") -> int:
    csv = cli.root / f"{email}.csv"
    csv.write_text(f"email,prenom\n{email},Marie\n", encoding="utf-8")
    assert cli("contacts", "import", str(csv), "--consent", "opted_in", now="2026-11-01T10:00:00+00:00").exit_code == 0
    return db(cli).contact_by_email(email)["id"]


def sent_mail(
    cli, contact_id: int, message_id: str = "<mail-1@centre.example>", at: str = "2026-11-18T09:00:00"
) -> int:
    """A marketing mail of a sequence, sent `at` (UTC, 2026-11-18 09:00 unless said); returns its id."""
    store = db(cli)
    stamp = clock.to_db(clock.parse_iso(at, clock.UTC))
    with store.transaction():
        mail_id = store.enqueue_mail(
            message_id=message_id,
            template="bienvenue",
            purpose="marketing",
            not_before=stamp,
            now=stamp,
            contact_id=contact_id,
            sequence="accueil",
            step_id=message_id,
        )
        store.mark_mail_sent(mail_id, stamp, "Bienvenue", [])
    return mail_id


def events_named(cli, contact_id: int, name: str) -> list[dict]:
    return [dict(e, data=json.loads(e["data"])) for e in db(cli).events_of(contact_id) if e["name"] == name]
