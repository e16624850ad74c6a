"""`edumail contacts export`, `contacts forget` and `purge` (SPEC section 9)."""

from __future__ import annotations

import json

from edumail import clock, contacts
from edumail.store import Store

NOW = "2026-11-20T10:00:00+00:00"
CSV = "email,prenom,nom,etape,ville,tags\nmarie@example.fr,Marie,Dupont,prospect,Lyon,webinar\n"


def db(cli) -> Store:
    return Store(cli.root / "edumail.db")


def import_csv(
    cli,
    text: str = CSV,
    *,
    now: str = "2026-11-01T10:00:00+00:00",
    name: str = "inscrits.csv",
    consent: str = "opted_in",
    basis: str | None = None,
):
    path = cli.root / name
    path.write_text(text, encoding="utf-8")
    args = ["contacts", "import", str(path), "--consent", consent]
    if basis:
        args += ["--basis", basis]
    result = cli(*args, now=now)
    assert result.exit_code == 0, result.output
    return result


def marie(cli) -> dict:
    found = db(cli).contact_by_email("marie@example.fr")
    assert found is not None
    return found


def queue_mail(cli, contact_id: int, message_id: str, *, sent: bool, journey_id: int | None = None) -> int:
    store = db(cli)
    stamp = clock.to_db(clock.parse_iso("2026-11-10T09:00:00", clock.UTC))
    with store.transaction():
        mail_id = store.enqueue_mail(
            message_id=message_id,
            template="bienvenue",
            purpose="marketing",
            not_before=stamp,
            now=stamp,
            contact_id=contact_id,
            context={"formation": "Excel", "email": "marie@example.fr"},
            journey_id=journey_id,
            step_id=message_id,
            sequence="accueil",
        )
        if sent:
            store.mark_mail_sent(mail_id, stamp, "Marie, bienvenue", ["https://centre.example/programme"])
    return mail_id


def add_journey(
    cli, contact_id: int, sequence: str = "accueil", state: str = "active", purpose: str = "marketing"
) -> int:
    """A journey row as the engine writes it (set up directly: this file tests erasure, not the engine)."""
    store = db(cli)
    cursor = store.execute(
        "INSERT INTO journeys (sequence, contact_id, trigger_key, started_at, state, purpose)"
        " VALUES (?, ?, 'segment', ?, ?, ?)",
        (sequence, contact_id, "2026-11-10T09:00:00.000000Z", state, purpose),
    )
    journey_id = int(cursor.lastrowid)
    store.execute(
        "INSERT INTO journey_log (journey_id, step_id, at, outcome)"
        " VALUES (?, 'bienvenue', '2026-11-10T09:00:00.000000Z', 'sent')",
        (journey_id,),
    )
    return journey_id


def dump(cli) -> str:
    return "\n".join(db(cli).conn.iterdump())


# --- export -------------------------------------------------------------------------


def test_export_prints_the_whole_story_as_json(cli):
    import_csv(cli)
    cid = marie(cli)["id"]
    journey = add_journey(cli, cid)
    queue_mail(cli, cid, "<m1@centre.example>", sent=True, journey_id=journey)
    assert (
        cli("event", "marie@example.fr", "inscription_commencee", "--data", "formation=Excel", now=NOW).exit_code == 0
    )
    result = cli("contacts", "export", "marie@example.fr", now=NOW)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["contact"]["email"] == "marie@example.fr" and data["contact"]["first_name"] == "Marie"
    assert data["contact"]["fields"] == {"ville": "Lyon"}
    assert [t["tag"] for t in data["tags"]] == ["webinar"]
    assert data["consent_log"][0]["consent"] == "opted_in"
    assert data["consent_log"][0]["proof"]["file"] == "inscrits.csv"
    assert {"formation": "Excel"} in [e["data"] for e in data["events"]]
    assert data["mails"][0]["subject"] == "Marie, bienvenue" and data["mails"][0]["state"] == "sent"
    assert data["mails"][0]["context"]["formation"] == "Excel"
    assert data["journeys"][0]["sequence"] == "accueil"
    assert data["journeys"][0]["steps"][0]["outcome"] == "sent"
    assert data["exported_at"].startswith("2026-11-20T10:00")


