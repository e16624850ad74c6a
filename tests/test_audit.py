"""`edumail audit` (SPEC 15): the figures checked against what the SMTP server received."""

from __future__ import annotations

import csv
import io

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (the fixture)
from test_session_journeys import NOTICE, SEQUENCE, TEMPLATE, enrol, run

from edumail.store import Store

CALENDAR = (
    "id;formation;debut;fin;lieu\n"
    "EXCEL-1;Excel;14/12/2026 09:30;15/12/2026 17:00;Lyon\n"
    "WORD-1;Word;16/12/2026 09:00;16/12/2026 17:00;Paris\n"
    "PPT-2027;PowerPoint;11/01/2027 09:00;11/01/2027 17:00;Paris\n"
)


@pytest.fixture
def centre(cli, smtp_server: SmtpTestServer):  # noqa: F811
    settings = cli.root / "edumail.yaml"
    settings.write_text(settings.read_text(encoding="utf-8") + smtp_server.settings_yaml(), encoding="utf-8")
    for name, label in (("convocation-test", "Convocation"), ("rappel-test", "Rappel"), ("chaud-test", "Eval")):
        (cli.root / "templates" / f"{name}.html").write_text(TEMPLATE.format(label=label), encoding="utf-8")
    (cli.root / "templates" / "annulee-test.html").write_text(TEMPLATE.format(label="Annul"), encoding="utf-8")
    (cli.root / "sequences" / "session.yaml").write_text(SEQUENCE, encoding="utf-8")
    (cli.root / "sequences" / "annulation.yaml").write_text(NOTICE, encoding="utf-8")
    (cli.root / "s.csv").write_text(CALENDAR, encoding="utf-8")
    assert cli("sessions", "import", str(cli.root / "s.csv"), now="2026-11-30T09:00:00+01:00").exit_code == 0
    run(cli, "2026-11-30T10:00:00+01:00")
    return cli


def test_audit_figures_match_what_the_server_received(centre, smtp_server: SmtpTestServer, tmp_path):  # noqa: F811
    for address in ("lea@example.org", "tom@example.org", "zoe@example.org"):
        enrol(centre, address, "EXCEL-1")
    enrol(centre, "max@example.org", "WORD-1")
    smtp_server.refuse("zoe@example.org", "550 5.1.1 No such user")
    run(centre, "2026-12-07T09:00:00+01:00")  # Excel convocations (zoe's bounces)
    run(centre, "2026-12-09T09:00:00+01:00")  # Word convocation
    run(centre, "2026-12-13T09:30:00+01:00")  # Excel reminders
    for address, name in (
        ("lea@example.org", "present"),
        ("tom@example.org", "present"),
        ("zoe@example.org", "absent"),
    ):
        assert (
            centre("event", address, name, "--data", "session=EXCEL-1", now="2026-12-14T12:00:00+01:00").exit_code == 0
        )
    centre(
        "event",
        "lea@example.org",
        "evaluation_completee",
        "--data",
        "session=EXCEL-1",
        "--data",
        "note=8",
        now="2026-12-16T10:00:00+01:00",
    )
    out = tmp_path / "preuves"
    result = centre("audit", "--from", "2026-12-01", "--until", "2027-01-01", "--out", str(out), now="2026-12-20T10:00")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO((out / "audit.csv").read_text(encoding="utf-8-sig")), delimiter=";"))
    received = {(r.rcpt_tos[0], r.message["Message-ID"]) for r in smtp_server.messages}
    sent_rows = {(r["email"], r["message_id"]) for r in rows if r["envoye"] and r["envoye"][0].isdigit()}
    assert sent_rows == received  # every mail the server got is in the audit, and only those
    assert {r["session"] for r in rows} == {"EXCEL-1", "WORD-1"}  # PPT-2027 starts after the period
    zoe = [r for r in rows if r["email"] == "zoe@example.org"]
    assert zoe[0]["distribution"].startswith("rebond (hard)") and "5.1.1" in zoe[0]["reponse_serveur"]
    lea = [r for r in rows if r["email"] == "lea@example.org"]
    assert [r["mail"] for r in lea] == ["convocation-test", "rappel-test"]
    assert lea[0]["evaluation_completee"] == "16/12/2026 10:00" and lea[0]["note"] == "8"
    assert lea[0]["presence"] == "présent"
    html = " ".join((out / "audit.html").read_text(encoding="utf-8").split())
    assert '<html lang="fr">' in html and "Session EXCEL-1 – Excel" in html
    # Excel: 2 present learners expected, 1 answered; Word: nobody marked, 1 expected, none answered.
    assert "1 réponse(s) sur 2 attendue(s), taux 50 %, note moyenne 8,0 / 10" in html
    assert "1 réponse(s) sur 3 apprenant(s) attendu(s)" in html
    summary = centre("audit", "--session", "EXCEL-1", now="2026-12-20T10:00")
    assert summary.exit_code == 0 and "1/2" in summary.output and "50%" in summary.output


