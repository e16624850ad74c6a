"""Training sessions (SPEC 13): import, list, show, set, cancel, the API, and the link on events."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette 1.x suggests httpx2; the client works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from edumail import project as project_module
from edumail.store import Store
from edumail.tracking import create_app

NOW = "2026-10-01T10:00:00+02:00"
API_TOKEN = "api-token-for-sessions"
CALENDAR = (
    "id;formation;début;fin;lieu;formateur;statut;salle\n"
    "EXCEL-2026-10-LYON;Excel perfectionnement;14/10/2026 09:30;15/10/2026 17:00;Lyon;Anne Morel;prévue;B12\n"
    "WORD-2026-10-PARIS;Word;2026-10-20T09:00;2026-10-20T17:00;Paris;;;\n"
)


def db(cli) -> Store:
    return Store(cli.root / "edumail.db")


def write(cli, name: str, text: str, encoding: str = "cp1252") -> str:
    path = cli.root / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def events_named(store: Store, name: str) -> list[dict]:
    rows = store.rows("SELECT * FROM events WHERE name = ? ORDER BY id", (name,))
    return [{**r, "data": json.loads(r["data"])} for r in rows]


@pytest.fixture
def calendar(cli):
    result = cli("sessions", "import", write(cli, "sessions.csv", CALENDAR), now=NOW)
    assert result.exit_code == 0, result.output
    return cli


def enrol(cli, email: str, session: str = "EXCEL-2026-10-LYON") -> None:
    result = cli("event", email, "inscription_finalisee", "--data", f"session={session}", now=NOW)
    assert result.exit_code == 0, result.output


# --- import -------------------------------------------------------------------------------


def test_import_reads_an_excel_file_with_french_dates_and_headers(calendar):
    session = db(calendar).session("EXCEL-2026-10-LYON")
    assert session["start"] == datetime(2026, 10, 14, 7, 30, tzinfo=UTC)  # 09:30 in Paris, summer time
    assert session["end"] == datetime(2026, 10, 15, 15, 0, tzinfo=UTC)
    assert (session["formation"], session["lieu"], session["formateur"]) == (
        "Excel perfectionnement",
        "Lyon",
        "Anne Morel",
    )
    assert session["status"] == "planned" and session["fields"] == {"salle": "B12"}
    assert db(calendar).session("WORD-2026-10-PARIS")["start"] == datetime(2026, 10, 20, 7, 0, tzinfo=UTC)


def test_import_summary_and_reimport_changes_nothing(cli):
    path = write(cli, "s.csv", CALENDAR)
    assert "2 created, 0 updated, 0 unchanged" in cli("sessions", "import", path, now=NOW).output
    assert "0 created, 0 updated, 2 unchanged" in cli("sessions", "import", path, now=NOW).output


def test_import_with_bad_rows_reports_every_line_and_imports_nothing(cli):
    text = (
        "id;formation;debut;fin;statut\n"
        "OK-1;Excel;14/10/2026 09:30;14/10/2026 17:00;\n"
        "BAD-END;Word;14/10/2026 09:30;13/10/2026 17:00;\n"
        "BAD-STATUS;Word;14/10/2026 09:30;14/10/2026 17:00;reportée\n"
        "OK-1;Excel;15/10/2026 09:30;15/10/2026 17:00;\n"
        "BAD-DATE;Word;32/10/2026;14/11/2026;\n"
    )
    result = cli("sessions", "import", write(cli, "s.csv", text), now=NOW)
    assert result.exit_code == 1
    out = result.output
    assert "s.csv:3: BAD-END: the end is before the start" in out
    assert "s.csv:4: unknown status 'reportée' (expected planned or cancelled)" in out
    assert "s.csv:5: OK-1 already on line 2 (one row per session)" in out
    assert "s.csv:6: start: '32/10/2026' is not a date" in out
    assert "nothing imported" in out and "Traceback" not in out
    assert db(cli).list_sessions() == []


def test_a_new_session_without_dates_is_a_line_error(cli):
    result = cli("sessions", "import", write(cli, "s.csv", "id;formation\nNEW-1;Excel\n"), now=NOW)
    assert result.exit_code == 1
    assert "s.csv:2: NEW-1: a new session needs start and end" in result.output


def test_import_without_id_column_is_refused(cli):
    result = cli("sessions", "import", write(cli, "s.csv", "formation;debut\nExcel;14/10/2026\n"), now=NOW)
    assert result.exit_code == 1 and "no id column (found: formation, debut)" in result.output


def test_a_year_out_of_range_is_refused(cli):
    text = "id;debut;fin\nX-1;14/10/2226 09:00;15/10/2226 09:00\n"
    result = cli("sessions", "import", write(cli, "s.csv", text), now=NOW)
    assert result.exit_code == 1 and "between 1900 and 2199" in result.output


def test_reimport_moving_a_session_tells_each_learner(calendar):
    enrol(calendar, "lea@example.org")
    enrol(calendar, "tom@example.org")
    enrol(calendar, "zoe@example.org", "WORD-2026-10-PARIS")
    moved = CALENDAR.replace("14/10/2026 09:30", "21/10/2026 09:30").replace("15/10/2026 17:00", "22/10/2026 17:00")
    result = calendar("sessions", "import", write(calendar, "s2.csv", moved), now=NOW)
    assert result.exit_code == 0, result.output
    assert "1 moved" in result.output
    assert "EXCEL-2026-10-LYON: start 2026-10-14 09:30 -> 2026-10-21 09:30" in result.output
    changed = events_named(db(calendar), "session_changed")
    assert len(changed) == 4  # start and end, for each of the two learners
    assert {e["data"]["field"] for e in changed} == {"start", "end"}
    first = changed[0]["data"]
    assert first == {
        "session": "EXCEL-2026-10-LYON",
        "field": "start",
        "from": "2026-10-14T07:30:00+00:00",
        "to": "2026-10-21T07:30:00+00:00",
    }
    assert {
        r["session_id"] for r in db(calendar).rows("SELECT session_id FROM events WHERE name='session_changed'")
    } == {"EXCEL-2026-10-LYON"}


def test_a_cancelled_row_cancels_and_cannot_be_planned_again(calendar):
    enrol(calendar, "lea@example.org", "WORD-2026-10-PARIS")
    text = CALENDAR.replace("2026-10-20T17:00;Paris;;;", "2026-10-20T17:00;Paris;;annulée;")
    assert "1 cancelled" in calendar("sessions", "import", write(calendar, "s2.csv", text), now=NOW).output
    assert db(calendar).session("WORD-2026-10-PARIS")["status"] == "cancelled"
    assert len(events_named(db(calendar), "session_cancelled")) == 1
    result = calendar("sessions", "import", write(calendar, "s3.csv", CALENDAR.replace(";;;", ";;prévue;")), now=NOW)
    assert result.exit_code == 1 and "cannot be planned again" in result.output


# --- list, show -------------------------------------------------------------------------------


def test_list_json_and_from(calendar):
    enrol(calendar, "lea@example.org")
    found = json.loads(calendar("sessions", "list", "--json", now=NOW).output)
    assert [(s["id"], s["learners"]) for s in found] == [("EXCEL-2026-10-LYON", 1), ("WORD-2026-10-PARIS", 0)]
    assert found[0]["start"] == "2026-10-14T09:30:00+02:00"
    later = json.loads(calendar("sessions", "list", "--from", "2026-10-16", "--json", now=NOW).output)
    assert [s["id"] for s in later] == ["WORD-2026-10-PARIS"]


def test_show_lists_learners_attendance_and_evaluation(calendar):
    enrol(calendar, "lea@example.org")
    enrol(calendar, "tom@example.org")
    calendar("event", "lea@example.org", "present", "--data", "session=EXCEL-2026-10-LYON", now=NOW)
    calendar("event", "tom@example.org", "absent", "--data", "session=EXCEL-2026-10-LYON", now=NOW)
    calendar(
        "event",
        "lea@example.org",
        "evaluation_completee",
        "--data",
        "session=EXCEL-2026-10-LYON",
        "--data",
        "note=8",
        now=NOW,
    )
    shown = json.loads(calendar("sessions", "show", "EXCEL-2026-10-LYON", "--json", now=NOW).output)
    by_email = {learner["email"]: learner for learner in shown["learners"]}
    assert by_email["lea@example.org"]["attendance"] == "present"
    assert by_email["lea@example.org"]["evaluation"]["note"] == "8"
    assert by_email["tom@example.org"]["attendance"] == "absent"
    assert by_email["tom@example.org"]["evaluation"] is None
    text = calendar("sessions", "show", "EXCEL-2026-10-LYON", now=NOW).output
    assert "2 learner(s)" in text and "lea@example.org" in text


def test_show_an_unknown_session_is_one_line(cli):
    result = cli("sessions", "show", "NOPE", now=NOW)
    assert result.exit_code == 1 and "no session 'NOPE' (see `edumail sessions list`)" in result.output


# --- set, cancel -------------------------------------------------------------------------------


def test_set_moves_a_session_and_records_session_changed(calendar):
    enrol(calendar, "lea@example.org")
    result = calendar("sessions", "set", "EXCEL-2026-10-LYON", "start=2026-10-13T09:30", "lieu=Villeurbanne", now=NOW)
    assert result.exit_code == 0, result.output
    assert "start 2026-10-14 09:30 -> 2026-10-13 09:30" in result.output and "1 learner(s) told" in result.output
    session = db(calendar).session("EXCEL-2026-10-LYON")
    assert session["lieu"] == "Villeurbanne" and session["start"] == datetime(2026, 10, 13, 7, 30, tzinfo=UTC)
    [changed] = events_named(db(calendar), "session_changed")
    assert changed["data"]["field"] == "start" and changed["source"] == "sessions set"


def test_set_a_custom_field_known_to_sessions(calendar):
    assert calendar("sessions", "set", "EXCEL-2026-10-LYON", "salle=C3", now=NOW).exit_code == 0
    assert db(calendar).session("EXCEL-2026-10-LYON")["fields"] == {"salle": "C3"}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (
            "salle_de_pause=1",
            "unknown session field 'salle_de_pause' (known: end, formateur, formation, lieu, salle, start)",
        ),
        ("start=demain", "start: 'demain' is not a date"),
        ("end=2026-10-01T09:00", "the end is before the start"),
        ("status=cancelled", "use `edumail sessions cancel ID`"),
        ("09:30", "expected key=value"),
    ],
)
def test_set_refuses_with_one_clear_line(calendar, pair, message):
    result = calendar("sessions", "set", "EXCEL-2026-10-LYON", pair, now=NOW)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert db(calendar).session("EXCEL-2026-10-LYON")["start"] == datetime(2026, 10, 14, 7, 30, tzinfo=UTC)


def test_set_an_unknown_session(calendar):
    result = calendar("sessions", "set", "NOPE", "lieu=Lyon", now=NOW)
    assert result.exit_code == 1 and "no session 'NOPE'" in result.output


def test_cancel_records_session_cancelled_with_the_reason(calendar):
    enrol(calendar, "lea@example.org")
    enrol(calendar, "tom@example.org")
    result = calendar("sessions", "cancel", "EXCEL-2026-10-LYON", "--reason", "formatrice malade", now=NOW)
    assert result.exit_code == 0 and "2 learner(s) told" in result.output
    cancelled = events_named(db(calendar), "session_cancelled")
    assert [e["data"] for e in cancelled] == [{"session": "EXCEL-2026-10-LYON", "reason": "formatrice malade"}] * 2
    session = db(calendar).session("EXCEL-2026-10-LYON")
    assert (session["status"], session["cancel_reason"]) == ("cancelled", "formatrice malade")
    again = calendar("sessions", "cancel", "EXCEL-2026-10-LYON", now=NOW)
    assert again.exit_code == 1 and "already cancelled (formatrice malade)" in again.output


# --- the link on events -------------------------------------------------------------------------


def test_an_event_naming_an_unknown_session_is_refused(calendar):
    result = calendar("event", "lea@example.org", "inscription_finalisee", "--data", "session=EXCEL-2099", now=NOW)
    assert result.exit_code == 1
    assert "unknown session 'EXCEL-2099' (see `edumail sessions list`)" in result.output
    assert db(calendar).contact_by_email("lea@example.org") is None


def test_attendance_and_evaluation_need_a_session_and_a_sane_note(calendar):
    result = calendar("event", "lea@example.org", "present", now=NOW)
    assert result.exit_code == 1 and "a 'present' event needs the session" in result.output
    result = calendar(
        "event",
        "lea@example.org",
        "evaluation_completee",
        "--data",
        "session=EXCEL-2026-10-LYON",
        "--data",
        "note=12",
        now=NOW,
    )
    assert result.exit_code == 1 and "note '12': expected a number from 0 to 10" in result.output


def test_events_import_skips_rows_naming_unknown_sessions_with_their_line(calendar):
    text = (
        "email;name;session\n"
        "lea@example.org;present;EXCEL-2026-10-LYON\n"
        "tom@example.org;present;EXCEL-1999\n"
        "zoe@example.org;absent;WORD-2026-10-PARIS\n"
    )
    result = calendar("events", "import", write(calendar, "presences.csv", text), now=NOW)
    assert "presences.csv:3: unknown session 'EXCEL-1999'" in result.output
    assert "2 recorded" in result.output
    store = db(calendar)
    assert [e["session_id"] for e in events_named(store, "present")] == ["EXCEL-2026-10-LYON"]
    assert store.session_learner_ids("WORD-2026-10-PARIS") == [store.contact_by_email("zoe@example.org")["id"]]


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
def client(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("EDUMAIL_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("EDUMAIL_NOW", NOW)
    app = create_app(project_module.load(project_dir))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SESSION = {
    "id": "PPT-2026-11",
    "formation": "PowerPoint",
    "start": "2026-11-05T09:00",
    "end": "2026-11-05T17:00",
    "lieu": "Lyon",
    "fields": {"salle": "A1"},
}


def test_api_creates_then_moves_a_session(client: TestClient, project_dir: Path) -> None:
    response = client.post("/api/sessions", json=SESSION, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json() == {"id": "PPT-2026-11", "created": True, "changed": [], "learners": 0}
    body = {"email": "lea@example.org", "name": "inscription_finalisee", "data": {"session": "PPT-2026-11"}}
    assert client.post("/api/events", json=body, headers=AUTH).status_code == 201
    response = client.post(
        "/api/sessions",
        json={"id": "PPT-2026-11", "start": "2026-11-06T09:00", "end": "2026-11-06T17:00"},
        headers=AUTH,
    )
    assert response.status_code == 200
    assert response.json() == {"id": "PPT-2026-11", "created": False, "changed": ["start", "end"], "learners": 1}
    with Store(project_dir / "edumail.db") as store:
        assert len(events_named(store, "session_changed")) == 2
        assert store.session("PPT-2026-11")["fields"] == {"salle": "A1"}
        cancelled = {"id": "PPT-2026-11", "status": "cancelled", "reason": "salle indisponible"}
        assert client.post("/api/sessions", json=cancelled, headers=AUTH).status_code == 200
        assert store.session("PPT-2026-11")["cancel_reason"] == "salle indisponible"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected a JSON object"),
        ({"formation": "Excel"}, "a session needs an id"),
        ({**SESSION, "end": "2026-11-04T09:00"}, "the end is before the start"),
        ({**SESSION, "start": "le 5 novembre"}, "start: 'le 5 novembre' is not a date"),
        ({**SESSION, "status": "postponed"}, "unknown status 'postponed'"),
        ({**SESSION, "salle": "A1"}, "unknown field(s) salle"),
        ({**SESSION, "start": 20261105}, "'start' must be text"),
        ({"id": "NEW", "formation": "Excel"}, "a new session needs start and end"),
        ({**SESSION, "id": "has space"}, "session id 'has space'"),
    ],
)
def test_api_refuses_bad_sessions_with_400(client: TestClient, body, message) -> None:
    response = client.post("/api/sessions", json=body, headers=AUTH)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_api_sessions_needs_the_token(client: TestClient) -> None:
    assert client.post("/api/sessions", json=SESSION).status_code == 401
    assert client.post("/api/sessions", json=SESSION, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_api_event_naming_an_unknown_session_is_400(client: TestClient) -> None:
    body = {"email": "lea@example.org", "name": "present", "data": {"session": "NOPE"}}
    response = client.post("/api/events", json=body, headers=AUTH)
    assert response.status_code == 400 and "unknown session 'NOPE'" in response.json()["error"]


def test_api_cannot_post_session_changed(client: TestClient) -> None:
    body = {"email": "lea@example.org", "name": "session_changed", "data": {}}
    assert client.post("/api/events", json=body, headers=AUTH).status_code == 400
