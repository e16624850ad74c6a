"""`contacts import`: consent read per row (every cell x option combination) and stages edumail set are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli

from edumail.store import Store

NOW = "2026-11-20T10:00:00+01:00"
LATER = "2026-11-21T10:00:00+01:00"

# One row per (consent cell, basis cell).
ROWS = {
    "a@example.fr": ("", ""),
    "b@example.fr": ("", "customer"),
    "c@example.fr": ("opted_in", ""),
    "d@example.fr": ("opted_in", "customer"),
    "e@example.fr": ("unknown", ""),
    "f@example.fr": ("unknown", "customer"),
    "g@example.fr": ("opted_out", ""),
    "h@example.fr": ("opted_out", "customer"),
}
SKIP = "skipped"
OPTIONS = {
    "none": [],
    "in": ["--consent", "opted_in"],
    "in+professional": ["--consent", "opted_in", "--basis", "professional"],
    "unknown": ["--consent", "unknown"],
    "out": ["--consent", "opted_out"],
    "professional": ["--basis", "professional"],
}
IN, PRO, CUST = ("opted_in", "opt_in"), ("opted_in", "professional"), ("opted_in", "customer")
UNKNOWN, OUT = ("unknown", None), ("opted_out", None)
# What each new contact ends with: the cell wins, an empty cell falls back to the option.
EXPECTED = {
    #                none     in     in+professional unknown  out      professional
    "a@example.fr": (UNKNOWN, IN, PRO, UNKNOWN, OUT, UNKNOWN),
    "b@example.fr": (SKIP, CUST, CUST, SKIP, SKIP, SKIP),
    "c@example.fr": (IN, IN, PRO, IN, IN, PRO),
    "d@example.fr": (CUST, CUST, CUST, CUST, CUST, CUST),
    "e@example.fr": (UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN),
    "f@example.fr": (SKIP, SKIP, SKIP, SKIP, SKIP, SKIP),
    "g@example.fr": (OUT, OUT, OUT, OUT, OUT, OUT),
    "h@example.fr": (SKIP, SKIP, SKIP, SKIP, SKIP, SKIP),
}


def _csv(root: Path, header: str = "email;consentement;base") -> str:
    lines = [header] + [f"{email};{state};{basis}" for email, (state, basis) in ROWS.items()]
    path = root / "crm.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("option", list(OPTIONS))
def test_every_consent_cell_with_every_option(tmp_path, project_dir, option):
    cli = Cli(project_dir)
    result = cli("contacts", "import", _csv(project_dir), *OPTIONS[option], now=NOW)
    column = list(OPTIONS).index(option)
    skipped = [email for email, row in EXPECTED.items() if row[column] == SKIP]
    assert result.exit_code == (1 if skipped else 0), result.output  # a skipped row needs a look (SPEC 11)
    assert f"{len(skipped)} skipped" in result.output
    store = Store(project_dir / "edumail.db")
    for email, row in EXPECTED.items():
        contact = store.contact_by_email(email)
        if row[column] == SKIP:
            assert contact is None, email
            line = 2 + list(ROWS).index(email)
            assert f"crm.csv:{line}: basis 'customer' goes with consent opted_in" in result.output
            continue
        assert (contact["consent"], contact["consent_basis"]) == row[column], (email, option)
        proof = json.loads(store.consent_log(contact["id"])[-1]["proof"])
        assert proof["file"] == "crm.csv"
        assert ("column" in proof) == bool(ROWS[email][0] or ROWS[email][1]), (email, option)


def test_english_column_names_work_too(project_dir):
    cli = Cli(project_dir)
    path = project_dir / "c.csv"
    path.write_text("email,consent,basis\nx@example.fr,Opted_In,professional\n", encoding="utf-8")
    assert cli("contacts", "import", str(path), now=NOW).exit_code == 0
    contact = Store(project_dir / "edumail.db").contact_by_email("x@example.fr")
    assert (contact["consent"], contact["consent_basis"]) == PRO
    assert json.loads(contact["fields"]) == {}


def test_an_empty_cell_leaves_an_existing_contacts_consent_alone(project_dir):
    cli = Cli(project_dir)
    first = project_dir / "first.csv"
    first.write_text("email\nx@example.fr\n", encoding="utf-8")
    cli("contacts", "import", str(first), "--consent", "opted_in", "--basis", "customer", now=NOW)
    second = project_dir / "second.csv"
    second.write_text("email;consent\nx@example.fr;\n", encoding="utf-8")
    result = cli("contacts", "import", str(second), now=LATER)
    assert "1 unchanged" in result.output
    contact = Store(project_dir / "edumail.db").contact_by_email("x@example.fr")
    assert (contact["consent"], contact["consent_basis"]) == CUST


def test_a_cell_never_resubscribes_an_opted_out_contact(project_dir):
    cli = Cli(project_dir)
    path = project_dir / "c.csv"
    path.write_text("email;consent\nx@example.fr;opted_out\n", encoding="utf-8")
    cli("contacts", "import", str(path), now=NOW)
    path.write_text("email;consent\nx@example.fr;opted_in\n", encoding="utf-8")
    result = cli("contacts", "import", str(path), now=LATER)
    assert "1 kept opted out" in result.output
    assert Store(project_dir / "edumail.db").contact_by_email("x@example.fr")["consent"] == "opted_out"


def test_a_cell_that_is_not_a_consent_skips_its_row_with_the_line(project_dir):
    cli = Cli(project_dir)
    path = project_dir / "c.csv"
    path.write_text("email;consentement\nx@example.fr;oui\ny@example.fr;opted_in\n", encoding="utf-8")
    result = cli("contacts", "import", str(path), now=NOW)
    assert "c.csv:2: consent 'oui' is not one of opted_in, unknown, opted_out; row skipped" in result.output
    assert "1 created" in result.output and "1 skipped" in result.output


def test_basis_alone_without_a_consent_column_is_refused(project_dir):
    cli = Cli(project_dir)
    path = project_dir / "c.csv"
    path.write_text("email\nx@example.fr\n", encoding="utf-8")
    result = cli("contacts", "import", str(path), "--basis", "customer", now=NOW)
    assert result.exit_code == 1
    assert "--basis goes with --consent opted_in" in result.output
    assert Store(project_dir / "edumail.db").count_contacts() == 0


# --- stages ----------------------------------------------------------------------------

SEQUENCE = """\
trigger: {event: demande}
steps:
  - stage: lead
