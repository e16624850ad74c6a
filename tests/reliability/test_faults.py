# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""Faults: a server that is down, drops connections mid-DATA, answers 421/451 at random, or is slow.

After enough runs (the logical clock moved past each backoff, never a sleep)
nothing is lost and nothing doubled, and each run says what happened.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401  (fixture)
from test_delivery_support import NOW, add_contacts, make_project, queue, states

from edumail.delivery import BACKOFF, DeliveryReport, deliver
from edumail.project import Project

from .support import RandomReply, received, restart, stored_message_ids

SEED = 421451


@pytest.fixture
def own_server() -> Iterator[SmtpTestServer]:
    """A server of this test alone: it gets stopped, or answers late after the test moved on."""
    server = SmtpTestServer().start()
    yield server
    if server.controller._thread is not None:
        server.stop()


def _project(root: Path, server: SmtpTestServer, count: int, **options: object) -> Project:
    project = make_project(root, extra=server.settings_yaml(**options))  # type: ignore[arg-type]
    queue(project, add_contacts(project, count))
    return project


def _next_due(project: Project) -> datetime | None:
    return project.store().moment("SELECT MIN(not_before) FROM mails WHERE state IN ('queued', 'sending')")


def _drain(project: Project, start=NOW, rounds: int = 20) -> list[DeliveryReport]:  # type: ignore[no-untyped-def]
    """Deliver, then again at the next retry time, until nothing is queued."""
    reports, now = [], start
    for _ in range(rounds):
        reports.append(deliver(project, now=now))
        due = _next_due(project)
        if due is None:
            return reports
        now = max(now + timedelta(seconds=1), due)
    raise AssertionError(f"still queued after {rounds} runs: {states(project)}; last run: {reports[-1]}")


def _addresses(count: int) -> list[str]:
    return sorted(f"contact{n}@example.org" for n in range(count))


def _assert_each_once(project: Project, server: SmtpTestServer, count: int) -> None:
    got = received(server)
    assert sorted(got) == _addresses(count)
    doubled = {r: ids for r, ids in got.items() if len(ids) > 1}
    assert doubled == {}, f"sent twice: {doubled}"
    assert stored_message_ids(project.store()) == {r: ids[0] for r, ids in got.items()}
    assert states(project) == {"sent": count}
    sent_events = project.store().scalar("SELECT COUNT(*) FROM events WHERE name = 'email_sent'")
    assert sent_events == count


# --- refused connections --------------------------------------------------------------------


def test_a_server_that_is_down_keeps_every_mail_queued_then_gets_each_once(tmp_path, own_server):
    project = _project(tmp_path / "centre", own_server, 20, concurrency=2)
    own_server.stop()  # the port is closed: connections are refused

    report = deliver(project, now=NOW)
    assert report.sent == 0 and report.stopped
    assert f"cannot connect to 127.0.0.1:{own_server.port}" in report.stopped
    assert "(20 mails still queued)" in report.stopped
    assert states(project) == {"queued": 20}
    assert project.store().scalar("SELECT SUM(attempts) FROM mails") == 0  # nothing was tried

    restart(own_server)
    reports = _drain(project, NOW + timedelta(minutes=1))
    assert [r.sent for r in reports] == [20]
    _assert_each_once(project, own_server, 20)


def test_the_cli_run_says_the_server_is_down(tmp_path, own_server, cli, project_dir):
    project = make_project(project_dir, extra=own_server.settings_yaml())
    queue(project, add_contacts(project, 3))
    own_server.stop()
    result = cli("run", "--once", now="2026-03-02T09:00:00Z")
    assert f"cannot connect to 127.0.0.1:{own_server.port}" in result.output
    assert "3 mails still queued" in result.output
    assert states(project) == {"queued": 3}


def test_a_server_stopped_mid_run_then_restarted_loses_and_doubles_nothing(tmp_path, own_server):
    count = 60
    project = _project(tmp_path / "centre", own_server, count, concurrency=2)
    own_server.delay = 0.01  # time for the stop to land while mails are in flight

    def stop_midway() -> None:
        own_server.wait_for(20, timeout=30)
        own_server.stop()

    stopper = threading.Thread(target=stop_midway)
    stopper.start()
    first = deliver(project, now=NOW)
    stopper.join(timeout=30)
    assert 20 - 2 <= first.sent < count  # the 250 of the 20th may be lost with the connection
    assert first.stopped and "cannot connect" in first.stopped
    assert states(project).get("sending") is None  # in-flight mails went back to the queue
    assert states(project)["sent"] == first.sent

    restart(own_server)
    own_server.delay = 0.0
    _drain(project, NOW + BACKOFF[0])
    got = received(own_server)
    assert sorted(got) == _addresses(count)
    # A mail whose 250 was lost with the connection may come twice: only ever with one Message-ID.
    assert all(len(set(ids)) == 1 for ids in got.values()), got
    assert sum(len(ids) - 1 for ids in got.values()) <= 2  # at most the two in flight at the stop
    assert stored_message_ids(project.store()) == {r: ids[0] for r, ids in got.items()}
    assert states(project) == {"sent": count}