def test_export_is_case_insensitive(cli):
    import_csv(cli)
    assert cli("contacts", "export", "Marie@Example.FR", now=NOW).exit_code == 0


def test_export_of_unknown_address_is_a_clear_error(cli):
    result = cli("contacts", "export", "nobody@example.fr", now=NOW)
    assert result.exit_code == 1
    assert "no contact 'nobody@example.fr'" in result.output
    assert "Traceback" not in result.output


# --- forget ----------------------------------------------------------------------------


def test_forget_erases_every_personal_data(cli):
    import_csv(cli)
    cid = marie(cli)["id"]
    queue_mail(cli, cid, "<m1@centre.example>", sent=True)
    cli(
        "event",
        "marie@example.fr",
        "inscription_commencee",
        "--data",
        "formation=Excel",
        "--data",
        "tel=0601020304",
        now=NOW,
    )
    result = cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    assert result.exit_code == 0, result.output
    assert "forgotten" in result.output
    everything = dump(cli)
    for personal in ("marie@example.fr", "Marie", "Dupont", "Lyon", "0601020304", "inscrits.csv", "webinar"):
        assert personal not in everything, personal


def test_forgotten_contact_row_is_anonymised(cli):
    import_csv(cli)
    cid = marie(cli)["id"]
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    row = db(cli).contact(cid)
    assert row["email"] == f"forgotten-{cid}@invalid"
    assert (row["first_name"], row["last_name"], row["fields"], row["timezone"]) == ("", "", "{}", None)
    assert row["consent"] == "opted_out" and f"{row['forgotten_at']:%Y-%m-%d}" == "2026-11-20"
    assert db(cli).contact_by_email("marie@example.fr") is None


def test_forget_keeps_events_and_mails_for_statistics(cli):
    import_csv(cli)
    cid = marie(cli)["id"]
    mail_id = queue_mail(cli, cid, "<m1@centre.example>", sent=True)
    cli("event", "marie@example.fr", "inscription_commencee", "--data", "formation=Excel", now=NOW)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    store = db(cli)
    names = [e["name"] for e in store.events_of(cid)]
    assert "inscription_commencee" in names
    assert all(e["data"] == "{}" for e in store.events_of(cid))
    mail = store.mail(mail_id)
    assert mail["state"] == "sent" and mail["sequence"] == "accueil"
    assert (mail["to_email"], mail["context"], mail["subject"]) == (None, "{}", None)


def test_forget_cancels_queued_mails(cli):
    import_csv(cli)
    cid = marie(cli)["id"]
    mail_id = queue_mail(cli, cid, "<m2@centre.example>", sent=False)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    assert db(cli).mail(mail_id)["state"] == "cancelled"


def test_forget_ends_active_journeys(cli):
    import_csv(cli)
    cid = marie(cli)["id"]
    journey = add_journey(cli, cid)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    row = db(cli).row("SELECT state, end_reason FROM journeys WHERE id = ?", (journey,))
    assert row["state"] == "exited" and row["end_reason"] == "forgotten"


def test_forget_blanks_consent_proofs_and_logs_the_erasure(cli):
    import_csv(cli)
    cid = marie(cli)["id"]
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    log = db(cli).consent_log(cid)
    assert all(entry["proof"] in ("{}", json.dumps({"command": "contacts forget"})) for entry in log)
    assert log[-1]["consent"] == "opted_out" and log[-1]["source"] == "forgotten"


def test_forgotten_address_is_kept_only_as_a_salted_hash(cli):
    import_csv(cli)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    store = db(cli)
    assert contacts.is_forgotten(store, "Marie@example.fr")
    [row] = store.rows("SELECT hash, reason FROM suppressions")
    assert len(row["hash"]) == 64 and row["reason"] == "forgotten"


def test_forgotten_contact_may_receive_nothing(cli):
    import_csv(cli)
    cid = marie(cli)["id"]
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    contact = db(cli).contact(cid)
    assert contacts.may_receive(contact, "marketing") == "forgotten"
    assert contacts.may_receive(contact, "service") == "forgotten"


def test_reimport_from_csv_does_not_bring_a_forgotten_person_back(cli):
    import_csv(cli)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    result = import_csv(cli, CSV.replace("marie@", "MARIE@"), now=NOW, name="again.csv")
    assert "asked to be forgotten" in result.output
    assert db(cli).contact_by_email("marie@example.fr") is None