"""


def _crm(root: Path, stage: str) -> str:
    path = root / "crm.csv"
    path.write_text(f"email;etape\nx@example.fr;{stage}\n", encoding="utf-8")
    return str(path)


def _stage(root: Path) -> str:
    return Store(root / "edumail.db").contact_by_email("x@example.fr")["stage"]


@pytest.fixture
def promoted(project_dir):
    """Imported as prospect, then a sequence made the contact a lead."""
    (project_dir / "sequences" / "qualifier.yaml").write_text(SEQUENCE, encoding="utf-8")
    cli = Cli(project_dir)
    assert cli("contacts", "import", _crm(project_dir, "prospect"), now=NOW).exit_code == 0
    assert cli("run", "--once", now=NOW).exit_code == 0
    assert cli("event", "x@example.fr", "demande", now=NOW).exit_code == 0
    result = cli("run", "--once", now=NOW)
    assert result.exit_code == 0, result.output
    assert _stage(project_dir) == "lead"
    return cli


def test_reimporting_the_crm_file_keeps_the_stage_a_sequence_set(project_dir, promoted):
    result = promoted("contacts", "import", _crm(project_dir, "prospect"), now=LATER)
    assert result.exit_code == 0, result.output
    assert "1 stage kept as edumail set them since the last import (--overwrite-stage takes the file's)" in (
        " ".join(result.output.split())
    )
    assert _stage(project_dir) == "lead"
    again = promoted("contacts", "import", _crm(project_dir, "prospect"), now=LATER)
    assert "1 stage kept" in again.output and _stage(project_dir) == "lead"


def test_overwrite_stage_takes_the_files_stage(project_dir, promoted):
    result = promoted("contacts", "import", _crm(project_dir, "prospect"), "--overwrite-stage", now=LATER)
    assert "kept" not in result.output
    assert _stage(project_dir) == "prospect"


def test_a_new_stage_written_in_the_crm_wins(project_dir, promoted):
    result = promoted("contacts", "import", _crm(project_dir, "client"), now=LATER)
    assert "kept" not in result.output
    assert _stage(project_dir) == "client"


def test_a_stage_the_import_set_is_updated_by_the_next_import(project_dir):
    cli = Cli(project_dir)
    cli("contacts", "import", _crm(project_dir, "prospect"), now=NOW)
    result = cli("contacts", "import", _crm(project_dir, "lead"), now=LATER)
    assert "kept" not in result.output and _stage(project_dir) == "lead"


def test_a_stage_set_from_the_cli_before_any_import_is_kept(project_dir):
    cli = Cli(project_dir)
    cli("event", "x@example.fr", "demande", now=NOW)
    cli("contacts", "stage", "x@example.fr", "inscrit", now=NOW)
    result = cli("contacts", "import", _crm(project_dir, "prospect"), now=LATER)
    assert "1 stage kept" in result.output and _stage(project_dir) == "inscrit"
