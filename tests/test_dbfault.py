"""Database faults met during a run (issue 12): a damaged page, a full disk, a lock held too long.

Each fault is made real: bytes of the file overwritten, SQLite's own page
limit reached, a write transaction held by another process. The CLI runs as a
subprocess where the exit status and the absence of a traceback matter.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from journeys_support import SESSION_DATA, add_contact, event, install_library, open_project, run
from smtp_server import smtp_server  # noqa: F401  (fixture)


@pytest.fixture
def root(project_dir: Path) -> Path:
    install_library(project_dir)
    return project_dir


def queue(root: Path, count: int) -> None:
    """`count` reminders queued (engine only), due at 10:05."""
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    for n in range(count):
        cid = add_contact(project, f"learner{n:03d}@example.org", consent="unknown")
        event(project, cid, "inscription_finalisee", "2026-12-01T10:00", **SESSION_DATA)
    run(project, "2026-12-01T10:05")
    project.close()


def edumail(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    full.update({"EDUMAIL_NOW": "2026-12-01T10:06", "EDUMAIL_PROJECT": str(root)})
    full["EDUMAIL_SECRET"] = os.environ["EDUMAIL_SECRET"]
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "edumail", *args], env=full, capture_output=True, text=True, timeout=120
    )


def damage_table(path: Path, table: str) -> None:
    """Overwrite the b-tree header of the table's root page, as a bad disk sector or a torn copy would."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root_page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with path.open("r+b") as raw:
        raw.seek((root_page - 1) * page_size)
        raw.write(b"\x0d\xff\xff\xff\xff\xff\xff\xff" * 4)


def test_a_damaged_outbox_page_stops_the_run_with_exit_1_and_says_what_to_do(root: Path) -> None:
    queue(root, 40)
    damage_table(root / "edumail.db", "mails")
    done = edumail(root, "run", "--once")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert "damaged" in out and '.recover"' in out and "backup" in out
    assert "Delivery: 0 sent; delivery stopped: the database" in out  # the claim itself met the damage


# A disk that fills up while a mail is in flight. SQLite's `max_page_count` caps the file at its size
# when the command starts (set on every connection the subprocess opens, through sqlite3.connect: a
# stand-in for the disk, edumail itself untouched); the claim of a mail rewrites its row in place and
# fits, while recording it as sent must store its 120 tracked links in new pages: SQLITE_FULL right
# after the server accepted the mail, as on a real full disk.
FULL_DISK = """\
import os, runpy, sqlite3
_connect = sqlite3.connect
def connect(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    conn.execute("PRAGMA max_page_count = " + os.environ["TEST_MAX_PAGES"])
    return conn
sqlite3.connect = connect
runpy.run_module("edumail", run_name="__main__", alter_sys=True)
"""

LINKS = (
    "---\nsubject: Nos formations\n---\n<html><body>{}<p><a href='{{{{ unsubscribe_url }}}}'>x</a></p></body></html>\n"
)


def full_disk_project(root: Path, server_yaml: str) -> tuple[Path, list[int]]:
    from test_delivery_support import add_contacts, make_project
    from test_delivery_support import queue as queue_mails

    project = make_project(root, extra=server_yaml)
    anchors = "".join(
        f"<p><a href='https://centre.example/formation/{n:04d}/programme'>{n}</a></p>" for n in range(120)
    )
    (project.root / "templates" / "links.html").write_text(LINKS.format(anchors), encoding="utf-8")
    ids = queue_mails(project, add_contacts(project, 2), template="links")
    project.store().execute("VACUUM")  # no free page left inside the file: growing it is the only way
    project.close()
    return project.root, ids


def page_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("PRAGMA page_count").fetchone()
    conn.close()
    return int(count)


def test_a_full_disk_after_the_server_accepted_a_mail_never_leaves_it_sending(tmp_path: Path, smtp_server) -> None:  # noqa: ANN001, F811
    root, ids = full_disk_project(tmp_path / "centre", smtp_server.settings_yaml())
    database = root / "edumail.db"
    env = {"EDUMAIL_NOW": "2026-03-02T09:05:00Z", "TEST_MAX_PAGES": str(page_count(database))}
    full = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    full.update({"EDUMAIL_PROJECT": str(root), "EDUMAIL_SECRET": os.environ["EDUMAIL_SECRET"], **env})
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "run", "--once"], env=full, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert "disk is full" in out and "free" in out and str(root) in out
    assert len(smtp_server.messages) == 1  # the run stopped after the first mail: nothing more to record it in
    with sqlite3.connect(database) as conn:
        states = dict(conn.execute("SELECT id, state FROM mails"))
    conn.close()
    assert states == {ids[0]: "sent", ids[1]: "queued"}
    journal = root / ".edumail-journal"
    assert journal.exists() and journal.stat().st_mode & 0o777 == 0o600
    # Space is back: the next command's store open writes the rest of the record (links, email_sent).
    project = open_project(root)
    store = project.store()
    mail = store.mail(ids[0])
    assert mail is not None and mail["subject"] == "Nos formations" and len(json.loads(mail["links"])) == 120
    assert store.scalar("SELECT COUNT(*) FROM events WHERE name = 'email_sent' AND mail_id = ?", (ids[0],)) == 1
    assert not journal.exists()
    project.close()
    again = edumail(root, "run", "--once", env={"EDUMAIL_NOW": "2026-03-02T09:10:00Z"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(smtp_server.recipients()) == ["contact0@example.org", "contact1@example.org"]
