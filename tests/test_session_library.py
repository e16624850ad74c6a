"""The shipped session library (issue 14) end to end on a fresh `edumail init` project: convocation with its
attachments, a moved and a cancelled session, absence, the evaluation loop, the cold evaluation to those present."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
from conftest import Cli
from typer.testing import CliRunner

from edumail.cli import app
from edumail.store import Store

CALENDAR = (
    "id;formation;debut;fin;lieu;convocation;lien_enquete\n"
    "EXCEL-1;Excel perfectionnement;14/12/2026 09:30;15/12/2026 17:00;Lyon;convocations/EXCEL-1;"
    "https://centre.example/avis\n"
    "WORD-1;Word;11/01/2027 09:00;11/01/2027 17:00;Paris;;\n"
)
MOVED = "2026-12-08T09:55:00+01:00"
PERSONAL = b"%PDF-1.4 convocation nominative de Lea\n"


@pytest.fixture
def centre(tmp_path: Path) -> Cli:
    root = tmp_path / "centre"
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    cli = Cli(root)
    (root / "files" / "convocations" / "EXCEL-1").mkdir(parents=True)
    (root / "files" / "convocations" / "EXCEL-1" / "lea@example.org.pdf").write_bytes(PERSONAL)
    (root / "files" / "convocations" / "EXCEL-1" / "tom@example.org.pdf").write_bytes(PERSONAL + b"tom")
    (root / "sessions.csv").write_text(CALENDAR, encoding="utf-8")
    assert cli("sessions", "import", str(root / "sessions.csv"), now="2026-11-30T09:00:00+01:00").exit_code == 0
    checked = cli("check")
    assert checked.exit_code == 0, checked.output
    run(cli, "2026-11-30T10:00:00+01:00")
    return cli


def run(cli: Cli, now: str) -> None:
    result = cli("run", "--once", now=now)
    assert result.exit_code == 0, result.output


def record(cli: Cli, address: str, name: str, session: str, at: str, *data: str) -> None:
    args = ["event", address, name, "--data", f"session={session}"]
    for item in data:
        args += ["--data", item]
    result = cli(*args, now=at)
    assert result.exit_code == 0, result.output


def sent(cli: Cli, *sequences: str) -> list[tuple[str, str, str]]:
    """(sequence, step, address) of every mail sent by the given sequences, in order."""
    rows = Store(cli.root / "edumail.db").rows(
        "SELECT j.sequence, m.step_id, c.email FROM mails m JOIN contacts c ON c.id = m.contact_id"
        " JOIN journeys j ON j.id = m.journey_id WHERE m.state = 'sent' ORDER BY m.id"
    )
    return [(r["sequence"], r["step_id"], r["email"]) for r in rows if r["sequence"] in sequences]


def plain(mail: email.message.EmailMessage) -> str:
    return mail.get_body(("plain",)).get_content()


def received(cli: Cli, address: str, subject_start: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted((cli.root / "outbox").rglob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if address in str(parsed["To"]) and str(parsed["Subject"]).startswith(subject_start):
            found.append(parsed)
    return found


def test_the_session_library_follows_the_calendar(centre):
    for address, session in (
        ("lea@example.org", "EXCEL-1"),
        ("tom@example.org", "EXCEL-1"),
        ("ana@example.org", "WORD-1"),
    ):
        record(centre, address, "inscription_finalisee", session, "2026-12-01T10:00:00+01:00")
    run(centre, "2026-12-01T10:05:00+01:00")

    # The convocation: 7 days before, at 9:00, with the programme, the rules and the learner's own convocation.
    run(centre, "2026-12-07T08:59:00+01:00")
    assert sent(centre, "convocation") == []
    run(centre, "2026-12-07T09:00:00+01:00")
    assert sent(centre, "convocation") == [
        ("convocation", "convocation", "lea@example.org"),
        ("convocation", "convocation", "tom@example.org"),
    ]
    [mail] = received(centre, "lea@example.org", "Votre convocation")
    assert str(mail["Subject"]) == "Votre convocation : Excel perfectionnement, le lundi 14 décembre"
    files = {part.get_filename(): part.get_content() for part in mail.iter_attachments()}
    assert set(files) == {"programme.pdf", "reglement-interieur.pdf", "lea@example.org.pdf"}
    assert files["programme.pdf"] == (centre.root / "files" / "programme.pdf").read_bytes()
    assert files["lea@example.org.pdf"] == PERSONAL

    # WORD-1 moves: one notice (the start moved), then it is cancelled: the notice, and no convocation ever.
    moved = centre("sessions", "set", "WORD-1", "start=18/01/2027 09:00", "end=18/01/2027 17:00", now=MOVED)
    assert moved.exit_code == 0, moved.output
    run(centre, "2026-12-08T10:00:00+01:00")
    assert sent(centre, "changement-de-date") == [("changement-de-date", "changement-de-date", "ana@example.org")]
    [notice] = received(centre, "ana@example.org", "Nouvelle date")
    assert "lundi 18\u00a0janvier 2027" in notice.get_body(("plain",)).get_content()
    cancelled = centre("sessions", "cancel", "WORD-1", "--reason", "formatrice malade", now="2026-12-09T10:00:00+01:00")
    assert cancelled.exit_code == 0, cancelled.output
    run(centre, "2026-12-09T10:05:00+01:00")
    assert sent(centre, "session-annulee") == [("session-annulee", "session-annulee", "ana@example.org")]
    [notice] = received(centre, "ana@example.org", "Annulation")
    assert "Motif\u00a0: formatrice malade." in notice.get_body(("plain",)).get_content()

    # Attendance: Lea present, Tom absent (asked for a justification, the team alerted).
    record(centre, "lea@example.org", "present", "EXCEL-1", "2026-12-14T10:00:00+01:00")
    record(centre, "tom@example.org", "absent", "EXCEL-1", "2026-12-14T10:00:00+01:00", "date=2026-12-14")
    run(centre, "2026-12-14T10:05:00+01:00")
    absence = sent(centre, "absence")
    assert [address for _, _, address in absence] == ["tom@example.org", "tom@example.org"]  # his mail, the alert
    assert absence[1][1].endswith(":notify")
    [alert] = received(centre, "contact@centre.example", "")
    assert "tom@example.org" in alert.get_body(("plain",)).get_content()
    [asked] = received(centre, "tom@example.org", "Votre absence")
    assert "le lundi 14\u00a0décembre 2026" in asked.get_body(("plain",)).get_content()

    # The hot evaluation: the last day at 17:00, reminders after 2 and 5 days until evaluation_completee.
    run(centre, "2026-12-15T16:59:00+01:00")
    assert sent(centre, "evaluation-a-chaud") == []
    run(centre, "2026-12-15T17:00:00+01:00")
    run(centre, "2026-12-17T17:00:00+01:00")
    record(centre, "lea@example.org", "evaluation_completee", "EXCEL-1", "2026-12-18T10:00:00+01:00", "note=9")
    run(centre, "2026-12-18T10:05:00+01:00")
    run(centre, "2026-12-21T08:00:00+01:00")  # Sunday 17:00 waited for the send window
    run(centre, "2026-12-28T09:00:00+01:00")
    assert sent(centre, "evaluation-a-chaud") == [
        ("evaluation-a-chaud", "evaluation", "lea@example.org"),
        ("evaluation-a-chaud", "evaluation", "tom@example.org"),
        ("evaluation-a-chaud", "relance-1", "lea@example.org"),
        ("evaluation-a-chaud", "relance-1", "tom@example.org"),
        ("evaluation-a-chaud", "relance-2", "tom@example.org"),
    ]

    # The cold evaluation: 90 days after the end, to those present only, one reminder.
    run(centre, "2027-01-11T09:00:00+01:00")
    assert sent(centre, "convocation", "evaluation-a-froid") == [
        ("convocation", "convocation", "lea@example.org"),
        ("convocation", "convocation", "tom@example.org"),
    ]
    run(centre, "2027-03-15T09:00:00+01:00")
    run(centre, "2027-03-22T09:00:00+01:00")
    run(centre, "2027-04-05T09:00:00+01:00")
    assert sent(centre, "evaluation-a-froid") == [
        ("evaluation-a-froid", "evaluation-froid", "lea@example.org"),
        ("evaluation-a-froid", "relance-froid", "lea@example.org"),
    ]


def test_rappel_session_and_its_survey_hang_on_the_session(centre):
    """The library's rappel-session is a session journey: a moved session re-times the reminder and the survey,
    a cancelled one ends them; the confirmation, the reminder and the survey read the session."""
    record(centre, "lea@example.org", "inscription_finalisee", "EXCEL-1", "2026-12-01T10:00:00+01:00")
    record(centre, "ana@example.org", "inscription_finalisee", "WORD-1", "2026-12-01T10:00:00+01:00")
    run(centre, "2026-12-01T10:05:00+01:00")
    [confirmation] = received(centre, "lea@example.org", "Inscription confirmée")
    assert str(confirmation["Subject"]) == "Inscription confirmée : Excel perfectionnement"
    assert "lundi 14\u00a0décembre 2026\u00a0à\u00a09h30" in confirmation.get_body(("plain",)).get_content()

    # EXCEL-1 moves two days later: the reminder and the survey follow; WORD-1 is cancelled: neither goes.
    moved = centre("sessions", "set", "EXCEL-1", "start=16/12/2026 09:30", "end=17/12/2026 17:00", now=MOVED)
    assert moved.exit_code == 0, moved.output
    cancelled = centre("sessions", "cancel", "WORD-1", now=MOVED)
    assert cancelled.exit_code == 0, cancelled.output
    run(centre, "2026-12-08T10:00:00+01:00")
    run(centre, "2026-12-13T09:30:00+01:00")  # the old reminder time
    assert sent(centre, "rappel-session") == [
        ("rappel-session", "confirmation-inscription", "lea@example.org"),
        ("rappel-session", "confirmation-inscription", "ana@example.org"),
    ]
    run(centre, "2026-12-15T09:30:00+01:00")
    [reminder] = received(centre, "lea@example.org", "Votre formation commence")
    assert str(reminder["Subject"]) == "Votre formation commence le mercredi 16 décembre à 9h30"
    run(centre, "2026-12-17T09:00:00+01:00")  # the old survey time
    assert "enquete-satisfaction" not in [step for _, step, _ in sent(centre, "rappel-session")]
    run(centre, "2026-12-18T09:00:00+01:00")
    [survey] = [m for m in received(centre, "lea@example.org", "Votre avis") if "terminée le" in plain(m)]
    assert "terminée le jeudi 17\u00a0décembre 2026" in plain(survey) and "https://centre.example/avis" in plain(survey)
    run(centre, "2027-01-12T09:00:00+01:00")
    assert [step for _, step, address in sent(centre, "rappel-session") if address == "ana@example.org"] == [
        "confirmation-inscription"
    ]
    journeys = Store(centre.root / "edumail.db").rows(
        "SELECT session_id, state, end_reason FROM journeys WHERE sequence = 'rappel-session' ORDER BY id"
    )
    assert [tuple(j.values()) for j in journeys] == [
        ("EXCEL-1", "completed", "all steps done"),
        ("WORD-1", "exited", "session cancelled"),
    ]


def test_the_satisfaction_survey_is_not_sent_to_who_completed_the_evaluation(centre):
    record(centre, "lea@example.org", "inscription_finalisee", "EXCEL-1", "2026-12-01T10:00:00+01:00")
    record(centre, "tom@example.org", "inscription_finalisee", "EXCEL-1", "2026-12-01T10:00:00+01:00")
    run(centre, "2026-12-15T17:00:00+01:00")  # the hot evaluation
    record(centre, "lea@example.org", "evaluation_completee", "EXCEL-1", "2026-12-15T18:00:00+01:00", "note=8")
    run(centre, "2026-12-16T09:00:00+01:00")
    surveys = [address for _, step, address in sent(centre, "rappel-session") if step == "enquete-satisfaction"]
    assert surveys == ["tom@example.org"]
