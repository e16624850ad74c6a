"""The unsubscribe page (only this topic / everything / undo for 30 days) and the preference centre with
topics, through the tracking app's test client."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tracking_support import BROWSER, LATER, SECRET, SENT_AT, contact, events_named, sent_mail

from edumail import events, tokens
from edumail import project as project_module
from edumail.store import Store
from edumail.tracking import create_app

TOPICS = "topics:\n  newsletter: La lettre mensuelle\n  offres: Offres et promotions\n"


@pytest.fixture
def root(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDUMAIL_NOW", LATER.isoformat())
    settings = project_dir / "edumail.yaml"
    settings.write_text(settings.read_text(encoding="utf-8") + TOPICS, encoding="utf-8")
    return project_dir


@pytest.fixture
def store(root: Path) -> Iterator[Store]:
    with Store(root / "edumail.db") as opened:
        yield opened


@pytest.fixture
def client(root: Path, store: Store) -> Iterator[TestClient]:
    app = create_app(project_module.load(root))
    with TestClient(app, headers={"User-Agent": BROWSER}, raise_server_exceptions=False) as test_client:
        yield test_client


def topic_mail(store: Store, topic: str | None = "newsletter", email: str = "lea@example.org") -> int:
    campaign = store.insert_campaign(f"lettre-{topic}-{email}", "newsletter", {}, SENT_AT, SENT_AT, "done")
    store.set_campaign_extras(campaign, data={}, content=None, until=None, topic=topic)
    return sent_mail(store, contact(store, email), campaign_id=campaign)


def u(mail_id: int) -> str:
    return "/u/" + tokens.sign(SECRET, tokens.Token("u", mail_id))


def p(mail_id: int) -> str:
    return "/p/" + tokens.sign(SECRET, tokens.Token("p", mail_id))


def lea(store: Store) -> dict:
    found = store.contact_by_email("lea@example.org")
    assert found is not None
    return found


def test_the_unsubscribe_page_of_a_topic_mail_offers_only_this_topic_or_everything(client, store):
    mail = topic_mail(store)
    page = client.get(u(mail))
    assert page.status_code == 200
    assert "Ne plus recevoir «\u00a0La lettre mensuelle\u00a0»" in page.text and "Ne plus rien recevoir" in page.text
    assert 'name="scope" value="topic"' in page.text and 'name="scope" value="all"' in page.text
    assert lea(store)["consent"] == events.OPTED_IN and events_named(store, events.UNSUBSCRIBED) == []


def test_only_this_topic_leaves_the_topic_and_keeps_the_rest(client, store):
    mail = topic_mail(store)
    page = client.post(u(mail), data={"scope": "topic"})
    assert "vous ne recevrez plus «\u00a0La lettre mensuelle\u00a0»" in page.text
    assert "Annuler ma désinscription" in page.text
    contact = lea(store)
    assert contact["consent"] == events.OPTED_IN
    assert store.topic_states(contact["id"]) == {"newsletter": "out"}
    (event,) = events_named(store, events.UNSUBSCRIBED)
    assert json.loads(event["data"]) == {"method": "confirmation page", "scope": "topic", "topic": "newsletter"}
    entry = store.consent_log(contact["id"])[-1]
    proof = json.loads(entry["proof"])
    assert entry["source"] == "unsubscribe link" and entry["consent"] == events.OPTED_IN
    assert proof["topic"] == "newsletter" and proof["change"] == "left" and proof["ip"] == "testclient"
    assert proof["mail_id"] == mail
    again = client.get(u(mail))
    assert (
        "Vous ne recevez plus «\u00a0La lettre mensuelle\u00a0»" in again.text and "Ne plus rien recevoir" in again.text
    )


def test_everything_opts_out(client, store):
    mail = topic_mail(store)
    client.post(u(mail), data={"scope": "all"})
    assert lea(store)["consent"] == events.OPTED_OUT
    assert json.loads(events_named(store, events.UNSUBSCRIBED)[0]["data"])["scope"] == "all"


def test_one_click_on_a_topic_mail_leaves_everything(client, store):
    mail = topic_mail(store)
    client.post(u(mail), data={"List-Unsubscribe": "One-Click"})
    assert lea(store)["consent"] == events.OPTED_OUT


def test_an_unsubscribe_can_be_undone_within_30_days_and_the_undo_is_logged(client, store, monkeypatch):
    mail = topic_mail(store)
    client.post(u(mail), data={"scope": "all"})
    monkeypatch.setenv("EDUMAIL_NOW", (LATER + timedelta(days=29)).isoformat())
    page = client.get(u(mail))
    assert "Vous êtes déjà désinscrit(e)" in page.text and "Annuler ma désinscription" in page.text
    done = client.post(u(mail), data={"action": "undo"})
    assert "Votre désinscription est annulée" in done.text
    contact = lea(store)
    assert (contact["consent"], contact["consent_basis"]) == (events.OPTED_IN, "opt_in")
    entry = store.consent_log(contact["id"])[-1]
    assert entry["source"] == "unsubscribe undone"
    assert json.loads(entry["proof"])["undo_of"] == events_named(store, events.UNSUBSCRIBED)[0]["id"]
    twice = client.post(u(mail), data={"action": "undo"})
    assert "Il n’y a plus de désinscription à annuler" in twice.text


@pytest.mark.parametrize("scope", ["all", "topic"])
def test_an_undone_unsubscribe_no_longer_counts_in_stats(client, store, scope):
    from edumail import stats

    mail = topic_mail(store)
    client.post(u(mail), data={"scope": scope})
    assert stats.compute(store)["overall"]["unsubscribed"] == 1
    client.post(u(mail), data={"action": "undo"})
    figures = stats.compute(store)
    assert figures["overall"]["unsubscribed"] == 0
    assert [c["unsubscribed"] for c in figures["campaigns"]] == [0]
    assert len(events_named(store, events.UNSUBSCRIBED)) == 1  # the proof of what happened stays


def test_a_topic_unsubscribe_undone_brings_the_topic_back(client, store):
    mail = topic_mail(store)
    client.post(u(mail), data={"scope": "topic"})
    client.post(u(mail), data={"action": "undo"})
    assert store.topic_states(lea(store)["id"]) == {"newsletter": "in"}


def test_no_undo_after_30_days(client, store, monkeypatch):
    mail = topic_mail(store)
    client.post(u(mail), data={"scope": "all"})
    monkeypatch.setenv("EDUMAIL_NOW", (LATER + timedelta(days=31)).isoformat())
    assert "Annuler" not in client.get(u(mail)).text
    assert "Il n’y a plus" in client.post(u(mail), data={"action": "undo"}).text
    assert lea(store)["consent"] == events.OPTED_OUT


def test_a_mail_without_topic_keeps_the_single_button(client, store):
    mail = sent_mail(store, contact(store, "lea@example.org"))
    page = client.get(u(mail))
    assert '<form method="post">' in page.text and "Confirmer la désinscription" in page.text
    assert "Ne plus recevoir «" not in page.text


def test_the_preference_page_lists_the_topics_and_everything(client, store):
    mail = topic_mail(store)
    page = client.get(p(mail))
    assert page.status_code == 200
    assert "La lettre mensuelle" in page.text and "Offres et promotions" in page.text
    assert 'name="topic_newsletter" type="checkbox" value="oui" checked' in page.text
    assert 'name="everything" type="checkbox" value="oui"' in page.text
    assert "Ne plus rien recevoir de nos actualités et offres" in page.text


def test_unticking_a_topic_leaves_it_with_a_logged_proof(client, store):
    mail = topic_mail(store)
    page = client.post(p(mail), data={"topic_offres": "oui"})
    assert "Vos préférences sont enregistrées" in page.text
    contact = lea(store)
    assert contact["consent"] == events.OPTED_IN
    assert store.topic_states(contact["id"]) == {"newsletter": "out"}
    proof = json.loads(store.consent_log(contact["id"])[-1]["proof"])
    assert proof["topic"] == "newsletter" and proof["form"] == "preferences page" and proof["ip"] == "testclient"
    assert 'name="topic_newsletter" type="checkbox" value="oui" checked' not in page.text


def test_everything_on_the_preference_page_opts_out(client, store):
    mail = topic_mail(store)
    client.post(p(mail), data={"everything": "oui", "topic_offres": "oui"})
    assert lea(store)["consent"] == events.OPTED_OUT


def test_unticking_every_topic_is_leaving_everything(client, store):
    mail = topic_mail(store)
    client.post(p(mail), data={})
    assert lea(store)["consent"] == events.OPTED_OUT


def test_coming_back_needs_a_box_ticked_and_logs_the_wording(client, store):
    mail = topic_mail(store)
    client.post(p(mail), data={"everything": "oui"})
    client.post(p(mail), data={})
    assert lea(store)["consent"] == events.OPTED_OUT
    client.post(p(mail), data={"topic_newsletter": "oui"})
    contact = lea(store)
    assert (contact["consent"], contact["consent_basis"]) == (events.OPTED_IN, "opt_in")
    wording = [json.loads(e["proof"]).get("wording") for e in store.consent_log(contact["id"])]
    assert "Je souhaite recevoir par e-mail : La lettre mensuelle." in wording
    assert store.topic_states(contact["id"]) == {"offres": "out"}


def test_saving_the_same_choices_logs_nothing_new(client, store):
    mail = topic_mail(store)
    before = len(store.consent_log(lea(store)["id"]))
    client.post(p(mail), data={"topic_newsletter": "oui", "topic_offres": "oui"})
    assert len(store.consent_log(lea(store)["id"])) == before


def test_a_queued_mail_of_a_topic_left_is_cancelled_at_delivery(root, client, store):
    from edumail import clock
    from edumail.delivery import deliver

    mail = topic_mail(store)
    client.post(u(mail), data={"scope": "topic"})
    campaign = store.insert_campaign("suite", "newsletter", {}, SENT_AT, SENT_AT, "queued")
    store.set_campaign_extras(campaign, data={}, content=None, until=None, topic="newsletter")
    queued = sent_mail(store, lea(store)["id"], campaign_id=campaign, sent_at=None)
    (root / "templates" / "newsletter.html").write_text("---\nsubject: Lettre\n---\n<p>Bonjour</p>\n")
    deliver(project_module.load(root), now=clock.now())
    row = store.row("SELECT state, last_error FROM mails WHERE id = ?", (queued,))
    assert row["state"] == "cancelled" and "left topic newsletter" in row["last_error"]


def test_contacts_show_lists_the_topics_left(root, client, store):
    from conftest import Cli

    mail = topic_mail(store)
    client.post(u(mail), data={"scope": "topic"})
    shown = Cli(root)("contacts", "show", "lea@example.org")
    assert "left topics: newsletter" in shown.output
    assert "unsubscribe link" in shown.output and "topic=newsletter" in shown.output
