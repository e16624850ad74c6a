# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""`edumail send` options of SPEC 16 through the real CLI: --content (Markdown), --data, repeated --stage and
--tag, --segment (agreeing with a sequence), --topic, --until; the Markdown letter received over SMTP."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from conftest import Cli
from journeys_support import install_library
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)

from edumail import project as project_module

NOW = "2026-03-02T10:00:00+01:00"  # a Monday morning in Paris
LETTER = """\
# Les nouvelles de mars

Bonjour à toutes et à tous ! Ce mois-ci, **trois nouvelles sessions** ouvrent.

## Au programme

- Excel avancé, le 12 mars
- Anglais professionnel, le 19 mars

Tous les détails sur [notre site](https://www.centre.example/sessions).

![La salle de formation](https://www.centre.example/salle.jpg)
"""
CONTACTS = """\
email;prenom;etape;tags
ada@example.org;Ada;prospect;webinar,lyon
bob@example.org;Bob;lead;webinar
cy@example.org;Cy;client;lyon
dan@example.org;;prospect;
"""


@pytest.fixture
def centre(project_dir: Path, smtp_server: SmtpTestServer):
    install_library(project_dir, sequences=False)
    settings = project_dir / "edumail.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8")
        + smtp_server.settings_yaml()
        + "topics:\n  newsletter: La lettre mensuelle\n  offres: Offres et promotions\n",
        encoding="utf-8",
    )
    (project_dir / "crm.csv").write_text(CONTACTS, encoding="utf-8")
    cli = Cli(project_dir)
    result = cli("contacts", "import", str(project_dir / "crm.csv"), "--consent", "opted_in", now="2026-03-01T10:00")
    assert result.exit_code == 0, result.output
    (project_dir / "lettre.md").write_text(LETTER, encoding="utf-8")
    return cli


def store(cli):
    return project_module.load(cli.root).store()


