import json

import pytest

from edumail import clock
from edumail.store import Store

NOW = "2026-11-20T10:00:00+01:00"


def db(cli) -> Store:
    return Store(cli.root / "edumail.db")


def write_bytes(cli, name: str, data: bytes) -> str:
    path = cli.root / name
    path.write_bytes(data)
    return str(path)


def test_import_semicolon_windows1252_with_bad_row_and_duplicate(cli):
    text = (
        "email;prénom;nom;étape;ville\n"
        "marie.dupont@example.fr;Marie;Dupont;prospect;Lyon\n"
        "pas-une-adresse;X;Y;;\n"
        "jean@example.fr;Jean;Müller;lead;Paris\n"
        "Marie.Dupont@Example.FR;Marie;Dupont-Léger;lead;\n"
    )
    path = write_bytes(cli, "c.csv", text.encode("cp1252"))
    result = cli("contacts", "import", path, now=NOW)
    assert result.exit_code == 1, result.output  # a skipped row needs a look (SPEC 11)
    assert "2 created, 1 updated, 1 skipped" in result.output
    assert "c.csv:3: invalid e-mail address 'pas-une-adresse'" in result.output
    marie = db(cli).contact_by_email("MARIE.DUPONT@example.fr")
    assert (marie["first_name"], marie["last_name"], marie["stage"]) == ("Marie", "Dupont-Léger", "lead")
    assert json.loads(marie["fields"]) == {"ville": "Lyon"}
    assert db(cli).contact_by_email("jean@example.fr")["last_name"] == "Müller"


def test_reimport_of_the_same_file_changes_nothing(cli):
    path = write_bytes(cli, "c.csv", b"email,prenom\na@example.fr,Ann\nA@example.fr,Ann\n")
    cli("contacts", "import", path, now=NOW)
    result = cli("contacts", "import", path, now=NOW)
    assert "0 created, 0 updated, 2 unchanged, 0 skipped" in result.output


def test_import_utf8_with_bom_and_comma(cli):
    path = write_bytes(cli, "c.csv", "\ufeffEmail,Prénom,Nom\nzoe@example.fr,Zoé,Lefèvre\n".encode("utf-8"))
    assert "1 created" in cli("contacts", "import", path, now=NOW).output
    assert db(cli).contact_by_email("zoe@example.fr")["first_name"] == "Zoé"


def test_import_tab_separated(cli):
    path = write_bytes(cli, "c.csv", b"email\tprenom\nt@example.fr\tTom\n")
    assert "1 created" in cli("contacts", "import", path, now=NOW).output


def test_import_without_email_column_is_refused(cli):
    path = write_bytes(cli, "c.csv", b"nom;prenom\nDupont;Marie\n")
    result = cli("contacts", "import", path, now=NOW)
    assert result.exit_code == 1
    assert "no email column (found: nom, prenom)" in result.output
    assert db(cli).count_contacts() == 0


def test_import_of_a_binary_file_is_refused(cli):
    path = write_bytes(cli, "c.xlsx", b"PK\x03\x04\x00\x00binary")
    result = cli("contacts", "import", path, now=NOW)
    assert result.exit_code == 1 and "not a CSV file" in result.output


def test_import_of_a_missing_file_is_refused(cli):
    result = cli("contacts", "import", "nowhere.csv", now=NOW)
    assert result.exit_code == 1 and "no such file" in result.output


def test_import_with_consent_logs_proof(cli):
    path = write_bytes(cli, "c.csv", b"email\na@example.fr\n")
    cli("contacts", "import", path, "--consent", "opted_in", "--basis", "customer", "--source", "salon 2026", now=NOW)
    store = db(cli)
    contact = store.contact_by_email("a@example.fr")
    assert (contact["consent"], contact["consent_basis"]) == ("opted_in", "customer")
    log = store.consent_log(contact["id"])
    assert log[-1]["source"] == "salon 2026"
    assert json.loads(log[-1]["proof"]) == {"command": "contacts import", "file": "c.csv", "line": 2}


def test_consent_alone_means_opt_in_basis(cli):
    path = write_bytes(cli, "c.csv", b"email\na@example.fr\n")
    cli("contacts", "import", path, "--consent", "opted_in", now=NOW)
    assert db(cli).contact_by_email("a@example.fr")["consent_basis"] == "opt_in"


def test_import_never_resubscribes_an_opted_out_contact(cli):
    path = write_bytes(cli, "c.csv", b"email\na@example.fr\n")
    cli("contacts", "import", path, "--consent", "opted_out", now=NOW)
    result = cli("contacts", "import", path, "--consent", "opted_in", now=NOW)
    assert "1 kept opted out" in result.output
    assert db(cli).contact_by_email("a@example.fr")["consent"] == "opted_out"


