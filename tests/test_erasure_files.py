"""Issue 13 point 11, SPEC 20: after `contacts forget`, no byte of the person is left in any file of the
project (edumail.db, its -wal and -shm, outbox/, campaign audiences, journey log), with `edumail serve`
running as a real process that holds the database open before, during and after the erasure."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from ports import free_port
from serve_support import call, serving
from tracking_support import SECRET

NOW = "2026-12-01T10:00:00+01:00"  # a Tuesday morning, inside the shipped send window
ADDRESS = "zephyrine.quokkabel@example.org"
OTHER = "bertille.vonnegarde@example.org"
UA = "QuokkaBrowser/4.2 (marker-ua-7731)"
UNSUBSCRIBE_IP, FORM_IP = "203.0.113.149", "198.51.100.231"
# Every marker of the person: address, names, phone, city, a field read by a step, event data, the IPs and
# user agent of a form signup and of an unsubscribe (a click and an open are made with them too), a tag (its
# row is deleted) and a field over a page long (its overflow pages are freed).
MARKERS = [
    ADDRESS,
    "zephyrine.quokkabel",
    "Zephyrinex",
    "Quokkabel",
    "0647198253",
    "Vézelquorn",
    "rdv-qx71-pas-une-date",
    "note-evt-kq93",
    UNSUBSCRIBE_IP,
    FORM_IP,
    "marker-ua-7731",
    "tag-kq55",
    "long-note-" + "q" * 40,
]
OTHERS = [OTHER, "Bertillex", "Vonnegarde", "0611223344", "Orbandelle"]
LONG = "long-note-" + "q" * 6000  # a field longer than a page: it lives in overflow pages
CSV = (
    "email,prenom,nom,telephone,ville,rdv,tags,remarque,etape\n"
    f"{ADDRESS},Zephyrinex,Quokkabel,0647198253,Vézelquorn,rdv-qx71-pas-une-date,tag-kq55,{LONG},prospect\n"
    f"{OTHER},Bertillex,Vonnegarde,0611223344,Orbandelle,2026-12-20,,court,prospect\n"
)
# A step timed on a contact field that is not a date: the journey log gives the reason with the value.
SEQUENCE = """\
name: rappel-marqueur
purpose: service
trigger:
  event: demande_rappel
steps:
  - notify: equipe@centre.example
  - at: contact.rdv
    notify: equipe@centre.example
"""


def edumail(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    env.update(EDUMAIL_SECRET=SECRET.decode(), EDUMAIL_NOW=NOW, EDUMAIL_PROJECT=str(root))
    return subprocess.run(
        [sys.executable, "-m", "edumail", *args], env=env, capture_output=True, text=True, timeout=120
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def leftovers(root: Path, markers: list[str]) -> dict[str, list[str]]:
    """The markers found in each file under the project folder, read as bytes (whatever the case)."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        hits = [m for m in markers if _holds(data, m.lower().encode())]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def _holds(data: bytes, marker: bytes) -> bool:
    """An address is found whole (marie@... is not in annemarie@...); other markers anywhere."""
    if b"@" not in marker:
        return marker in data
    return re.search(rb"(?<![a-z0-9._%+-])" + re.escape(marker), data) is not None


def outbox_mail_to(root: Path, address: str) -> email.message.EmailMessage:
    for path in (root / "outbox").rglob("*.eml"):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address in str(mail["To"]) and mail["List-Unsubscribe"]:
            return mail
    raise AssertionError(f"no campaign mail to {address} in the outbox")


@pytest.fixture
def centre(tmp_path: Path) -> tuple[Path, int]:
    """A project from `init`, tracking served on a loopback port, a sequence timed on a contact field."""
    root, port = tmp_path / "centre", free_port()
    ok(edumail(tmp_path, "init", str(root)))
    settings = root / "edumail.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + f"tracking:\n  base_url: http://127.0.0.1:{port}\n", encoding="utf-8"
    )
    (root / "sequences" / "rappel-marqueur.yaml").write_text(SEQUENCE, encoding="utf-8")
    ok(edumail(root, "run", "--once"))  # sequences listen from now on
    return root, port