def test_the_markdown_newsletter_arrives_with_its_text_part_and_its_call_to_action(centre, smtp_server):
    result = centre(
        "send", "newsletter", "--content", str(centre.root / "lettre.md"), "--data", "lien_catalogue=https://www.centre.example/catalogue",
        "--tag", "webinar", now=NOW,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 sent" in result.output
    messages = [message_from_bytes(m.data, policy=policy.default) for m in smtp_server.messages]
    assert sorted(m["To"].addresses[0].addr_spec for m in messages) == ["ada@example.org", "bob@example.org"]
    message = messages[0]
    spaces = {0xA0: " ", 0x202F: " "}  # French typography puts no-break spaces in dates and before "!"
    text = message.get_body(("plain",)).get_content().translate(spaces)
    html = message.get_body(("html",)).get_content().translate(spaces)
    assert "Les nouvelles de mars" in text and "- Excel avancé, le 12 mars" in text
    assert "notre site (https://www.centre.example/sessions)" in text
    assert "La salle de formation" in text
    assert "https://www.centre.example/catalogue" in text  # the call to action, from --data
    assert "<strong>trois nouvelles sessions</strong>" in html
    assert '<h2 style="' in html  # the layout's CSS inlined into the letter's headings
    assert 'src="https://www.centre.example/salle.jpg"' in html and 'alt="La salle de formation"' in html
    assert 'href="https://www.centre.example/catalogue"' in html
    assert "Voici les nouvelles du mois" not in html  # the letter replaces the template's example text


def test_content_that_is_not_utf8_is_refused_and_nothing_is_queued(centre):
    (centre.root / "lettre.md").write_bytes("# Été\n\nCafé à volonté\n".encode("cp1252"))
    result = centre("send", "newsletter", "--content", str(centre.root / "lettre.md"), now=NOW)
    assert result.exit_code == 1
    assert "lettre.md:1: not UTF-8 text" in result.output and "save the file as UTF-8" in result.output
    assert store(centre).outbox_counts() == {}


def test_content_with_a_javascript_link_is_refused(centre):
    (centre.root / "lettre.md").write_text("# Titre\n\nCliquez [ici](javascript:alert(1)).\n", encoding="utf-8")
    result = centre("send", "newsletter", "--content", str(centre.root / "lettre.md"), now=NOW)
    assert result.exit_code == 1
    assert "lettre.md:3: link to javascript: is not allowed in a mail" in result.output
    assert store(centre).outbox_counts() == {}


def test_content_for_a_template_that_does_not_show_it_is_refused(centre):
    result = centre("send", "inactivite", "--content", str(centre.root / "lettre.md"), now=NOW)
    assert result.exit_code == 1
    assert "template 'inactivite' does not show `content`" in result.output


def test_a_missing_content_file_is_one_line(centre):
    result = centre("send", "newsletter", "--content", str(centre.root / "absent.md"), now=NOW)
    assert result.exit_code == 1 and "absent.md: no such file" in result.output


def test_repeated_stage_means_one_of_and_repeated_tag_means_all_of(centre):
    one_of = centre("send", "newsletter", "--stage", "prospect", "--stage", "lead", "--dry-run", now=NOW)
    assert "3 matching" in one_of.output, one_of.output
    assert "ada@example.org" in one_of.output and "bob@example.org" in one_of.output
    all_of = centre("send", "newsletter", "--tag", "webinar", "--tag", "lyon", "--dry-run", now=NOW)
    assert "1 matching" in all_of.output and "ada@example.org" in all_of.output


def test_data_is_read_as_event_data_and_a_second_run_with_other_data_is_refused(centre, smtp_server):
    centre("send", "newsletter", "--tag", "lyon", "--data", "lien_catalogue=https://a.example/", now=NOW)
    again = centre("send", "newsletter", "--tag", "lyon", "--data", "lien_catalogue=https://b.example/", now=NOW)
    assert again.exit_code == 1
    assert "already exists" in again.output and "--data" in again.output
    assert all(b"https://a.example/" in m.data for m in smtp_server.messages)


def test_a_topic_skips_who_left_it(centre):
    from edumail import topics

    db = store(centre)
    ada = db.contact_by_email("ada@example.org")
    topics.leave(db, ada["id"], "newsletter", db_now(), "test", {})
    result = centre("send", "newsletter", "--topic", "newsletter", "--dry-run", now=NOW)
    assert "1 left topic newsletter" in result.output
    assert "ada@example.org" not in result.output.split("Recipients:")[1]
    assert "bob@example.org" in result.output
    unknown = centre("send", "newsletter", "--topic", "promos", now=NOW)
    assert unknown.exit_code == 1 and "--topic: unknown topic 'promos' (topics: newsletter, offres)" in unknown.output


def db_now():
    from edumail import clock

    return clock.parse_iso(NOW, clock.UTC)


def test_a_mail_not_sent_by_until_is_dropped(centre, smtp_server):
    result = centre(
        "send", "newsletter", "--tag", "webinar", "--at", "2026-03-03T09:00", "--until", "2026-03-03T12:00", now=NOW
    )
    assert result.exit_code == 0, result.output
    late = centre("run", "--once", now="2026-03-03T12:30")
    assert smtp_server.messages == []
    assert store(centre).outbox_counts().get("cancelled") == 2, late.output


def test_until_before_the_send_window_opens_skips_at_queue_time(centre):
    settings = centre.root / "edumail.yaml"
    settings.write_text(settings.read_text() + 'send_window:\n  hours: "14:00-18:00"\n', encoding="utf-8")
    result = centre("send", "newsletter", "--tag", "webinar", "--until", "2026-03-02T12:00", "--dry-run", now=NOW)
    assert "2 after --until" in result.output


def test_until_before_at_is_refused(centre):
    result = centre("send", "newsletter", "--at", "2026-03-05T09:00", "--until", "2026-03-04T09:00", now=NOW)
    assert result.exit_code == 1 and "--until" in result.output


def test_a_segment_chooses_the_same_contacts_for_a_campaign_and_a_sequence(centre):
    (centre.root / "segments").mkdir()
    (centre.root / "segments" / "prospects.yaml").write_text(
        "stage: [prospect, lead]\nnot_tags: [lyon]\n", encoding="utf-8"
    )
    (centre.root / "sequences" / "accueil.yaml").write_text(
        "trigger: {segment: {tags: [webinar]}}\naudience: {segment: prospects}\nsteps:\n  - tag: accueilli\n",
        encoding="utf-8",
    )
    centre("run", "--once", "--backfill", now=NOW)
    db = store(centre)
    entered = {db.contact(r["contact_id"])["email"] for r in db.rows("SELECT contact_id FROM journeys")}
    campaign = centre("send", "newsletter", "--segment", "prospects", "--tag", "webinar", "--dry-run", now=NOW)
    assert campaign.exit_code == 0, campaign.output
    assert entered == {"bob@example.org"}
    assert "1 matching" in campaign.output and "bob@example.org" in campaign.output


def test_an_unknown_segment_is_one_line(centre):
    result = centre("send", "newsletter", "--segment", "nope", now=NOW)
    assert result.exit_code == 1 and "unknown segment 'nope'" in result.output


def test_preview_shows_the_letter_as_send_would(centre):
    result = centre("preview", "newsletter", "--content", str(centre.root / "lettre.md"), "--text", now=NOW)
    assert result.exit_code == 0, result.output
    assert (
        "Les nouvelles de mars" in result.output and "notre site (https://www.centre.example/sessions)" in result.output
    )
    bad = centre.root / "bad.md"
    bad.write_text("[x](javascript:alert(1))\n", encoding="utf-8")
    refused = centre("preview", "newsletter", "--content", str(bad), now=NOW)
    assert refused.exit_code == 1 and "bad.md:1: link to javascript:" in refused.output