def test_import_tags_record_tag_added(cli):
    path = write_bytes(cli, "c.csv", b"email;tags\na@example.fr;webinar-2026,vip\n")
    cli("contacts", "import", path, "--tag", "salon", now=NOW)
    store = db(cli)
    contact = store.contact_by_email("a@example.fr")
    assert store.tags_of(contact["id"]) == ["salon", "vip", "webinar-2026"]
    names = [e["name"] for e in store.events_of(contact["id"])]
    assert names.count("tag_added") == 3


def test_bad_timezone_in_a_row_skips_that_row(cli):
    path = write_bytes(cli, "c.csv", b"email;timezone\na@example.fr;Mars/Olympus\nb@example.fr;America/Montreal\n")
    result = cli("contacts", "import", path, now=NOW)
    assert "1 created" in result.output and "c.csv:2: unknown timezone" in result.output


def test_tag_untag_stage_record_events(cli):
    cli("event", "a@example.fr", "contact_form", now=NOW)
    assert cli("contacts", "tag", "A@example.fr", "chaud", "webinar", now=NOW).exit_code == 0
    cli("contacts", "untag", "a@example.fr", "webinar", now=NOW)
    cli("contacts", "stage", "a@example.fr", "lead", now=NOW)
    store = db(cli)
    contact = store.contact_by_email("a@example.fr")
    assert store.tags_of(contact["id"]) == ["chaud"]
    events = [(e["name"], json.loads(e["data"])) for e in store.events_of(contact["id"])]
    assert ("tag_removed", {"tag": "webinar"}) in events
    assert ("stage_changed", {"from": "", "to": "lead"}) in events


def test_event_creates_unknown_contact_with_data(cli):
    result = cli(
        "event",
        "New@Example.fr",
        "inscription_commencee",
        "--data",
        "formation=Excel",
        "--at",
        "2026-11-19T14:00",
        now=NOW,
    )
    assert result.exit_code == 0, result.output
    store = db(cli)
    contact = store.contact_by_email("new@example.fr")
    assert contact["consent"] == "unknown"
    event = store.events_of(contact["id"])[0]
    assert event["at"] == clock.from_db("2026-11-19T13:00:00.000000Z")
    assert json.loads(event["data"]) == {"formation": "Excel"}


def test_event_with_bad_date_or_data_is_refused(cli):
    assert "not an ISO 8601 date" in cli("event", "a@example.fr", "x", "--at", "mardi", now=NOW).output
    result = cli("event", "a@example.fr", "x", "--data", "novalue", now=NOW)
    assert result.exit_code == 1 and "expected key=value" in result.output
    assert db(cli).count_contacts() == 0


def test_events_import(cli):
    path = write_bytes(
        cli,
        "e.csv",
        "email;name;at;formation\na@example.fr;inscription_commencee;2026-11-18T10:00;Excel\n"
        "b@example.fr;inscription_commencee;;Word\nx;oops;;\nc@example.fr;y;hier;\n".encode("cp1252"),
    )
    result = cli("events", "import", path, now=NOW)
    assert "2 recorded, 2 new contact(s), 2 skipped" in result.output
    assert "e.csv:5: 'hier' is not an ISO 8601 date" in result.output


def test_events_import_creates_each_new_contact_once_and_keeps_the_latest_sign_of_life(cli):
    cli("event", "known@example.fr", "page_vue", "--at", "2026-11-01T10:00", now=NOW)
    path = write_bytes(
        cli,
        "e.csv",
        b"email,name,at\nnew@example.fr,page_vue,2026-11-10T10:00\nNew@Example.fr,devis,2026-11-12T09:00\n"
        b"known@example.fr,email_opened,2026-11-15T10:00\nknown@example.fr,devis,2026-11-14T10:00\n",
    )
    result = cli("events", "import", path, now=NOW)
    assert "4 recorded, 1 new contact(s), 0 skipped" in result.output, result.output
    store = db(cli)
    new, known = store.contact_by_email("new@example.fr"), store.contact_by_email("known@example.fr")
    assert [e["name"] for e in store.events_of(new["id"])] == ["page_vue", "devis"]
    assert [entry["consent"] for entry in store.consent_log(new["id"])] == ["unknown"]
    # An open is not a sign of life (SPEC 3); the later devis is.
    assert new["last_inbound_at"] == clock.parse_iso("2026-11-12T09:00", clock.zone("Europe/Paris"))
    assert known["last_inbound_at"] == clock.parse_iso("2026-11-14T10:00", clock.zone("Europe/Paris"))


