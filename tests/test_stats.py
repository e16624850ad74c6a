"""`edumail stats`: figures per step, sequence and campaign; JSON, CSV, HTML."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tracking_support import SENT_AT, contact, journey, sent_mail

from edumail import clock, contacts, events, stats
from edumail.store import Store

SEQUENCE = """\
name: relance
trigger:
  event: inscription_commencee
goal: {event: inscription_finalisee, within: 14d}
steps:
  - send: relance-1
  - wait: 3d
    send: relance-2
  - wait: 7d
    tag: [froid]
"""
TEMPLATE = "---\nsubject: Bonjour\n---\n<p>Bonjour {{ contact.first_name }}</p>\n"


def _event(store: Store, contact_id: int, name: str, at, mail_id=None, machine=False, data=None) -> None:
    contacts.record_event(
        store, contact_id, name, at=at, data=data or {}, source="test", now=at, mail_id=mail_id, machine=machine
    )


@pytest.fixture
def store(project_dir: Path) -> Iterator[Store]:
    (project_dir / "sequences" / "relance.yaml").write_text(SEQUENCE, encoding="utf-8")
    for name in ("relance-1", "relance-2", "newsletter"):
        (project_dir / "templates" / f"{name}.html").write_text(TEMPLATE, encoding="utf-8")
    with Store(project_dir / "edumail.db") as opened:
        yield opened


@pytest.fixture
def scenario(store: Store) -> dict[str, int]:
    """Four contacts through `relance`, one campaign of two mails."""
    later = SENT_AT + timedelta(hours=3)
    ids = {name: contact(store, f"{name}@example.org") for name in ("ana", "ben", "chloe", "dan")}
    mails, journeys = {}, {}
    for name, contact_id in ids.items():
        journeys[name] = journey(store, "relance", contact_id, SENT_AT - timedelta(minutes=5))
        mails[name] = sent_mail(store, contact_id, sequence="relance", step_id="relance-1", journey_id=journeys[name])
    _event(store, ids["ana"], events.EMAIL_OPENED, later, mails["ana"])
    _event(store, ids["ana"], events.EMAIL_OPENED, later + timedelta(hours=1), mails["ana"])
    _event(store, ids["ana"], events.UNSUBSCRIBED, later, mails["ana"])
    _event(store, ids["ben"], events.EMAIL_OPENED, SENT_AT, mails["ben"], machine=True)
    _event(
        store, ids["chloe"], events.EMAIL_CLICKED, later, mails["chloe"], data={"url": "https://x.example", "index": 0}
    )
    _event(store, ids["chloe"], events.EMAIL_CLICKED, SENT_AT, mails["chloe"], machine=True)
    _event(store, ids["dan"], events.BOUNCED, SENT_AT, mails["dan"], data={"kind": "hard"})
    second = sent_mail(
        store,
        ids["ben"],
        sequence="relance",
        step_id="relance-2",
        sent_at=SENT_AT + timedelta(days=3),
        journey_id=journeys["ben"],
    )
    _event(store, ids["ben"], events.EMAIL_OPENED, SENT_AT + timedelta(days=3, hours=1), second)
    # goal: ana within 14 days, ben after 20 days (too late)
    _event(store, ids["ana"], "inscription_finalisee", SENT_AT + timedelta(days=3))
    _event(store, ids["ben"], "inscription_finalisee", SENT_AT + timedelta(days=20))
    # a queued mail and a staff notification are not sends
    sent_mail(store, ids["chloe"], sequence="relance", step_id="relance-2", sent_at=None, journey_id=journeys["chloe"])
    store.enqueue_mail(
        message_id="<staff@x>",
        template="notify",
        purpose="service",
        not_before="0",
        now="0",
        to_email="staff@centre.example",
        sequence="relance",
        step_id="notify",
    )
    campaign_id = store.insert_campaign(
        "newsletter-nov", "newsletter", {}, clock.to_db(SENT_AT), clock.to_db(SENT_AT), "done"
    )
    for name in ("ana", "ben"):
        mail_id = sent_mail(store, ids[name], campaign_id=campaign_id, sent_at=SENT_AT + timedelta(days=1))
        if name == "ben":
            _event(store, ids[name], events.EMAIL_OPENED, SENT_AT + timedelta(days=1, hours=2), mail_id)
    return ids


def _step(result: dict, step_id: str) -> dict:
    [sequence] = [s for s in result["sequences"] if s["name"] == "relance"]
    [step] = [s for s in sequence["steps"] if s["id"] == step_id]
    return step


def test_step_figures_count_unique_people_and_leave_machines_out(store: Store, scenario: dict) -> None:
    result = stats.compute(store)
    first = _step(result, "relance-1")
    assert {k: first[k] for k in stats.COUNTS} == {
        "sent": 4,
        "delivered": 3,
        "opened": 2,
        "clicked": 1,
        "unsubscribed": 1,
        "bounced": 1,
        "complained": 0,
    }
    assert first["open_rate"] == pytest.approx(0.6667)
    assert first["click_rate"] == pytest.approx(0.3333)
    assert first["unsubscribe_rate"] == pytest.approx(0.3333)
    assert first["bounce_rate"] == pytest.approx(0.3333)  # over delivered (SPEC section 8)


def test_steps_follow_the_sequence_file_and_skip_steps_that_send_nothing(store: Store, scenario: dict) -> None:
    defs, problems = stats.definitions(_project(store))
    assert problems == []
    result = stats.compute(store, defs)
    [sequence] = result["sequences"]
    assert [s["id"] for s in sequence["steps"]] == ["relance-1", "relance-2"]
    assert _step(result, "relance-2")["sent"] == 1 and _step(result, "relance-2")["opened"] == 1
    assert sequence["sent"] == 4 and sequence["opened"] == 3


def test_staff_alerts_are_not_mails_of_the_sequence(store: Store, scenario: dict) -> None:
    """A `notify:` alert goes to the team about a contact: it is neither a send nor a step of the sequence."""
    eve = contact(store, "eve@example.org")
    stamp = clock.to_db(SENT_AT)
    alert = store.enqueue_mail(
        message_id="<alert@centre.example>",
        template="__notify__",
        purpose=events.SERVICE,
        not_before=stamp,
        now=stamp,
        contact_id=eve,
        to_email="equipe@centre.example",
        sequence="relance",
        step_id="relance-1:notify",
    )
    store.mark_mail_sent(alert, stamp, "[edumail] eve@example.org : relance", [])
    defs, _ = stats.definitions(_project(store))
    [sequence] = stats.compute(store, defs)["sequences"]
    assert [s["id"] for s in sequence["steps"]] == ["relance-1", "relance-2"]
    assert sequence["sent"] == 4 and _step(stats.compute(store, defs), "relance-1")["sent"] == 4


def test_conversion_counts_journeys_that_reached_the_goal_in_time(store: Store, scenario: dict) -> None:
    defs, _ = stats.definitions(_project(store))
    [sequence] = stats.compute(store, defs)["sequences"]
    assert sequence["goal"] == {"event": "inscription_finalisee", "within": "2w"}
    assert (sequence["journeys"], sequence["converted"], sequence["conversion_rate"]) == (4, 1, 0.25)


def test_campaign_figures(store: Store, scenario: dict) -> None:
    [campaign] = stats.compute(store)["campaigns"]
    assert campaign["name"] == "newsletter-nov" and campaign["template"] == "newsletter"
    assert (campaign["sent"], campaign["delivered"], campaign["opened"], campaign["open_rate"]) == (2, 2, 1, 0.5)


def test_period_counts_mails_sent_in_it(store: Store, scenario: dict) -> None:
    since = SENT_AT + timedelta(days=2)
    result = stats.compute(store, stats.definitions(_project(store))[0], since=since)
    assert _step(result, "relance-1")["sent"] == 0
    assert _step(result, "relance-2")["sent"] == 1
    assert result["campaigns"] == []


def test_rates_are_none_without_deliveries(store: Store) -> None:
    assert stats.figures(None)["open_rate"] is None


def test_unknown_sequence_is_an_error_naming_the_known_ones(store: Store, scenario: dict) -> None:
    from edumail.errors import NotFound

    with pytest.raises(NotFound, match="known: relance"):
        stats.compute(store, sequence="relanse")


def test_daily_series_is_in_the_project_timezone(store: Store, scenario: dict) -> None:
    days = stats.daily(store, clock.zone("Europe/Paris"))
    assert days[0] == {"day": "2026-11-02", "sent": 4, "opened": 2}
    assert {"day": "2026-11-03", "sent": 2, "opened": 1} in days
    assert days[2] == {"day": "2026-11-04", "sent": 0, "opened": 0}
    assert days[-1]["day"] == "2026-11-05"


def test_period_parsing() -> None:
    tz = clock.zone("Europe/Paris")
    start, end = stats.period("2026-11-01", "2026-11-30", tz)
    assert clock.to_db(start) == "2026-10-31T23:00:00.000000Z"
    assert clock.to_db(end) == "2026-11-30T23:00:00.000000Z"
    from edumail.errors import InputError

    with pytest.raises(InputError, match="--since"):
        stats.period("last week", None, tz)
    with pytest.raises(InputError, match="not before"):
        stats.period("2026-12-01", "2026-11-01", tz)


def _project(store: Store):
    from edumail import project

    return project.load(store.path.parent)


# --- the command ---------------------------------------------------------------------------------


def test_stats_json_has_the_specs_shape(cli, scenario: dict) -> None:
    result = cli("stats", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"sequences", "campaigns"}
    [sequence] = data["sequences"]
    assert sequence["name"] == "relance"
    step = sequence["steps"][0]
    assert step["id"] == "relance-1"
    assert set(step) >= {*stats.COUNTS, *stats.RATES}
    assert data["campaigns"][0]["name"] == "newsletter-nov"


def test_stats_sequence_option_leaves_campaigns_out(cli, scenario: dict) -> None:
    data = json.loads(cli("stats", "--json", "--sequence", "relance").stdout)
    assert [s["name"] for s in data["sequences"]] == ["relance"] and data["campaigns"] == []


def test_stats_bad_dates_and_unknown_sequence_are_clear_errors(cli, scenario: dict) -> None:
    result = cli("stats", "--since", "hier")
    assert result.exit_code == 1 and "--since" in result.output and "ISO 8601" in result.output
    result = cli("stats", "--sequence", "nope")
    assert result.exit_code == 1 and "no sequence 'nope'" in result.output
    result = cli("stats", "--json", "--csv")
    assert result.exit_code == 1


def test_stats_csv(cli, scenario: dict) -> None:
    result = cli("stats", "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["kind"] == "sequence" and rows[0]["name"] == "relance"
    step = next(r for r in rows if r["step"] == "relance-1")
    assert step["sent"] == "4" and step["bounce_rate"] == "0.3333"
    assert rows[-1]["kind"] == "campaign"


def test_stats_tables(cli, scenario: dict) -> None:
    result = cli("stats")
    assert result.exit_code == 0
    assert "relance-1" in result.stdout and "newsletter-nov" in result.stdout
    assert "66.7 %" in result.stdout
    assert "goal inscription_finalisee within 2w" in result.stdout


def test_stats_with_nothing_sent(cli) -> None:
    result = cli("stats")
    assert result.exit_code == 0 and "nothing sent yet" in result.stdout


def test_stats_html_report_is_one_self_contained_file(cli, scenario: dict, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = cli("stats", "--html", str(out), now="2026-11-30T10:00")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert "<svg" in page and "relance-1" in page and "newsletter-nov" in page
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert "66,7\u00a0%" in page and "0,0\u00a0%" in page and "66.7" not in page
    assert "Objectif" in page and "en 2\u00a0semaines" in page
    assert not re.search(r" [:;!?]", re.sub(r"<[^>]+>", "", page.split("</style>", 1)[1])), "French spacing"


def test_stats_html_escapes_names(cli, store: Store, tmp_path: Path) -> None:
    contact_id = contact(store, "x@example.org")
    sent_mail(store, contact_id, sequence="<script>x</script>", step_id="s")
    out = tmp_path / "r.html"
    cli("stats", "--html", str(out))
    assert "<script>" not in out.read_text(encoding="utf-8")


def test_stats_warns_about_a_broken_sequence_file_and_still_counts(cli, project_dir: Path, scenario: dict) -> None:
    (project_dir / "sequences" / "broken.yaml").write_text("name: broken\nsteps: 3\n", encoding="utf-8")
    result = cli("stats", "--json")
    assert result.exit_code == 0
    assert "broken.yaml" in result.stderr
    assert json.loads(result.stdout)["sequences"][0]["name"] == "relance"


# --- complaints (SPEC 18) -----------------------------------------------------------------------


def _campaign_with_complaints(store: Store, sent: int, complained: int) -> None:
    campaign_id = store.insert_campaign("promo", "newsletter", {}, clock.to_db(SENT_AT), clock.to_db(SENT_AT), "done")
    for n in range(sent):
        contact_id = contact(store, f"p{n}@example.org")
        mail_id = sent_mail(store, contact_id, campaign_id=campaign_id)
        if n < complained:
            _event(store, contact_id, events.COMPLAINED, SENT_AT + timedelta(hours=5), mail_id)
            _event(store, contact_id, events.COMPLAINED, SENT_AT + timedelta(hours=6), mail_id)  # webhook + ARF


def test_complaints_count_unique_people_with_their_rate_over_delivered(store: Store, scenario: dict) -> None:
    _event(store, scenario["chloe"], events.COMPLAINED, SENT_AT + timedelta(hours=4), _first_mail(store, "chloe"))
    first = _step(stats.compute(store), "relance-1")
    assert first["complained"] == 1
    assert first["complaint_rate"] == pytest.approx(0.3333)
    assert first["complaints_over_limit"] is True
    assert _step(stats.compute(store), "relance-2")["complaints_over_limit"] is False


def _first_mail(store: Store, name: str) -> int:
    contact_id = store.contact_by_email(f"{name}@example.org")["id"]
    return int(store.scalar("SELECT MIN(id) FROM mails WHERE contact_id = ?", (contact_id,)))


def test_a_campaign_under_the_limit_is_not_flagged_and_one_over_it_is(store: Store) -> None:
    _campaign_with_complaints(store, sent=400, complained=1)  # 0.25 %
    [campaign] = stats.compute(store)["campaigns"]
    assert (campaign["complained"], campaign["complaint_rate"]) == (1, 0.0025)
    assert campaign["complaints_over_limit"] is False
    _event(store, store.contact_by_email("p1@example.org")["id"], events.COMPLAINED, SENT_AT, _first_mail(store, "p1"))
    [campaign] = stats.compute(store)["campaigns"]
    assert campaign["complained"] == 2 and campaign["complaints_over_limit"] is True


def test_overall_figures_add_up_sequences_and_campaigns(store: Store, scenario: dict) -> None:
    _event(store, scenario["ana"], events.COMPLAINED, SENT_AT + timedelta(hours=4), _first_mail(store, "ana"))
    overall = stats.compute(store)["overall"]
    assert overall["sent"] == 4 and overall["complained"] == 1
    assert overall["complaint_rate"] == pytest.approx(1 / 3, abs=1e-4)


def test_stats_json_and_tables_show_complaints_and_say_when_over_the_limit(cli, store: Store) -> None:
    _campaign_with_complaints(store, sent=100, complained=1)
    data = json.loads(cli("stats", "--json").stdout)
    assert data["campaigns"][0]["complained"] == 1 and data["campaigns"][0]["complaint_rate"] == 0.01
    assert data["overall"]["complained"] == 1 and data["overall"]["complaints_over_limit"] is True
    result = cli("stats")
    assert result.exit_code == 0, result.output
    assert "complained" in result.stdout
    assert "campaign promo: complaint rate 1.0 % is over 0.3 %" in result.stdout
    csv_rows = list(csv.DictReader(io.StringIO(cli("stats", "--csv").stdout)))
    assert csv_rows[-1]["complained"] == "1" and csv_rows[-1]["complaint_rate"] == "0.01"
