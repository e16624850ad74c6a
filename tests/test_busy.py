"""A write lock held by another process for too long (issue 12): a one-click unsubscribe is never
lost, and a command says the database is busy in one line.

The lock is real: another process opens the database and holds BEGIN IMMEDIATE until told to stop.
EDUMAIL_BUSY_TIMEOUT (seconds) shortens the usual 30 s wait so the tests stay short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tracking_support import BROWSER, LATER, SECRET, contact, events_named, sent_mail

from edumail import events, tokens
from edumail import project as project_module
from edumail.store import Store
from edumail.tracking import create_app

HOLD = """\
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another process holds the database's write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.fixture
def root(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDUMAIL_NOW", LATER.isoformat())
    monkeypatch.setenv("EDUMAIL_BUSY_TIMEOUT", "0.3")
    return project_dir


@pytest.fixture
def store(root: Path) -> Iterator[Store]:
    with Store(root / "edumail.db") as opened:
        yield opened


@pytest.fixture
def client(root: Path, store: Store) -> Iterator[TestClient]:
    app = create_app(project_module.load(root))
    with TestClient(app, headers={"User-Agent": BROWSER}, raise_server_exceptions=False) as test_client:
        yield test_client


def u(mail_id: int) -> str:
    return "/u/" + tokens.sign(SECRET, tokens.Token("u", mail_id))


def consent(store: Store, email: str) -> str:
    found = store.contact_by_email(email)
    assert found is not None
    return str(found["consent"])


def test_a_one_click_unsubscribe_during_a_long_lock_is_answered_and_kept_then_recorded(root, store, client):
    mail = sent_mail(store, contact(store, "lea@example.org"))
    other = sent_mail(store, contact(store, "paul@example.org"))
    journal = root / ".edumail-journal"
    with write_lock_held(root / "edumail.db"):
        response = client.post(u(mail), data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        assert "vous êtes désinscrit(e)" in response.text
        assert journal.exists() and journal.stat().st_mode & 0o777 == 0o600
        assert consent(store, "lea@example.org") == events.OPTED_IN  # not written yet: the lock is held
    # The lock is gone: serve's next request replays the journal before anything else.
    assert client.get(u(other)).status_code == 200
    assert consent(store, "lea@example.org") == events.OPTED_OUT
    (unsubscribed,) = events_named(store, events.UNSUBSCRIBED)
    assert json.loads(unsubscribed["data"])["method"] == "one-click"
    assert not journal.exists()


def test_the_journal_is_replayed_by_any_command_and_only_once(root, store, client):
    mail = sent_mail(store, contact(store, "lea@example.org"))
    with write_lock_held(root / "edumail.db"):
        assert client.post(u(mail), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    env = {k: v for k, v in os.environ.items() if k != "EDUMAIL_NOW"}
    env["EDUMAIL_PROJECT"] = str(root)
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "edumail", "outbox"], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert consent(store, "lea@example.org") == events.OPTED_OUT
    assert len(events_named(store, events.UNSUBSCRIBED)) == 1
    assert not (root / ".edumail-journal").exists()


def tag_under_a_long_lock(root: Path) -> subprocess.CompletedProcess[str]:
    """`edumail contacts tag lea@example.org vip` while another connection holds the write lock."""
    env = {**os.environ, "EDUMAIL_PROJECT": str(root)}
    with write_lock_held(root / "edumail.db"):
        return subprocess.run(
            [sys.executable, "-m", "edumail", "contacts", "tag", "lea@example.org", "vip"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )


def test_a_command_facing_a_long_lock_says_the_database_is_busy(root, store):
    contact(store, "lea@example.org")
    done = tag_under_a_long_lock(root)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "the database is busy: another edumail process" in done.stderr and "try again" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_busy_line_names_the_edumail_run_that_holds_a_lease(root, store):
    contact(store, "lea@example.org")
    store.execute(
        "INSERT INTO locks (name, owner, acquired_at, expires_at) VALUES ('run', 'cron-host:4242:abcd', ?, ?)",
        ("2026-11-02T09:00:00.000000Z", "2099-01-01T00:00:00.000000Z"),
    )
    done = tag_under_a_long_lock(root)
    assert done.returncode == 1
    assert "another edumail process (`run`, pid 4242 on cron-host) holds it" in done.stderr


def test_a_click_during_a_long_lock_still_leads_to_the_link(root, store, client):
    from tracking_support import LINKS

    mail = sent_mail(store, contact(store, "lea@example.org"))
    click = "/c/" + tokens.sign(SECRET, tokens.Token("c", mail, 1))
    pixel = "/o/" + tokens.sign(SECRET, tokens.Token("o", mail)) + ".gif"
    with write_lock_held(root / "edumail.db"):
        response = client.get(click, follow_redirects=False)
        assert response.status_code == 302 and response.headers["location"] == LINKS[1]
        assert client.get(pixel).status_code == 200


def test_another_page_during_a_long_lock_answers_503_with_retry_after(root, store, client):
    mail = sent_mail(store, contact(store, "lea@example.org"))
    assert client.post(u(mail), data={"scope": "all"}).status_code == 200
    with write_lock_held(root / "edumail.db"):
        response = client.post(u(mail), data={"action": "undo"})  # undone only once it can be written
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