def test_event_for_a_forgotten_address_is_refused(cli):
    import_csv(cli)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    result = cli("event", "marie@example.fr", "inscription_commencee", now=NOW)
    assert result.exit_code == 1
    assert "forgotten" in result.output
    assert db(cli).contact_by_email("marie@example.fr") is None


def test_forget_unknown_address_is_a_clear_error(cli):
    result = cli("contacts", "forget", "nobody@example.fr", "--yes", now=NOW)
    assert result.exit_code == 1
    assert "no contact 'nobody@example.fr'" in result.output


def test_forget_twice_says_it_was_already_forgotten(cli):
    import_csv(cli)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    result = cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    assert result.exit_code == 1
    assert "already forgotten on 2026-11-20" in result.output


def test_export_after_forget_says_nothing_is_stored(cli):
    import_csv(cli)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    result = cli("contacts", "export", "marie@example.fr", now=NOW)
    assert result.exit_code == 1 and "already forgotten" in result.output


def test_forget_asks_for_confirmation_and_a_no_erases_nothing(cli):
    import_csv(cli)
    result = cli("contacts", "forget", "marie@example.fr", now=NOW, input="n\n")
    assert result.exit_code == 1
    assert "nothing erased" in result.output
    assert marie(cli)["first_name"] == "Marie"


def test_forget_with_a_yes_answer_erases(cli):
    import_csv(cli)
    result = cli("contacts", "forget", "marie@example.fr", now=NOW, input="y\n")
    assert result.exit_code == 0, result.output
    assert db(cli).contact_by_email("marie@example.fr") is None


def test_forgotten_contact_is_not_listed(cli):
    import_csv(cli)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    assert "forgotten-" not in cli("contacts", "list", now=NOW).output


# --- purge --------------------------------------------------------------------------------

OLD = "2022-06-01T10:00:00+00:00"
PURGE_NOW = "2026-11-20T10:00:00+00:00"


def people(cli, rows: list[str], *, now: str = OLD, **kw) -> None:
    import_csv(cli, "email,prenom,etape\n" + "\n".join(rows) + "\n", now=now, name=f"p{len(rows)}{now[:4]}.csv", **kw)


def test_purge_anonymises_a_prospect_silent_for_3_years(cli):
    people(cli, ["old@example.fr,Olga,prospect"])
    result = cli("purge", now=PURGE_NOW)
    assert result.exit_code == 0, result.output
    assert "anonymised: old@example.fr" in result.output and "1 prospect(s) anonymised" in result.output
    assert db(cli).contact_by_email("old@example.fr") is None
    assert "Olga" not in dump(cli)


def test_purge_keeps_a_recent_prospect(cli):
    people(cli, ["new@example.fr,Nina,prospect"], now="2025-01-01T10:00:00+00:00")
    cli("purge", now=PURGE_NOW)
    assert db(cli).contact_by_email("new@example.fr") is not None


def test_a_click_within_3_years_keeps_the_prospect(cli):
    people(cli, ["old@example.fr,Olga,prospect"])
    cid = db(cli).contact_by_email("old@example.fr")["id"]
    store = db(cli)
    at = clock.parse_iso("2024-06-01T10:00:00", clock.UTC)
    contacts.record_event(store, cid, "email_clicked", at=at, data={"url": "https://x"}, source="tracking", now=at)
    cli("purge", now=PURGE_NOW)
    assert db(cli).contact_by_email("old@example.fr") is not None


def test_an_event_from_the_centre_within_3_years_keeps_the_prospect(cli):
    people(cli, ["old@example.fr,Olga,prospect"])
    cli("event", "old@example.fr", "salon_visite", now="2025-03-01T10:00:00+00:00")
    cli("purge", now=PURGE_NOW)
    assert db(cli).contact_by_email("old@example.fr") is not None