def test_forget_leaves_no_byte_of_the_person_in_any_file_while_serve_runs(centre, tmp_path):
    root, port = centre
    inputs = tmp_path / "inputs"  # the operator's own files, outside the project folder
    inputs.mkdir()
    (inputs / "contacts.csv").write_text(CSV, encoding="utf-8")
    (inputs / "lettre.md").write_text("# Décembre\n\n[Le calendrier](https://centre.example/cal)\n", encoding="utf-8")
    client = {"User-Agent": UA}
    with serving(root, port, {"EDUMAIL_SECRET": SECRET.decode(), "EDUMAIL_NOW": NOW}) as server:
        ok(edumail(root, "contacts", "import", str(inputs / "contacts.csv"), "--consent", "opted_in"))
        for who in (ADDRESS, OTHER):
            note = "note=note-evt-kq93" if who == ADDRESS else "note=x"
            ok(edumail(root, "event", who, "demande_rappel", "--data", note))
        form = urlencode({"email": ADDRESS, "first_name": "Zephyrinex", "consent": "oui", "topic_newsletter": "oui"})
        status, _ = call(
            port,
            "POST",
            "/f/newsletter",
            form.encode(),
            {**client, "X-Forwarded-For": FORM_IP, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200
        ok(edumail(root, "run", "--once"))  # staff alerts, the double opt-in mail, a step skipped with the field
        for name, who in (("lettre-ciblee", ADDRESS), ("lettre-autre", OTHER)):
            letter = ("--content", str(inputs / "lettre.md"))
            ok(edumail(root, "send", "newsletter", "--name", name, "--where", f"email={who}", *letter))
        html = outbox_mail_to(root, ADDRESS).get_body(("html",)).get_content()
        for kind in ("c", "o"):
            found = re.search(rf'http://127\.0\.0\.1:{port}(/{kind}/[^"\'\s>]+)', html)
            assert found, f"no /{kind}/ link in the campaign mail"
            hit = call(port, "GET", urlsplit(found.group(1)).path, None, {**client, "X-Forwarded-For": UNSUBSCRIBE_IP})
            assert hit[0] in (200, 302)
        unsubscribe = str(outbox_mail_to(root, ADDRESS)["List-Unsubscribe"]).split(">")[0].removeprefix("<")
        one_click = {**client, "X-Forwarded-For": UNSUBSCRIBE_IP, "Content-Type": "application/x-www-form-urlencoded"}
        assert call(port, "POST", urlsplit(unsubscribe).path, b"List-Unsubscribe=One-Click", one_click)[0] == 200
        before = leftovers(root, MARKERS)
        assert {m for hits in before.values() for m in hits} == set(MARKERS), before  # the test sees each one

        ok(edumail(root, "contacts", "forget", ADDRESS, "--yes"))

        assert leftovers(root, MARKERS) == {}
        assert server.poll() is None and call(port, "GET", "/healthz")[0] == 200
        exported = ok(edumail(root, "contacts", "export", OTHER))
        for marker in OTHERS:
            assert marker in exported, marker
        assert OTHER in str(outbox_mail_to(root, OTHER)["To"])  # the others' mails stay in the outbox
        assert call(port, "GET", "/healthz")[0] == 200
    assert "asked to be forgotten" in ok(edumail(root, "contacts", "import", str(inputs / "contacts.csv")))
    assert leftovers(root, MARKERS) == {}


# --- the parts one by one, in process -------------------------------------------------------------

SMALL = "email,prenom,nom,ville,etape\nmarie@example.fr,Mariequa,Dupontel,Lyonnex,prospect\n"
SMALL += "annemarie@example.fr,Anne,Autre,Paris,prospect\n"


def small(cli, now: str = "2026-11-20T10:00:00+00:00") -> None:
    path = cli.root.parent / "inscrits.csv"
    path.write_text(SMALL, encoding="utf-8")
    assert cli("contacts", "import", str(path), "--consent", "opted_in", now=now).exit_code == 0


def sent_file(cli, address: str, folder: str = "new", flags: str = "", number: int = 1) -> Path:
    """A mail to `address` in the outbox table and its .eml file, as the file transport writes them."""
    from edumail import clock
    from edumail.store import Store
    from edumail.transport.file import file_name

    with Store(cli.root / "edumail.db") as store:
        contact = store.contact_by_email(address)
        stamp = clock.parse_iso("2026-11-10T09:00:00", clock.UTC)
        message_id = f"<{address.split('@')[0]}-{number}@centre.example>"
        with store.transaction():
            mail = store.enqueue_mail(
                message_id=message_id,
                template="bienvenue",
                purpose="marketing",
                not_before=stamp,
                now=stamp,
                contact_id=contact["id"],
                context={},
            )
            store.mark_mail_sent(mail, stamp, "Bonjour", [])
    path = cli.root / "outbox" / folder / (file_name(message_id) + flags)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = base64.b64encode(b"Bonjour, votre dossier est complet.").decode()  # nothing readable but the To
    path.write_text(f"To: <{address}>\nContent-Transfer-Encoding: base64\n\n{body}\n", encoding="utf-8")
    return path


def test_every_store_connection_zeroes_what_it_deletes(tmp_path):
    """SPEC 20: secure_delete on (upstream SQLite leaves deleted bytes in free pages; some builds do not)."""
    from edumail.store import Store

    with Store(tmp_path / "edumail.db") as store:
        assert store.scalar("PRAGMA secure_delete") == 1


def test_a_database_written_before_secure_delete_is_rebuilt_once(cli):
    small(cli)
    db = cli.root / "edumail.db"
    old = sqlite3.connect(db)  # an older edumail on an upstream SQLite: deleted bytes stay in free space
    old.execute("PRAGMA secure_delete = OFF")
    old.execute("UPDATE contacts SET fields = ? WHERE email = 'marie@example.fr'", ('{"vieux": "' + "x" * 5000 + '"}',))
    old.execute("UPDATE contacts SET first_name = 'Ancienprenomkq' WHERE email = 'marie@example.fr'")
    old.execute("UPDATE contacts SET first_name = 'Mariequa', fields = '{}' WHERE email = 'marie@example.fr'")
    old.execute("DELETE FROM meta WHERE key = 'erasure.clean'")
    old.commit()
    old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    old.close()
    assert "Ancienprenomkq" in leftovers(cli.root, ["Ancienprenomkq"]).get("edumail.db", [])

    forgotten = cli("contacts", "forget", "marie@example.fr", "--yes")
    assert forgotten.exit_code == 0, forgotten.output
    assert "rebuilt once" in forgotten.output
    assert leftovers(cli.root, ["Ancienprenomkq", "x" * 200, "marie@example.fr", "Mariequa", "Lyonnex"]) == {}
    again = cli("contacts", "forget", "annemarie@example.fr", "--yes")
    assert again.exit_code == 0 and "rebuilt" not in again.output


def test_a_reader_keeping_the_wal_makes_forget_say_so_and_exit_1(cli, monkeypatch):
    from edumail import erasure

    small(cli)
    monkeypatch.setattr(erasure, "WAL_WAIT", 0.3)
    reader = sqlite3.connect(cli.root / "edumail.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM contacts").fetchone()  # a read transaction on the WAL, kept open
    try:
        result = cli("contacts", "forget", "marie@example.fr", "--yes")
        assert result.exit_code == 1
        assert "erasure not complete" in result.output and "still hold the erased data" in result.output
        assert "Traceback" not in result.output
        assert leftovers(cli.root, ["Mariequa"])  # the old pages, until the reader lets them go
    finally:
        reader.execute("COMMIT")
        reader.close()
    again = cli("contacts", "forget", "marie@example.fr", "--yes")
    assert again.exit_code == 1 and "already forgotten" in again.output
    assert leftovers(cli.root, ["marie@example.fr", "Mariequa", "Dupontel", "Lyonnex"]) == {}


def test_only_the_person_s_outbox_files_go_and_the_address_is_scrubbed_where_typed(cli):
    small(cli)
    # one still new, one moved to cur/ by a mail client that read it
    hers = [sent_file(cli, "marie@example.fr"), sent_file(cli, "marie@example.fr", "cur", ":2,S", number=2)]
    theirs = sent_file(cli, "annemarie@example.fr")
    assert cli("event", "annemarie@example.fr", "parrainage", "--data", "filleule=Marie@Example.fr").exit_code == 0
    result = cli("contacts", "forget", "marie@example.fr", "--yes")
    assert result.exit_code == 0, result.output
    assert "2 outbox file(s) deleted" in result.output
    assert not any(p.exists() for p in hers) and theirs.exists()
    assert leftovers(cli.root, ["marie@example.fr"]) == {}
    exported = cli("contacts", "export", "annemarie@example.fr").output
    assert '"filleule": "[erased]"' in exported and "annemarie@example.fr" in exported


def test_purge_deletes_the_outbox_files_of_the_purged(cli):
    small(cli, now="2022-06-01T10:00:00+00:00")
    files = [sent_file(cli, "marie@example.fr"), sent_file(cli, "annemarie@example.fr")]
    result = cli("purge", now="2026-11-20T10:00:00+00:00")
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in files)
    assert leftovers(cli.root, ["marie@example.fr", "Mariequa", "annemarie@example.fr"]) == {}


def test_the_operator_s_own_files_that_name_the_person_are_listed(cli):
    small(cli)
    (cli.root / "inscrits-novembre.csv").write_text(SMALL, encoding="utf-8")  # an import file kept in the project
    folder = cli.root / "files" / "convocations"
    folder.mkdir(parents=True)
    (folder / "marie@example.fr.pdf").write_bytes(b"%PDF-1.4 convocation")  # a per-person attachment
    (folder / "annemarie@example.fr.pdf").write_bytes(b"%PDF-1.4 convocation")
    result = cli("contacts", "forget", "marie@example.fr", "--yes")
    assert result.exit_code == 0, result.output  # edumail's own files are clean: the rest is the operator's part
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, result.output
    assert "inscrits-novembre.csv: still names marie@example.fr" in warnings[0]
    assert "marie@example.fr.pdf: still names marie@example.fr" in warnings[1]
    assert "delete it or remove the person from it" in warnings[1]


def test_a_sent_mail_kept_in_the_journal_does_not_bring_a_forgotten_person_back(cli):
    """A run whose record did not fit (full disk) kept it in .edumail-journal; the person is forgotten before
    it is replayed: the replay drops it, and the journal file goes."""
    from edumail import clock, journal
    from edumail.store import Store

    small(cli)
    sent_file(cli, "marie@example.fr")
    db = cli.root / "edumail.db"
    with Store(db) as store:
        mail = store.mails_of(store.contact_by_email("marie@example.fr")["id"])[0]
    assert cli("contacts", "forget", "marie@example.fr", "--yes").exit_code == 0
    at = clock.parse_iso("2026-11-10T09:00:00", clock.UTC)
    journal.keep_sent(db, mail, at, "Mariequa, votre dossier", [], {"note": "Lyonnex"})
    again = cli("contacts", "forget", "marie@example.fr", "--yes")
    assert again.exit_code == 1 and "already forgotten" in again.output
    assert not journal.pending(db)
    assert leftovers(cli.root, ["Mariequa", "Lyonnex"]) == {}
