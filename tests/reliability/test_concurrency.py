# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Concurrency: a daemon and two cron `run --once` on one project through a simulated week.

The daemon reads the clock at each tick, so it cannot follow a simulated week
on its own: at each simulated moment the test starts a daemon with
EDUMAIL_NOW set to that moment, alongside two cron runs at the same moment,
all three racing for the same due work; once the daemon has done a run of
its own it is stopped with SIGTERM and must exit cleanly. Events arrive while
they run (as from the events API). At the end, the SMTP server has no mail
twice and the store has every expected mail once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import NOW, add_contacts, make_project, queue

from edumail import clock, contacts
from edumail.project import Project
from edumail.store import Store

from .support import received, spawned  # noqa: F401  (fixture)

PARIS = clock.zone("Europe/Paris")
START = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)  # Monday 09:00 in Paris
STEP = timedelta(hours=12)  # 09:00 and 21:00 local
STEPS = 15  # to the next Monday 09:00
CAMPAIGN_STEP = 5  # Wednesday 21:00: a campaign is sent while the runs go on
CONTACTS = 24
WAIT = 60  # seconds: the bound on every process wait

WELCOME = """\
---
subject: "Bienvenue {{ contact.first_name }}"
---
<p>Bonjour {{ contact.first_name }}, bienvenue.</p>
"""
REMINDER = """\
---
subject: "{{ contact.first_name }}, votre inscription"
---
<p>Bonjour {{ contact.first_name }}, avez-vous des questions ?</p>
"""
NEWS = """\
---
subject: "Les nouvelles du centre"
---
<p>Bonjour {{ contact.first_name }}, voici nos nouvelles.</p>
<p><a href="{{ unsubscribe_url }}">Se désinscrire</a></p>
"""
PROMO = NEWS.replace("Les nouvelles du centre", "Offre de printemps")
WEEK = """\
purpose: service
trigger: {event: inscription}
steps:
  - send: bienvenue
  - id: relance
    wait: 1d
    send: relance
  - id: veille
    wait: 2d
    time: "09:00"
    send: relance
"""
NEWSLETTER = """\
reenter: true
trigger: {schedule: "0 9 * * mon,wed,fri"}
audience: {tags: [newsletter]}
steps:
  - send: nouvelles
"""
SEND_TIMES = {  # template -> mails expected over the week
    "bienvenue": CONTACTS,
    "relance": 2 * CONTACTS,
    "nouvelles": 3 * CONTACTS,
    "promo": CONTACTS,
}


def _project(root: Path, server: SmtpTestServer) -> Project:
    project = make_project(root, extra=server.settings_yaml(concurrency=2) + "limits: {marketing_per_week: 5}\n")
    for name, text in (("bienvenue", WELCOME), ("relance", REMINDER), ("nouvelles", NEWS), ("promo", PROMO)):
        (root / "templates" / f"{name}.html").write_text(text, encoding="utf-8")
    (root / "sequences" / "semaine.yaml").write_text(WEEK, encoding="utf-8")
    (root / "sequences" / "newsletter.yaml").write_text(NEWSLETTER, encoding="utf-8")
    add_contacts(project, CONTACTS, tags=["newsletter"])
    return project


