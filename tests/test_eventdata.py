"""Dates outside 1900-2199 and unstorable data are refused where events enter (SPEC 10)."""

from __future__ import annotations

import pytest

from edumail import project as project_module

NOW = "2026-11-02T10:00"


def _events(project_dir):
    store = project_module.load(project_dir).store()
    return store.rows("SELECT name, data FROM events WHERE name = 'inscription'")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--at", "9999-12-31T12:00"], "--at: '9999-12-31T12:00': the year 9999 is outside 1900-2199"),
        (["--at", "0001-01-01T00:00+01:00"], "outside 1900-2199"),
        (["--data", "session_end=9999-12-31"], "data.session_end: '9999-12-31': the year 9999 is outside"),
    ],
)
def test_event_command_refuses_out_of_range_dates(cli, project_dir, args, message):
    result = cli("event", "a@example.org", "inscription", *args, now=NOW)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert _events(project_dir) == []


def test_events_import_skips_rows_with_out_of_range_dates(cli, project_dir, tmp_path):
    csv = tmp_path / "events.csv"
    csv.write_text(
        "email,name,at,session_end\n"
        "a@example.org,inscription,9999-12-31T23:59:59+01:00,\n"
        "b@example.org,inscription,2026-11-01T09:00,0001-01-01\n"
        "c@example.org,inscription,2026-11-01T09:00,2026-12-01\n",
        encoding="utf-8",
    )
    result = cli("events", "import", str(csv), now=NOW)
    assert "events.csv:2:" in result.output and "events.csv:3:" in result.output
    assert "outside 1900-2199" in result.output
    assert "Traceback" not in result.output
    assert len(_events(project_dir)) == 1


def test_edumail_now_out_of_range_is_refused_by_every_command(cli):
    result = cli("plan", now="9999-12-31T23:59:59+01:00")
    assert result.exit_code == 1
    assert "EDUMAIL_NOW" in result.output and "outside 1900-2199" in result.output
