"""`edumail run --once / --daemon`: the summary, dry runs, bad input, the lock, no double send."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from journeys_support import (
    SESSION_DATA,
    T,
    add_contact,
    event,
    install_library,
    mails,
    open_project,
    run,
    write_sequence,
)

from edumail import runner
from edumail.store import Store


@pytest.fixture
def root(project_dir: Path) -> Path:
    install_library(project_dir)
    return project_dir


def enrol(root: Path, count: int, at: str = "2026-12-01T10:00") -> None:
    project = open_project(root)
    run(project, "2026-12-01T08:00")
    for n in range(count):
        cid = add_contact(project, f"learner{n:03d}@example.org", consent="unknown")
        event(project, cid, "inscription_finalisee", at, **SESSION_DATA)
    project.close()


def outbox_files(root: Path) -> list[Path]:
    return sorted((root / "outbox").rglob("*.eml"))


def test_run_needs_once_or_daemon(cli) -> None:  # noqa: ANN001
    result = cli("run")
    assert result.exit_code == 1
    assert "choose one: `edumail run --once` (for cron) or `edumail run --daemon" in result.output


def test_run_once_enrols_queues_delivers_and_summarises(root: Path, cli) -> None:  # noqa: ANN001
    enrol(root, 2)
    result = cli("run", "--once", now="2026-12-01T10:05")
    assert result.exit_code == 0, result.output
    assert "rappel-session" in result.output and "queued" in result.output
    assert "Delivery: 2 sent" in result.output
    assert len(outbox_files(root)) == 2
    states = {m["state"] for m in mails(open_project(root))}
    assert states == {"sent"}


def test_run_once_with_nothing_due(root: Path, cli) -> None:  # noqa: ANN001
    result = cli("run", "--once", now="2026-12-01T10:05")
    assert result.exit_code == 0 and "Nothing was due." in result.output


def test_run_once_twice_at_the_same_instant_sends_nothing_twice(root: Path, cli) -> None:  # noqa: ANN001
    enrol(root, 3)
    for _ in range(2):
        assert cli("run", "--once", now="2026-12-01T10:05").exit_code == 0
    assert len(mails(open_project(root))) == 3
    assert len(outbox_files(root)) == 3
    assert "Nothing was due." in cli("run", "--once", now="2026-12-01T10:05").output


def test_two_runs_at_once_send_nothing_twice(root: Path) -> None:
    enrol(root, 150)
    env = {**os.environ, "EDUMAIL_NOW": "2026-12-01T10:05", "EDUMAIL_PROJECT": str(root)}
    command = [sys.executable, "-m", "edumail", "run", "--once"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    rows = mails(open_project(root))
    assert len(rows) == 150 and {m["state"] for m in rows} == {"sent"}
    assert len(outbox_files(root)) == 150
    assert sum("Nothing was due." in out for out in outputs) == 1


def test_dry_run_decides_but_changes_nothing(root: Path, cli) -> None:  # noqa: ANN001
    enrol(root, 2)
    result = cli("run", "--once", "--dry-run", now="2026-12-01T10:05")
    assert result.exit_code == 0, result.output
    assert "dry run: nothing was changed or sent" in result.output
    assert "rappel-session" in result.output
    store = open_project(root).store()
    assert store.rows("SELECT * FROM journeys") == [] and mails(open_project(root)) == []
    assert outbox_files(root) == []
    assert cli("run", "--once", now="2026-12-01T10:05").exit_code == 0
    assert len(outbox_files(root)) == 2


def test_a_bad_sequence_file_is_reported_and_skipped_while_the_others_run(root: Path, cli) -> None:  # noqa: ANN001
    enrol(root, 1)
    write_sequence(root, "casse", "trigger: {event: x}\nsteps:\n  - send: relance-2\n  - wait: 2 jours\n    tag: a\n")
    result = cli("run", "--once", now="2026-12-01T10:05")
    assert result.exit_code == 1  # a person must look (SPEC 11)
    assert "sequences/casse.yaml:3: unknown template 'relance-2'" in result.output
    assert "sequences/casse.yaml:4: wait: '2 jours' is not a duration" in result.output
    assert "skipped" in result.output
    assert [m["template"] for m in mails(open_project(root))] == ["confirmation-inscription"]  # rappel-session ran
    assert len(outbox_files(root)) == 1
    check = cli("check")
    assert "sequences/casse.yaml:3: unknown template 'relance-2'" in check.output


def test_a_run_in_progress_makes_the_second_one_wait_then_stop(root: Path) -> None:
    project = open_project(root)
    with runner.RunLock(Store(project.database_path)):
        with pytest.raises(runner.LockBusy) as caught:
            runner.run_once(project, now=T("2026-12-01T10:00"), lock_wait=0.3, deliver=False)
    message = str(caught.value)
    assert f"another `edumail run` is in progress (pid {os.getpid()} on {socket.gethostname()}" in message
    assert "waited 0s" in message
    runner.run_once(project, now=T("2026-12-01T10:00"), lock_wait=0, deliver=False)  # released


def test_the_lock_of_a_dead_process_is_taken_over(root: Path) -> None:
    project = open_project(root)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{dead.stdout.strip()}:deadbeef"
    project.store().execute(
        "INSERT INTO locks (name, owner, acquired_at, expires_at) VALUES ('run', ?, '2099-01-01', '2099-01-02')",
        (owner,),
    )
    runner.run_once(project, now=T("2026-12-01T10:00"), lock_wait=0, deliver=False)
    assert project.store().lock_holder("run") is None


def test_an_expired_lock_is_taken_over(root: Path) -> None:
    enrol(root, 1)
    project = open_project(root)
    project.store().execute(
        "INSERT INTO locks (name, owner, acquired_at, expires_at) VALUES ('run', 'elsewhere:1:x',"
        " '2000-01-01', '2000-01-02')"
    )
    summary = runner.run_once(project, now=T("2026-12-01T10:05"), lock_wait=0, deliver=False)
    assert summary.engine.count("entered") == 1  # the run did its work under the taken-over lock
    assert project.store().lock_holder("run") is None


def test_daemon_runs_on_its_interval_and_stops_cleanly_on_sigterm(root: Path) -> None:
    enrol(root, 2)
    env = {**os.environ, "EDUMAIL_NOW": "2026-12-01T10:05", "EDUMAIL_PROJECT": str(root)}
    process = subprocess.Popen(
        [sys.executable, "-m", "edumail", "run", "--daemon", "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(outbox_files(root)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(outbox_files(root)) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert "edumail daemon: running every 1s" in output
    assert "run: entered 2, queued 2" in output
    assert "received SIGTERM" in output and "edumail daemon: stopped" in output
    assert len(mails(open_project(root))) == 2


@pytest.mark.parametrize("password", [None, "wrong"])
def test_run_once_exits_1_when_delivery_stops_for_the_password(root: Path, password: str | None) -> None:
    from smtp_server import SmtpTestServer

    server = SmtpTestServer()
    server.start()
    try:
        server.require_auth("centre", "right")
        settings = root / "edumail.yaml"
        settings.write_text(settings.read_text() + server.settings_yaml(username="centre"), encoding="utf-8")
        enrol(root, 2)
        env = {k: v for k, v in os.environ.items() if k != "EDUMAIL_SMTP_PASSWORD"}
        env.update({"EDUMAIL_NOW": "2026-12-01T10:05", "EDUMAIL_PROJECT": str(root)})
        if password is not None:
            env["EDUMAIL_SMTP_PASSWORD"] = password
        done = subprocess.run(
            [sys.executable, "-m", "edumail", "run", "--once"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "delivery stopped" in done.stdout + done.stderr and "Traceback" not in done.stderr
        assert {m["state"] for m in mails(open_project(root))} == {"queued"}
    finally:
        server.stop()