def test_a_learner_without_mail_is_a_missing_proof(centre, tmp_path):
    enrol(centre, "late@example.org", "PPT-2027", at="2027-01-10T10:00:00+01:00")
    out = tmp_path / "a"
    result = centre("audit", "--contact", "late@example.org", "--out", str(out), now="2027-01-10T11:00")
    assert result.exit_code == 0, result.output
    text = (out / "audit.csv").read_text(encoding="utf-8-sig")
    assert "aucun mail (manquant)" in text
    assert "Aucun mail envoyé à cet apprenant pour cette session (manquant)" in (out / "audit.html").read_text("utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one of --session ID, --contact EMAIL, or --from ISO --until ISO"),
        (("--session", "NOPE"), "no session 'NOPE'"),
        (("--from", "2026-12-01"), "a period needs both --from and --until"),
        (("--from", "2026-12-01", "--until", "2026-11-01"), "--until must come after --from"),
        (("--contact", "nobody@example.org"), "no contact"),
    ],
)
def test_audit_mistakes_are_one_line(centre, args, message):
    result = centre("audit", *args, now="2026-12-20T10:00")
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_the_store_keeps_what_the_audit_reads(centre):
    enrol(centre, "lea@example.org", "EXCEL-1")
    run(centre, "2026-12-07T09:00:00+01:00")
    store = Store(centre.root / "edumail.db")
    [mail] = store.session_mails("EXCEL-1")
    assert mail["state"] == "sent" and mail["sent_at"] is not None


def test_a_queued_reminder_is_retimed_when_the_session_moves(centre, smtp_server: SmtpTestServer):  # noqa: F811
    enrol(centre, "lea@example.org", "EXCEL-1")
    smtp_server.reply_to_data("451 4.3.0 try again later", times=None)
    centre("run", "--once", now="2026-12-07T09:00:00+01:00")  # the convocation is deferred: still queued
    store = Store(centre.root / "edumail.db")
    [queued] = store.rows("SELECT id, state FROM mails")
    assert queued["state"] == "queued"
    smtp_server.reply_to_data("250 OK", times=0)
    moved = centre(
        "sessions", "set", "EXCEL-1", "start=2027-01-18T09:30", "end=2027-01-19T17:00", now="2026-12-07T10:00"
    )
    assert moved.exit_code == 0, moved.output
    centre("run", "--once", now="2026-12-07T10:10:00+01:00")
    [mail] = Store(centre.root / "edumail.db").rows("SELECT state, not_before FROM mails")
    assert mail["state"] == "queued"
    assert mail["not_before"].isoformat() == "2027-01-11T08:00:00+00:00"  # 7 days before, 09:00 Paris


def test_a_cancelled_session_expects_no_evaluation(centre, tmp_path):
    enrol(centre, "zoe@example.org", "WORD-1")
    result = centre("sessions", "cancel", "WORD-1", "--reason", "formateur malade", now="2026-12-02T10:00:00+01:00")
    assert result.exit_code == 0, result.output
    out = tmp_path / "a"
    result = centre("audit", "--session", "WORD-1", "--out", str(out), now="2027-01-20T10:00")
    assert result.exit_code == 0, result.output
    html = " ".join((out / "audit.html").read_text(encoding="utf-8").split())
    assert "0 réponse(s) sur 0 attendue(s)" in html and "annulée (formateur malade)" in html
    assert "évaluation sans objet (session annulée)" in html
    # A learner with no name shows the address once.
    assert "<b>zoe@example.org</b> – présence" in html