def test_opens_are_not_a_sign_of_life(cli):
    people(cli, ["old@example.fr,Olga,prospect"])
    cid = db(cli).contact_by_email("old@example.fr")["id"]
    store = db(cli)
    at = clock.parse_iso("2026-10-01T10:00:00", clock.UTC)
    contacts.record_event(store, cid, "email_opened", at=at, data={}, source="tracking", now=at)
    contacts.record_event(store, cid, "email_sent", at=at, data={}, source="delivery", now=at)
    cli("purge", now=PURGE_NOW)
    assert db(cli).contact_by_email("old@example.fr") is None


def test_customers_and_enrolled_learners_are_not_purged(cli):
    people(cli, ["a@example.fr,A,client", "b@example.fr,B,Inscrit", "c@example.fr,C,lead", "d@example.fr,D,"])
    result = cli("purge", now=PURGE_NOW)
    assert "2 prospect(s) anonymised" in result.output
    store = db(cli)
    assert store.contact_by_email("a@example.fr") and store.contact_by_email("b@example.fr")
    assert store.contact_by_email("c@example.fr") is None and store.contact_by_email("d@example.fr") is None


def test_soft_opt_in_customers_are_not_purged(cli):
    people(cli, ["a@example.fr,A,"], basis="customer")
    cli("purge", now=PURGE_NOW)
    assert db(cli).contact_by_email("a@example.fr") is not None


def test_contact_in_an_active_service_sequence_is_kept(cli):
    people(cli, ["a@example.fr,A,prospect", "b@example.fr,B,prospect"])
    add_journey(cli, db(cli).contact_by_email("a@example.fr")["id"], sequence="convocation", purpose="service")
    add_journey(cli, db(cli).contact_by_email("b@example.fr")["id"], sequence="newsletter")
    result = cli("purge", now=PURGE_NOW)
    assert "kept: a@example.fr (in service sequence convocation)" in result.output
    assert db(cli).contact_by_email("a@example.fr") is not None
    assert db(cli).contact_by_email("b@example.fr") is None


def test_dry_run_lists_and_changes_nothing(cli):
    people(cli, ["old@example.fr,Olga,prospect"])
    before = dump(cli)
    result = cli("purge", "--dry-run", now=PURGE_NOW)
    assert result.exit_code == 0
    assert "would anonymise: old@example.fr" in result.output and "dry run" in result.output
    assert dump(cli) == before


def test_purged_prospect_may_come_back_with_a_new_consent(cli):
    people(cli, ["old@example.fr,Olga,prospect"])
    cli("purge", now=PURGE_NOW)
    people(cli, ["old@example.fr,Olga,prospect"], now=PURGE_NOW)
    assert db(cli).contact_by_email("old@example.fr") is not None


def test_purged_opted_out_prospect_stays_suppressed(cli):
    people(cli, ["old@example.fr,Olga,prospect"], consent="opted_out")
    cli("purge", now=PURGE_NOW)
    assert contacts.is_forgotten(db(cli), "old@example.fr")
    result = import_csv(cli, "email\nold@example.fr\n", now=PURGE_NOW, name="again.csv")
    assert "asked to be forgotten" in result.output


def test_purge_with_nobody_stale_says_so(cli):
    result = cli("purge", now=PURGE_NOW)
    assert result.exit_code == 0 and "0 prospect(s) anonymised" in result.output


def test_events_import_skips_a_forgotten_address(cli):
    import_csv(cli)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    path = cli.root / "events.csv"
    path.write_text("email,name\nmarie@example.fr,inscription_commencee\n", encoding="utf-8")
    result = cli("events", "import", str(path), now=NOW)
    assert "asked to be forgotten" in result.output
    assert db(cli).contact_by_email("marie@example.fr") is None


def test_events_api_refuses_a_forgotten_address(cli, monkeypatch):
    from starlette.testclient import TestClient

    from edumail import project as project_module
    from edumail.tracking import create_app

    import_csv(cli)
    cli("contacts", "forget", "marie@example.fr", "--yes", now=NOW)
    monkeypatch.setenv("EDUMAIL_NOW", NOW)
    monkeypatch.setenv("EDUMAIL_API_TOKEN", "api-token")
    with TestClient(create_app(project_module.load(cli.root))) as client:
        response = client.post(
            "/api/events",
            json={"email": "Marie@example.fr", "name": "x"},
            headers={"Authorization": "Bearer api-token"},
        )
    assert response.status_code == 409
    assert db(cli).contact_by_email("marie@example.fr") is None