def test_show_tells_the_story(cli):
    path = write_bytes(cli, "c.csv", b"email;prenom;etape\nmarie@example.fr;Marie;prospect\n")
    cli("contacts", "import", path, "--consent", "opted_in", now=NOW)
    cli("event", "marie@example.fr", "inscription_commencee", "--data", "formation=Excel", now=NOW)
    result = cli("contacts", "show", "MARIE@example.fr", now=NOW)
    assert result.exit_code == 0, result.output
    assert "Marie <marie@example.fr>" in result.output
    assert "opted_in (opt_in)  via import c.csv" in result.output
    assert "inscription_commencee  formation=Excel" in result.output
    told = json.loads(cli("contacts", "show", "marie@example.fr", "--json", now=NOW).output)
    assert told["contact"]["stage"] == "prospect"
    assert [i["name"] for i in told["timeline"] if i["kind"] == "event"] == ["stage_changed", "inscription_commencee"]


def test_show_unknown_contact_is_an_error(cli):
    result = cli("contacts", "show", "nobody@example.fr", now=NOW)
    assert result.exit_code == 1 and "no contact 'nobody@example.fr'" in result.output


def test_list_filters_and_json(cli):
    path = write_bytes(cli, "c.csv", b"email;etape;tags\na@example.fr;lead;x\nb@example.fr;prospect;\n")
    cli("contacts", "import", path, now=NOW)
    listed = json.loads(cli("contacts", "list", "--stage", "lead", "--json").output)
    assert [c["email"] for c in listed] == ["a@example.fr"] and listed[0]["tags"] == ["x"]
    assert "b@example.fr" not in cli("contacts", "list", "--tag", "x").output


def test_consent_command_logs_source(cli):
    cli("event", "a@example.fr", "x", now=NOW)
    cli("contacts", "consent", "a@example.fr", "opted_in", "--basis", "professional", "--source", "phone", now=NOW)
    contact = db(cli).contact_by_email("a@example.fr")
    assert (contact["consent"], contact["consent_basis"]) == ("opted_in", "professional")


def test_a_failing_row_leaves_nothing_half_imported(cli):
    path = write_bytes(cli, "c.csv", b"email\na@example.fr\nb@example.fr\n")
    # A real fault inside the transaction: the database refuses the second consent log entry.
    store = db(cli)
    store.execute(
        "CREATE TRIGGER fail_second BEFORE INSERT ON consent_log WHEN (SELECT COUNT(*) FROM consent_log) >= 1"
        " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    store.close()
    result = cli("contacts", "import", path, now=NOW)
    assert result.exit_code != 0
    assert db(cli).count_contacts() == 0


# --- address validation: the fast path agrees with email_validator ------------------------------

ADDRESSES = [
    "Lea.Martin@Example.ORG",
    "  camille+news@centre.example ",
    "a_b-c%d@sub.domain.fr",
    "x@bücher.de",
    "Zoé@example.org",
    '"quoted"@example.org',
    "a..b@example.org",
    ".a@example.org",
    "a.@example.org",
    "a@localhost",
    "a@x.test",
    "a@x.local",
    "a@1.2.3.4",
    "a@-bad.example",
    "a@bad-.example",
    "a@exa_mple.org",
    "no-at-sign.example.org",
    "a@b@example.org",
    "a" * 65 + "@example.org",
    "a@" + "b" * 64 + ".example",
    "a@" + ".".join(["b" * 60] * 4) + ".example",
    "o'brien@example.ie",
    "a@example.org.",
    "",
]


@pytest.mark.parametrize("raw", ADDRESSES)
def test_normalize_email_agrees_with_email_validator(raw):
    from email_validator import EmailNotValidError, validate_email

    from edumail.contacts import normalize_email
    from edumail.errors import InputError

    try:
        expected = validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except (EmailNotValidError, ValueError):
        expected = None
    if expected is None or not raw.strip():
        with pytest.raises(InputError):
            normalize_email(raw)
    else:
        assert normalize_email(raw) == expected


def test_mixed_encodings_report_the_row_and_never_store_mojibake(cli):
    data = (
        "email;prénom\n".encode()
        + "h@example.fr;Hélène\n".encode()
        + "c@example.fr;C\xe9cile\n".encode("cp1252")
        + "z@example.fr;Zoé\n".encode()
    )
    result = cli("contacts", "import", write_bytes(cli, "c.csv", data), now=NOW)
    assert result.exit_code == 1, result.output
    assert "2 created" in result.output and "1 skipped" in result.output
    assert "c.csv:3:" in result.output and "Windows-1252" in result.output
    assert db(cli).contact_by_email("h@example.fr")["first_name"] == "Hélène"
    assert db(cli).contact_by_email("c@example.fr") is None


def test_unclosed_quote_is_reported_at_the_line_it_opens(cli):
    data = b'email;prenom\na@example.fr;Ann\nb@example.fr;"Bob\nc@example.fr;Cy\nd@example.fr;Di\n'
    result = cli("contacts", "import", write_bytes(cli, "c.csv", data), now=NOW)
    assert result.exit_code == 1, result.output
    assert "c.csv:3:" in result.output and "never closed" in result.output
    assert db(cli).contact_by_email("a@example.fr") is not None
    assert db(cli).contact_by_email("b@example.fr") is None
