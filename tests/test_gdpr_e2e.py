"""Issue 7, "resolved when": the whole chain through the CLI, the engine, delivery and tracking.

A project made by `edumail init` (its library and sequences), the file
transport (the outbox is a Maildir of .eml files), the tracking app through its
test client, DSNs in an mbox and replies in a Maildir built here.
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cli
from starlette.testclient import TestClient
from typer.testing import CliRunner

from edumail import project as project_module
from edumail.cli import app
from edumail.store import Store
from edumail.tracking import create_app

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
MONDAY = "2026-11-16T08:00:00+01:00"
PEOPLE = ["marie", "paul", "jeanne", "luc"]


@pytest.fixture
def centre(tmp_path: Path) -> Cli:
    """A project from `edumail init`, with tracking on so mails carry the unsubscribe link."""
    root = tmp_path / "centre"
    result = CliRunner().invoke(app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    with (root / "edumail.yaml").open("a", encoding="utf-8") as handle:
        handle.write("tracking:\n  base_url: https://mail.centre.example\n")
    return Cli(root)


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def csv(cli: Cli, names: list[str], *, name: str = "contacts.csv", stage: str = "prospect") -> str:
    path = cli.root / name
    rows = "".join(f"{n}@example.fr,{n.title()},{stage}\n" for n in names)
    path.write_text("email,prenom,etape\n" + rows, encoding="utf-8")
    return str(path)


def outbox(cli: Cli, *, besides: frozenset[str] = frozenset()) -> dict[str, email.message.EmailMessage]:
    """The .eml files of the outbox (a Maildir) by file key, except those in `besides`."""
    box = mailbox.Maildir(str(cli.root / "outbox"), create=False)
    return {
        k: email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
        for k in box.iterkeys()
        if k not in besides
    }


def new_recipients(cli: Cli, before: dict[str, email.message.EmailMessage]) -> list[str]:
    return sorted(str(m["To"]) for m in outbox(cli, besides=frozenset(before)).values())


def sent_to(cli: Cli, address: str) -> list[email.message.EmailMessage]:
    return [m for m in outbox(cli).values() if address in str(m["To"])]


def message_id(cli: Cli, address: str) -> str:
    return str(sent_to(cli, address)[-1]["Message-ID"])


def link(mail: email.message.EmailMessage, kind: str) -> str:
    html = mail.get_body(("html",)).get_content()
    found = re.search(rf"https://mail\.centre\.example(/{kind}/[^\"'\s>]+)", html)
    assert found, f"no /{kind}/ link in the mail"
    return found.group(1)


def tracking(cli: Cli, monkeypatch: pytest.MonkeyPatch, now: str) -> TestClient:
    monkeypatch.setenv("EDUMAIL_NOW", now)
    return TestClient(
        create_app(project_module.load(cli.root)), headers={"User-Agent": BROWSER}, follow_redirects=False
    )


def dsn_mbox(path: Path, address: str, original_id: str) -> Path:
    """One RFC 3464 report: 5.1.1, the original headers returned."""
    text = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.fr>\nTo: contact@centre.example\n"
        "Subject: Undelivered Mail Returned to Sender\nDate: Mon, 16 Nov 2026 09:05:00 +0100\n"
        "Message-ID: <dsn-1@mx.example.fr>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\n\n'
        "--R\nContent-Type: text/plain\n\nDelivery to the following recipient failed permanently.\n\n"
        "--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.fr\n\n"
        f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{address}>: user unknown\n\n"
        f"--R\nContent-Type: text/rfc822-headers\n\nFrom: contact@centre.example\nTo: {address}\n"
        f"Message-ID: {original_id}\n\n--R--\n"
    )
    box = mailbox.mbox(str(path))
    box.add(text.encode())
    box.close()
    return path


def reply_maildir(path: Path, sender: str, original_id: str, date: str) -> Path:
    box = mailbox.Maildir(str(path), create=True)
    box.add(
        (
            f"From: {sender}\nTo: contact@centre.example\nSubject: Re: nouvelles\nDate: {date}\n"
            f"Message-ID: <reply-{sender}>\nIn-Reply-To: {original_id}\nReferences: {original_id}\n\n"
            "Bonjour, oui, rappelez-moi.\n"
        ).encode()
    )
    return path


# --- nothing more for the unsubscribed, the forgotten and the bounced -----------------------


@pytest.fixture
def four(centre: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    """Four opted-in prospects got a newsletter; then marie unsubscribes from its link, paul is
    forgotten and re-imported from a CSV, jeanne's address bounces hard (a DSN in an mbox)."""
    cli = centre
    ok(cli("contacts", "import", csv(cli, PEOPLE), "--consent", "opted_in", "--source", "salon 2026", now=MONDAY))
    ok(cli("run", "--once", now=MONDAY))
    ok(cli("send", "newsletter", "--name", "nl-1", now="2026-11-16T09:00:00+01:00"))
    assert len(outbox(cli)) == 4
    with tracking(cli, monkeypatch, "2026-11-16T12:00:00+01:00") as client:
        path = str(sent_to(cli, "marie@example.fr")[0]["List-Unsubscribe"]).split(">")[0].removeprefix("<")
        response = client.post(path.removeprefix("https://mail.centre.example"), data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    monkeypatch.delenv("EDUMAIL_NOW")
    ok(cli("contacts", "forget", "paul@example.fr", "--yes", now="2026-11-16T13:00:00+01:00"))
    out = ok(
        cli(
            "contacts",
            "import",
            csv(cli, PEOPLE, name="again.csv"),
            "--consent",
            "opted_in",
            now="2026-11-16T14:00:00+01:00",
        )
    )
    assert "paul@example.fr asked to be forgotten" in out
    mbox = dsn_mbox(tmp_path / "bounces.mbox", "jeanne@example.fr", message_id(cli, "jeanne@example.fr"))
    assert "1 hard" in ok(cli("bounces", "import", str(mbox), now="2026-11-16T15:00:00+01:00"))
    yield cli


def test_after_the_first_mail_only_the_control_contact_gets_sequence_and_campaign_mail(four: Cli) -> None:
    cli = four
    before = outbox(cli)
    for name in ("marie", "jeanne", "luc"):
        ok(cli("event", f"{name}@example.fr", "demande_information", now="2026-11-17T10:00:00+01:00"))
    assert cli("event", "paul@example.fr", "demande_information", now="2026-11-17T10:00:00+01:00").exit_code == 1
    ok(cli("run", "--once", now="2026-11-17T10:01:00+01:00"))
    ok(cli("send", "newsletter", "--name", "nl-2", now="2026-11-17T11:00:00+01:00"))
    ok(cli("run", "--once", now="2026-11-24T10:30:00+01:00"))
    ok(cli("send", "newsletter", "--name", "nl-3", now="2026-11-24T11:00:00+01:00"))
    # two newsletters and the relance-sans-reponse reminder, all to the control contact
    assert new_recipients(cli, before) == ["Luc <luc@example.fr>"] * 3


def test_unsubscribe_bounce_and_forget_are_each_recorded(four: Cli) -> None:
    store = Store(four.root / "edumail.db")
    assert store.contact_by_email("marie@example.fr")["consent"] == "opted_out"
    assert store.contact_by_email("jeanne@example.fr")["bounced_at"] is not None
    assert store.contact_by_email("paul@example.fr") is None
    assert store.contact_by_email("luc@example.fr")["consent"] == "opted_in"


def test_export_shows_the_whole_story(four: Cli) -> None:
    data = json.loads(ok(four("contacts", "export", "jeanne@example.fr", now="2026-11-18T10:00:00+01:00")))
    assert data["contact"]["first_name"] == "Jeanne"
    assert data["consent_log"][0]["consent"] == "opted_in" and data["consent_log"][0]["source"] == "salon 2026"
    assert data["consent_log"][0]["proof"]["file"] == "contacts.csv"
    names = [e["name"] for e in data["events"]]
    assert "email_sent" in names and "bounced" in names
    bounce = next(e for e in data["events"] if e["name"] == "bounced")
    assert bounce["data"]["kind"] == "hard" and bounce["data"]["status"] == "5.1.1"
    [mail] = data["mails"]
    assert mail["state"] == "sent" and mail["subject"] and bounce["mail_id"] == mail["id"]
    marie = json.loads(ok(four("contacts", "export", "marie@example.fr", now="2026-11-18T10:00:00+01:00")))
    unsubscribe = marie["consent_log"][-1]
    assert unsubscribe["consent"] == "opted_out"
    assert "Mozilla" in json.dumps(unsubscribe["proof"])


# --- a reply in a Maildir stops the "no answer" reminder -------------------------------------


def test_a_reply_in_a_maildir_stops_the_no_answer_reminder(centre: Cli, tmp_path: Path) -> None:
    cli = centre
    ok(cli("contacts", "import", csv(cli, ["marie", "luc"]), "--consent", "opted_in", now=MONDAY))
    ok(cli("run", "--once", now=MONDAY))
    ok(cli("send", "newsletter", "--name", "nl-1", now="2026-11-16T09:00:00+01:00"))
    for name in ("marie", "luc"):
        ok(cli("event", f"{name}@example.fr", "demande_information", now="2026-11-16T10:00:00+01:00"))
    ok(cli("run", "--once", now="2026-11-16T10:01:00+01:00"))
    inbox = reply_maildir(
        tmp_path / "INBOX", "marie@example.fr", message_id(cli, "marie@example.fr"), "Wed, 18 Nov 2026 14:00:00 +0100"
    )
    assert "1 replies recorded" in ok(cli("inbox", "import", str(inbox), now="2026-11-18T15:00:00+01:00"))
    before = outbox(cli)
    ok(cli("run", "--once", now="2026-11-23T10:30:00+01:00"))
    assert new_recipients(cli, before) == ["Luc <luc@example.fr>"]


# --- purge anonymises exactly the stale prospects ----------------------------------------------


def test_purge_anonymises_exactly_the_stale_prospects(
    centre: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli = centre
    spring_2023 = "2023-03-14T10:00:00+01:00"
    prospects = ["silent", "replier", "eventful", "opener", "clicker"]
    ok(cli("contacts", "import", csv(cli, prospects), "--consent", "opted_in", now="2022-06-01T10:00:00+02:00"))
    ok(cli("contacts", "import", csv(cli, ["learner"], name="l.csv", stage="inscrit"), now="2022-06-01T10:00:00+02:00"))
    ok(
        cli(
            "contacts",
            "import",
            csv(cli, ["fresh"], name="f.csv"),
            "--consent",
            "opted_in",
            now="2025-01-06T10:00:00+01:00",
        )
    )
    (cli.root / "templates" / "programme.html").write_text(
        '---\nsubject: "Le programme 2023"\nlayout: base\n---\n<p>Bonjour {{ contact.first_name }},</p>\n'
        '<p><a href="https://centre.example/programme">Voir le programme</a></p>\n',
        encoding="utf-8",
    )
    ok(cli("send", "programme", "--name", "programme-2023", now=spring_2023))
    inbox = reply_maildir(
        tmp_path / "INBOX",
        "replier@example.fr",
        message_id(cli, "replier@example.fr"),
        "Tue, 5 Mar 2024 10:00:00 +0100",
    )
    ok(cli("inbox", "import", str(inbox), now="2024-03-05T11:00:00+01:00"))
    ok(cli("event", "eventful@example.fr", "journee_portes_ouvertes", now="2024-09-10T10:00:00+02:00"))
    with tracking(cli, monkeypatch, "2026-10-06T10:00:00+02:00") as client:
        assert client.get(link(sent_to(cli, "opener@example.fr")[0], "o")).status_code == 200
    with tracking(cli, monkeypatch, "2024-05-14T10:00:00+02:00") as client:
        assert client.get(link(sent_to(cli, "clicker@example.fr")[0], "c")).status_code == 302
    monkeypatch.delenv("EDUMAIL_NOW")

    dry = ok(cli("purge", "--dry-run", now="2026-11-20T10:00:00+01:00"))
    assert "2 prospect(s) to anonymise (dry run" in dry
    out = ok(cli("purge", now="2026-11-20T10:00:00+01:00"))
    assert "anonymised: silent@example.fr" in out and "anonymised: opener@example.fr" in out
    store = Store(cli.root / "edumail.db")
    gone = {n for n in [*prospects, "learner", "fresh"] if store.contact_by_email(f"{n}@example.fr") is None}
    assert gone == {"silent", "opener"}


# --- double opt-in ------------------------------------------------------------------------------


def test_subscribed_event_sends_the_double_opt_in_whose_link_sets_opted_in_with_proof(
    centre: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = centre
    ok(cli("run", "--once", now=MONDAY))
    monkeypatch.setenv("EDUMAIL_API_TOKEN", "api-token")
    with tracking(cli, monkeypatch, "2026-11-16T09:00:00+01:00") as client:
        body = {"email": "nina@example.fr", "name": "subscribed", "data": {"form": "newsletter footer"}}
        response = client.post("/api/events", json=body, headers={"Authorization": "Bearer api-token"})
        assert response.status_code == 201
    monkeypatch.delenv("EDUMAIL_NOW")
    ok(cli("run", "--once", now="2026-11-16T09:01:00+01:00"))
    [mail] = sent_to(cli, "nina@example.fr")
    with tracking(cli, monkeypatch, "2026-11-16T09:30:00+01:00") as client:
        confirm = link(mail, "k")
        assert client.get(confirm).status_code == 200
        assert Store(cli.root / "edumail.db").contact_by_email("nina@example.fr")["consent"] == "unknown"
        assert client.post(confirm).status_code == 200
    store = Store(cli.root / "edumail.db")
    nina = store.contact_by_email("nina@example.fr")
    assert (nina["consent"], nina["consent_basis"]) == ("opted_in", "opt_in")
    proof = json.loads(store.consent_log(nina["id"])[-1]["proof"])
    assert "Mozilla" in json.dumps(proof)
    assert "consent_changed" in [e["name"] for e in store.events_of(nina["id"])]