def _start(
    spawned: list[subprocess.Popen[bytes]], root: Path, now: datetime, *args: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`edumail --project ROOT ARGS` at that EDUMAIL_NOW; output to `log`, else a pipe."""
    env = {**os.environ, "EDUMAIL_NOW": now.isoformat()}
    command = [sys.executable, "-m", "edumail", "--project", str(root), *args]
    if log is None:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    else:
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    spawned.append(process)
    return process


def _wait_for_text(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float = WAIT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8", errors="replace")
        if text in content or process.poll() is not None:
            return content
        time.sleep(0.05)
    return path.read_text(encoding="utf-8", errors="replace")


def _inscriptions(at: datetime, until: datetime) -> list[tuple[int, datetime]]:
    """(contact number, time) of the `inscription` events in [at, until): one every 3 hours from the start."""
    spacing = timedelta(hours=3)
    return [(n, START + n * spacing) for n in range(CONTACTS) if at <= START + n * spacing < until]


def _twice(store: Store, rows: str, key: str) -> list[dict]:
    return store.rows(f"SELECT {key}, COUNT(*) AS n FROM {rows} GROUP BY {key} HAVING n > 1")


def _wait_for_sending(store: Store, server: SmtpTestServer) -> tuple[str, str]:
    """(Message-ID, recipient) of the mail on the wire right now: the server took its RCPT TO, not yet its
    message. (The worker may hold the next mail too, 'sending' but not handed over.)"""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        with server.lock:
            wire = server.accepted_rcpt[len(server.messages) :]
        if wire:
            found = store.row(
                "SELECT m.message_id, c.email FROM mails m JOIN contacts c ON c.id = m.contact_id"
                " WHERE m.state = 'sending' AND c.email = ?",
                (wire[0],),
            )
            if found:
                return str(found["message_id"]), str(found["email"])
        time.sleep(0.01)
    raise AssertionError("no mail was ever in flight")


def _stop_daemon(daemon: subprocess.Popen[bytes], log: Path) -> str:
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=WAIT)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=WAIT)
    return log.read_text(encoding="utf-8", errors="replace")


@pytest.mark.slow
def test_a_daemon_and_two_cron_runs_through_a_week_send_no_mail_twice(tmp_path, smtp_server, spawned):
    root = tmp_path / "centre"
    project = _project(root, smtp_server)
    smtp_server.delay = 0.005  # a little time per mail, so the runs overlap while delivering
    ids = [r["id"] for r in project.store().rows("SELECT id FROM contacts ORDER BY id")]

    for step in range(STEPS):
        now = START + step * STEP
        log = tmp_path / f"daemon-{step}.log"
        daemon = _start(spawned, root, now, "run", "--daemon", "--interval", "1", log=log)
        crons = [_start(spawned, root, now, "run", "--once") for _ in range(2)]
        if step == CAMPAIGN_STEP:
            crons.append(_start(spawned, root, now, "send", "promo", "--tag", "newsletter"))
        # Events arrive meanwhile (the events API would record them): this run or the next one enrols them.
        for n, at in _inscriptions(now - STEP, now):
            contacts.record_event(project.store(), ids[n], "inscription", at=at, data={}, source="api", now=now)
        for cron in crons:
            output = cron.communicate(timeout=WAIT)[0].decode()
            assert cron.returncode == 0, f"{now}: {output}"
        _wait_for_text(log, " run: entered", daemon)
        output = _stop_daemon(daemon, log)
        assert daemon.returncode == 0, f"{now}: {output}"
        assert " run: entered" in output and "edumail daemon: stopped" in output, f"{now}: {output}"
        assert "Traceback" not in output and "failed unexpectedly" not in output, output

    got = received(smtp_server)
    every_id = [mid for ids_ in got.values() for mid in ids_]
    twice = [mid for mid, n in Counter(every_id).items() if n > 1]
    assert twice == [], f"received twice: {twice}"

    store = Store(root / "edumail.db")
    try:
        mails = store.rows("SELECT m.*, c.email FROM mails m JOIN contacts c ON c.id = m.contact_id")
        assert Counter(m["state"] for m in mails) == {"sent": len(mails)}
        assert Counter(m["template"] for m in mails) == SEND_TIMES
        assert sorted(every_id) == sorted(m["message_id"] for m in mails)
        for mail in mails:
            assert got[mail["email"]].count(mail["message_id"]) == 1
        # The store's own guarantees (UNIQUE keys), checked rather than assumed.
        assert _twice(store, "journeys", "sequence, contact_id, trigger_key") == []
        assert _twice(store, "journey_log WHERE outcome = 'sent'", "journey_id, step_id") == []
        assert _twice(store, "events WHERE name = 'email_sent'", "mail_id") == []
        completed = store.scalar("SELECT COUNT(*) FROM journeys WHERE sequence = 'semaine' AND state = 'completed'")
        assert completed == CONTACTS
        assert store.rows("SELECT * FROM locks") == []
    finally:
        store.close()


def test_sigterm_stops_the_daemon_after_the_mail_in_flight(tmp_path, smtp_server, spawned):
    root = tmp_path / "centre"
    project = make_project(root, extra=smtp_server.settings_yaml(concurrency=1))
    queue(project, add_contacts(project, 20))
    project.close()
    smtp_server.delay = 0.3  # each mail takes a while: SIGTERM lands while one is in DATA
    log = tmp_path / "daemon.log"
    daemon = _start(spawned, root, NOW, "run", "--daemon", "--interval", "1", log=log)
    store = Store(root / "edumail.db")
    try:
        try:
            assert smtp_server.wait_for(3, timeout=WAIT), log.read_text()
            in_flight, recipient = _wait_for_sending(store, smtp_server)
        finally:
            output = _stop_daemon(daemon, log)
        assert daemon.returncode == 0, output
        assert "received SIGTERM: stopping after the mail in flight" in output
        assert output.rstrip().endswith("edumail daemon: stopped"), output

        # The mail in flight was finished and recorded; the others wait in the queue, none half-sent.
        assert store.scalar("SELECT state FROM mails WHERE message_id = ?", (in_flight,)) == "sent"
        counts = store.outbox_counts()
        assert "sending" not in counts
        assert counts["sent"] == len(smtp_server.messages) and 4 <= counts["sent"] < 20
        assert counts["queued"] == 20 - counts["sent"]
        assert store.rows("SELECT * FROM locks") == []
    finally:
        store.close()

    smtp_server.delay = 0.0
    rest = _start(spawned, root, NOW, "run", "--once")
    output = rest.communicate(timeout=WAIT)[0].decode()
    assert rest.returncode == 0, output
    got = received(smtp_server)
    assert sorted(got) == sorted(f"contact{n}@example.org" for n in range(20))
    assert all(len(ids) == 1 for ids in got.values()), got
    assert got[recipient] == [in_flight]
