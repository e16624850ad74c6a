"""Attachments (SPEC 14): in the received mail, bytes equal, DKIM verifies; confined to files/; failures per mail."""

from __future__ import annotations

import email
import os
from email import policy
from pathlib import Path

import dkim
import pytest
from dkim_support import dkim_key  # noqa: F401  (fixture)
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (the fixture)
from test_session_journeys import enrol, run

from edumail import attachments
from edumail.errors import InputError
from edumail.store import Store

CALENDAR = "id;formation;debut;fin;lieu\nEXCEL-1;Excel;14/12/2026 09:30;15/12/2026 17:00;Lyon\n"
SEQUENCE = """\
name: convocation
purpose: service
trigger: {event: inscription_finalisee}
steps:
  - at: session.start - 7d
    time: "09:00"
    send: convocation-test
"""
TEMPLATE = """\
---
subject: "Convocation {{ session.formation }}"
attachments:
  - programme.pdf
  - "convocations/{{ session.id }}/{{ contact.email }}.pdf"
---
<p>Votre convocation est jointe.</p>
"""
PROGRAMME = b"%PDF-1.4\n" + bytes(range(256)) * 40
PERSONAL = b"%PDF-1.4 convocation de Lea\n" + os.urandom(3000)


@pytest.fixture
def centre(cli, smtp_server: SmtpTestServer, dkim_key):  # noqa: F811
    key_path, _ = dkim_key
    settings = cli.root / "edumail.yaml"
    extra = smtp_server.settings_yaml() + (
        f"\ndkim:\n  selector: edu\n  domain: centre.example\n  private_key_file: {key_path}\n"
    )
    settings.write_text(settings.read_text(encoding="utf-8") + extra, encoding="utf-8")
    (cli.root / "templates" / "convocation-test.html").write_text(TEMPLATE, encoding="utf-8")
    (cli.root / "sequences" / "convocation.yaml").write_text(SEQUENCE, encoding="utf-8")
    (cli.root / "files" / "convocations" / "EXCEL-1").mkdir(parents=True)
    (cli.root / "files" / "programme.pdf").write_bytes(PROGRAMME)
    (cli.root / "files" / "convocations" / "EXCEL-1" / "lea@example.org.pdf").write_bytes(PERSONAL)
    (cli.root / "s.csv").write_text(CALENDAR, encoding="utf-8")
    assert cli("sessions", "import", str(cli.root / "s.csv"), now="2026-11-30T09:00:00+01:00").exit_code == 0
    run(cli, "2026-11-30T10:00:00+01:00")
    return cli


def test_attachments_arrive_byte_for_byte_and_dkim_verifies(centre, smtp_server: SmtpTestServer, dkim_key):  # noqa: F811
    enrol(centre, "lea@example.org")
    run(centre, "2026-12-07T09:00:00+01:00")
    [received] = smtp_server.messages
    parsed = email.message_from_bytes(received.data, policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    first = next(parsed.iter_parts())
    assert first.get_content_type() == "multipart/alternative"
    files = {part.get_filename(): part for part in parsed.iter_attachments()}
    assert set(files) == {"programme.pdf", "lea@example.org.pdf"}
    assert files["programme.pdf"].get_content_type() == "application/pdf"
    assert files["programme.pdf"].get_content() == PROGRAMME
    assert files["lea@example.org.pdf"].get_content() == PERSONAL
    _, record = dkim_key
    assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: record)
    # The proof kept for the audit: the SHA-256 of the bytes sent.
    store = Store(centre.root / "edumail.db")
    [sent] = store.rows("SELECT data FROM events WHERE name = 'email_sent'")
    assert '"sha256"' in sent["data"] and attachments.Attachment("x", "x", "", PERSONAL).sha256 in sent["data"]


def test_a_missing_personal_file_fails_that_mail_alone_with_the_path(centre, smtp_server: SmtpTestServer):  # noqa: F811
    enrol(centre, "lea@example.org")
    enrol(centre, "tom@example.org")  # no convocation PDF for Tom
    result = centre("run", "--once", now="2026-12-07T09:00:00+01:00")
    assert [m.rcpt_tos for m in smtp_server.messages] == [["lea@example.org"]]
    store = Store(centre.root / "edumail.db")
    [failed] = store.rows("SELECT last_error, state FROM mails WHERE state != 'sent'")
    assert failed["state"] == "failed"
    assert "files/convocations/EXCEL-1/tom@example.org.pdf does not exist" in failed["last_error"]
    assert result.exit_code == 1  # a mail failed: someone must look (SPEC 11)


def test_check_reports_a_missing_static_attachment(centre):
    (centre.root / "files" / "programme.pdf").unlink()
    result = centre("check")
    assert result.exit_code == 1
    assert "attachment files/programme.pdf does not exist" in result.output


def test_preview_lists_the_attachments(centre):
    result = centre("preview", "convocation-test", now="2026-12-01T10:00")
    assert "programme.pdf" in result.output


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("../edumail.yaml", "leaves files/"),
        ("/etc/passwd", "absolute path"),
        ("lien/secret.txt", "points outside files/"),
    ],
)
def test_paths_may_not_leave_files(tmp_path: Path, entry: str, message: str) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("x")
    (tmp_path / "files" / "lien").symlink_to(tmp_path / "outside")
    with pytest.raises(InputError, match=message):
        attachments.load(tmp_path, [entry])


def test_the_total_size_is_limited(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "gros.bin").write_bytes(b"x" * (1024 * 1024 + 1))
    with pytest.raises(InputError, match="over limits.attachments_mb"):
        attachments.load(tmp_path, ["gros.bin"], limit_mb=1)
    assert attachments.load(tmp_path, ["gros.bin"], limit_mb=2)[0].mime == "application/octet-stream"


def test_outbox_and_contacts_show_give_the_attachments_and_their_size(centre, smtp_server: SmtpTestServer):  # noqa: F811
    (centre.root / "files" / "convocations" / "EXCEL-1" / "ana@example.org.pdf").write_bytes(PERSONAL)
    for who in ("lea", "ana", "tom"):  # no convocation PDF for Tom
        enrol(centre, f"{who}@example.org")
    smtp_server.refuse("ana@example.org", "451 4.3.0 try again later", times=1)
    centre("run", "--once", now="2026-12-07T09:00:00+01:00")
    size = f"2 files, {round((len(PROGRAMME) + len(PERSONAL)) / 1024)} KB"
    outbox = centre("outbox", now="2026-12-07T09:01:00+01:00")
    assert outbox.exit_code == 0, outbox.output
    heads = [cell.strip() for cell in outbox.output.splitlines()[1].split("┃")]
    lines = [[cell.strip() for cell in line.split("│")] for line in outbox.output.splitlines() if "│" in line]
    rows = {cells[2]: cells[heads.index("attachments")] for cells in lines if cells[2]}
    assert rows == {
        "ana@example.org": size,  # queued for a retry: what it will carry
        "tom@example.org": "",  # failed: the why column says which file is missing
    }
    shown = centre("contacts", "show", "lea@example.org")
    assert shown.exit_code == 0, shown.output
    [line] = [line for line in shown.output.splitlines() if "mail convocation-test" in line]
    assert size in line


def test_sizes_read_as_people_count_them():
    assert attachments.show_size(900) == "900 B"
    assert attachments.show_size(348_160) == "340 KB"
    assert attachments.show_size(1_258_291) == "1.2 MB"
    assert attachments.summary([{"size": "1024"}]) == "1 file, 1 KB"
    assert attachments.summary([]) == ""
