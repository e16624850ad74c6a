"""Public signup forms: forms/NAME.yaml, GET/POST /f/NAME (through the app's test client), the snippet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli
from starlette.testclient import TestClient
from tracking_support import events_named

from edumail import forms
from edumail import project as project_module
from edumail.tracking import create_app

NOW = "2026-11-20T10:00:00+01:00"
FORM = """\
title: Recevoir la lettre mensuelle
intro: Une lettre par mois, rien de plus.
fields:
  - email
  - first_name
  - {name: ville, label: Votre ville}
consent: J'accepte de recevoir la lettre mensuelle du centre. Je peux me désinscrire à tout moment.
tags: [newsletter]
topics: [newsletter, offres]
thanks: Merci ! Confirmez votre inscription avec le lien que nous venons de vous envoyer.
"""
TOPICS = "topics:\n  newsletter: La lettre mensuelle\n  offres: Offres et promotions\n"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"


@pytest.fixture
def root(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDUMAIL_NOW", NOW)
    settings = project_dir / "edumail.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + TOPICS + "tracking:\n  base_url: https://mail.centre.example\n",
        encoding="utf-8",
    )
    (project_dir / "forms").mkdir()
    (project_dir / "forms" / "newsletter.yaml").write_text(FORM, encoding="utf-8")
    return project_dir


@pytest.fixture
def client(root: Path):
    project = project_module.load(root)
    with TestClient(create_app(project), headers={"user-agent": AGENT}) as test_client:
        yield test_client
    project.close()


def store(root: Path):
    return project_module.load(root).store()


def post(client, **fields: str):
    return client.post("/f/newsletter", data=fields)


GOOD = {"email": "Lea@Example.org", "first_name": "Léa", "ville": "Lyon", "consent": "oui", "topic_newsletter": "oui"}


def test_the_form_page_is_french_accessible_and_self_contained(client):
    page = client.get("/f/newsletter")
    assert page.status_code == 200
    text = page.text
    assert '<html lang="fr">' in text and "<h1>Recevoir la lettre mensuelle</h1>" in text
    assert '<label for="f-email">Adresse e-mail (obligatoire)</label>' in text
    assert 'id="f-email" name="email" type="email"' in text and 'autocomplete="email"' in text
    assert '<label for="f-consent">J&#x27;accepte de recevoir la lettre mensuelle' in text
    assert 'name="consent" type="checkbox" value="oui" required' in text and "checked" not in text
    assert "<legend>Ce qui vous intéresse</legend>" in text and "Offres et promotions" in text
    assert 'class="hp" aria-hidden="true"' in text and 'tabindex="-1"' in text
    assert "http" not in text.replace('action="/f/newsletter"', "")  # no third-party asset, no absolute link
    assert "<script" not in text
    assert "form-action 'self'" in page.headers["content-security-policy"]


def test_a_post_records_the_contact_the_subscribed_event_and_the_proof(root, client):
    page = post(client, **GOOD)
    assert page.status_code == 200, page.text
    assert "Confirmez votre inscription" in page.text
    db = store(root)
    contact = db.contact_by_email("lea@example.org")
    assert contact["consent"] == "unknown"  # the double opt-in's link gives consent, not the form
    assert contact["first_name"] == "Léa" and json.loads(contact["fields"]) == {"ville": "Lyon"}
    assert db.tags_of(contact["id"]) == ["newsletter"]
    (event,) = events_named(db, "subscribed")
    assert json.loads(event["data"]) == {"form": "newsletter", "topics": ["newsletter"]}
    (signup,) = db.form_signups_of(contact["id"])
    assert signup["wording"].startswith("J'accepte de recevoir la lettre mensuelle")
    assert signup["ip"] == "testclient" and signup["user_agent"] == AGENT
    assert json.loads(signup["form_snapshot"])["fields"][0]["name"] == "email"
    assert signup["event_id"] == event["id"]


def test_a_post_never_overwrites_what_is_stored(root, client, monkeypatch):
    post(client, **{**GOOD, "ville": ""})
    monkeypatch.setenv("EDUMAIL_NOW", "2026-11-20T12:00:00+01:00")
    post(client, **{**GOOD, "first_name": "Pirate", "ville": "Lyon"})
    contact = store(root).contact_by_email("lea@example.org")
    assert contact["first_name"] == "Léa" and json.loads(contact["fields"]) == {"ville": "Lyon"}
    assert len(events_named(store(root), "subscribed")) == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "", "consent": "oui", "topic_offres": "oui"}, "Indiquez votre adresse e-mail."),
        ({"email": "pas-une-adresse", "consent": "oui", "topic_offres": "oui"}, "ne semble pas valide"),
        ({"email": "a@example.org", "topic_offres": "oui"}, "Cochez la case pour confirmer votre accord."),
        ({"email": "a@example.org", "consent": "oui"}, "Choisissez au moins un sujet."),
        ({"email": "a@example.org", "consent": "oui", "topic_offres": "oui", "ville": "x" * 600}, "trop long"),
    ],
)
def test_a_bad_post_shows_the_form_again_with_the_error_and_stores_nothing(root, client, fields, message):
    page = post(client, **fields)
    assert page.status_code == 400
    assert message in page.text and 'role="alert"' in page.text and 'aria-invalid="true"' in page.text
    assert store(root).count_contacts() == 0


def test_the_values_typed_come_back_escaped(client):
    page = post(client, email="<b>@x", first_name='"><script>alert(1)</script>', consent="oui")
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_a_filled_honeypot_thanks_the_bot_and_stores_nothing(root, client):
    page = post(client, **GOOD, website="https://spam.example")
    assert page.status_code == 200 and "Merci" in page.text
    assert store(root).count_contacts() == 0


def test_the_eleventh_post_in_a_minute_is_refused_calmly(root, client):
    for n in range(10):
        assert post(client, **{**GOOD, "email": f"p{n}@example.org"}).status_code == 200
    page = post(client, **{**GOOD, "email": "p10@example.org"})
    assert page.status_code == 429 and "Réessayez dans une minute" in page.text
    assert page.headers["retry-after"] == "60"
    assert store(root).contact_by_email("p10@example.org") is None


def test_a_megabyte_of_fields_gets_a_calm_page_and_stores_nothing(root, client):
    page = client.post("/f/newsletter", data={**GOOD, "ville": "x" * 1_000_000})
    assert page.status_code == 413 and "trop volumineux" in page.text and "<html" in page.text
    many = {f"champ{n}": "x" for n in range(5000)}
    assert post(client, **GOOD, **many).status_code in (400, 413)
    assert store(root).count_contacts() == 0


def test_a_post_that_is_not_a_form_is_refused(root, client):
    page = client.post(
        "/f/newsletter", content=b'{"email": "a@example.org"}', headers={"content-type": "application/json"}
    )
    assert page.status_code == 400 and store(root).count_contacts() == 0


def test_an_unknown_form_is_a_calm_404(client):
    page = client.get("/f/inconnu")
    assert page.status_code == 404 and "Formulaire introuvable" in page.text


def test_a_broken_form_file_closes_only_that_form(root, client):
    (root / "forms" / "casse.yaml").write_text("fields: [email]\nconsent: ok\ncouleur: rouge\n", encoding="utf-8")
    assert client.get("/f/casse").status_code == 503
    assert client.get("/f/newsletter").status_code == 200


def test_a_forgotten_address_is_thanked_and_not_recreated(root, client):
    post(client, **GOOD)
    Cli(root)("contacts", "forget", "lea@example.org", "--yes", now=NOW)
    page = post(client, **GOOD)
    assert page.status_code == 200
    assert store(root).contact_by_email("lea@example.org") is None


# --- the form file -------------------------------------------------------------------


def test_an_unknown_key_in_a_form_file_is_a_file_line_error(root):
    (root / "forms" / "rdv.yaml").write_text("fields: [email]\nconsent: Oui\nthank: Merci\n", encoding="utf-8")
    result = Cli(root)("check")
    assert result.exit_code == 1
    assert "forms/rdv.yaml:3: unknown key 'thank' (did you mean 'thanks'?)" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fields: [first_name]\nconsent: Oui\n", "forms/f.yaml:1: fields: email is required"),
        ("fields: [email]\n", "forms/f.yaml:1: missing consent:"),
        ("fields: [email, Stage]\nconsent: Oui\n", "forms/f.yaml:1: field 'Stage'"),
        ("fields: [email, website]\nconsent: Oui\n", "field 'website'"),
        ("fields: [email]\nconsent: Oui\ntopics: [promo]\n", "forms/f.yaml:3: unknown topic 'promo'"),
        ("fields:\n  - email\n  - {name: ville, lable: Ville}\nconsent: Oui\n", "forms/f.yaml:3: unknown key 'lable'"),
    ],
)
def test_form_files_are_checked(root, text, message):
    (root / "forms" / "f.yaml").write_text(text, encoding="utf-8")
    problems = [str(p) for p in forms.check(project_module.load(root))]
    assert any(message in p for p in problems), problems


def test_forms_snippet_prints_a_form_posting_to_the_server(root):
    result = Cli(root)("forms", "snippet", "newsletter")
    assert result.exit_code == 0, result.output
    assert '<form class="edumail-form" method="post" action="https://mail.centre.example/f/newsletter"' in result.output
    assert 'name="website"' in result.output and 'name="consent"' in result.output


def test_forms_snippet_needs_the_tracking_address(project_dir):
    (project_dir / "forms").mkdir()
    (project_dir / "forms" / "n.yaml").write_text("fields: [email]\nconsent: Oui\n", encoding="utf-8")
    result = Cli(project_dir)("forms", "snippet", "n")
    assert result.exit_code == 1
    assert "tracking.base_url" in result.output


def test_forms_snippet_of_an_unknown_form(root):
    result = Cli(root)("forms", "snippet", "nope")
    assert result.exit_code == 1 and "unknown form 'nope' (forms/ has: newsletter)" in result.output


def test_a_topic_offered_on_the_form_but_not_ticked_is_left_at_confirmation(root, client):
    from edumail import tokens

    post(client, **GOOD)  # newsletter ticked, offres not
    contact = store(root).contact_by_email("lea@example.org")
    client.post(tokens.confirm_url("", b"test-secret-key-not-for-production", contact["id"]))
    assert store(root).topic_states(contact["id"]) == {"newsletter": "in", "offres": "out"}


def test_init_ships_the_newsletter_form_and_two_topics(tmp_path):
    from typer.testing import CliRunner

    from edumail.cli import app

    target = tmp_path / "centre"
    assert CliRunner().invoke(app, ["init", str(target)]).exit_code == 0
    project = project_module.load(target)
    assert project.settings.topics == {"newsletter": "La lettre mensuelle", "offres": "Offres et promotions"}
    form = forms.load_one(project, "newsletter")
    assert form.topics == ("newsletter", "offres") and [f.name for f in form.fields] == ["email", "first_name"]
    checked = CliRunner().invoke(app, ["--project", str(target), "check"])
    assert checked.exit_code == 0 and "1 forms" in checked.output
    with TestClient(create_app(project)) as test_client:
        assert "Recevoir la lettre du centre" in test_client.get("/f/newsletter").text


def test_export_shows_the_signup_and_forget_erases_it(root, client):
    post(client, **GOOD)
    cli = Cli(root)
    exported = json.loads(cli("contacts", "export", "lea@example.org", now=NOW).output)
    (signup,) = exported["form_signups"]
    assert signup["form"] == "newsletter" and signup["ip"] == "testclient" and signup["topics"] == ["newsletter"]
    assert cli("contacts", "forget", "lea@example.org", "--yes", now=NOW).exit_code == 0
    db = store(root)
    (row,) = db.rows("SELECT * FROM form_signups")
    assert row["ip"] is None and row["user_agent"] == "" and row["form_snapshot"] == "{}"
    assert db.rows("SELECT * FROM topic_choices") == []


def test_posting_an_unconfirmed_address_again_within_the_hour_sends_no_second_confirmation(root, client, monkeypatch):
    post(client, **GOOD)
    assert post(client, **GOOD).status_code == 200
    assert len(events_named(store(root), "subscribed")) == 1
    monkeypatch.setenv("EDUMAIL_NOW", "2026-11-20T11:30:00+01:00")
    post(client, **GOOD)
    assert len(events_named(store(root), "subscribed")) == 2