# --- dropped connections ---------------------------------------------------------------------


def test_connections_dropped_mid_data_are_retried_and_each_mail_arrives_once(tmp_path, smtp_server):
    project = _project(tmp_path / "centre", smtp_server, 30, concurrency=2)
    smtp_server.drop_in_data(times=6)
    reports = _drain(project)
    first = reports[0]
    assert first.deferred == 6 and first.sent == 24
    assert any("dropped the connection during the transfer" in e for e in first.errors), first.errors
    assert sum(r.deferred for r in reports) == 6
    _assert_each_once(project, smtp_server, 30)
    attempts = [r["attempts"] for r in project.store().rows("SELECT attempts FROM mails")]
    assert sorted(attempts) == [1] * 24 + [2] * 6


# --- 421 / 451 at random -------------------------------------------------------------------------


def test_random_421_and_451_replies_defer_and_every_mail_arrives_once(tmp_path, smtp_server, cli, project_dir):
    count = 200
    project = make_project(project_dir, extra=smtp_server.settings_yaml(concurrency=2))
    queue(project, add_contacts(project, count))
    # One transaction in five gets a 421 or a 451: at MAIL FROM or after the data, 10% each.
    replies = ["421 4.7.0 Too many messages, closing connection", "451 4.3.0 Temporary local problem"]
    at_mail = RandomReply(SEED, 0.1, replies)
    at_data = RandomReply(SEED + 1, 0.1, replies)
    smtp_server.faults.mail = at_mail  # type: ignore[assignment]
    smtp_server.faults.data = at_data  # type: ignore[assignment]

    now, deferred, outputs = NOW, 0, []
    for _ in range(15):  # cron runs, the clock moved to the next retry each time
        result = cli("run", "--once", now=now.isoformat())
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
        found = re.search(r"Delivery: (\d+) sent(?:, (\d+) deferred)?", result.output)
        assert found, result.output
        deferred += int(found.group(2) or 0)
        due = _next_due(project)
        if due is None:
            break
        now = max(now + timedelta(seconds=1), due)
    else:
        raise AssertionError(f"still queued after 15 runs: {states(project)}")

    injected = len(at_mail.given) + len(at_data.given)
    assert injected > count * 0.1  # the faults did happen
    assert deferred == injected  # each one reported as a deferral, none lost or hidden
    assert "deferred" in outputs[0] and "451 4.3.0" in outputs[0]
    _assert_each_once(project, smtp_server, count)
    attempts = project.store().scalar("SELECT SUM(attempts) FROM mails")
    assert attempts == count + injected


# --- a slow server ---------------------------------------------------------------------------------


def test_a_server_slow_to_answer_gets_each_mail_once(tmp_path, own_server):
    own_server.delay = 2.0
    project = _project(tmp_path / "centre", own_server, 3, concurrency=3, timeout=10)
    report = deliver(project, now=NOW)
    assert (report.sent, report.deferred) == (3, 0)
    assert report.seconds >= 2.0
    _assert_each_once(project, own_server, 3)


def test_a_server_slower_than_the_timeout_defers_then_delivers(tmp_path, own_server):
    # Silent at MAIL FROM (the end of DATA gets 10 minutes, RFC 5321: see test_delivery).
    own_server.delay_mail = 2.0
    project = _project(tmp_path / "centre", own_server, 3, concurrency=3, timeout=1)
    first = deliver(project, now=NOW)
    assert (first.sent, first.deferred) == (0, 3)
    assert all("closed the connection before answering" in e for e in first.errors), first.errors
    assert states(project) == {"queued": 3}

    own_server.delay_mail = 0.0
    reports = _drain(project, NOW + BACKOFF[0])
    assert sum(r.sent for r in reports) == 3
    got = received(own_server)
    assert sorted(got) == _addresses(3)
    # The client gave up waiting; had the server accepted meanwhile, the retry carries the same Message-ID.
    assert all(len(set(ids)) == 1 for ids in got.values()), got
    assert stored_message_ids(project.store()) == {r: ids[0] for r, ids in got.items()}
