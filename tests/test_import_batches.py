"""Imports are set-based (issue 17): the number of SQL statements does not grow with the rows,
and a batched update leaves exactly what the row-by-row rules say (SPEC 16)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edumail import clock, contacts_import, events
from edumail.errors import InputError
from edumail.store import Store

NOW = clock.parse_iso("2026-11-20T10:00:00Z", clock.UTC)
LATER = clock.parse_iso("2026-11-21T10:00:00Z", clock.UTC)


class CountingConnection:
    """The real sqlite3 connection, counting the statements handed to it (execute and executemany alike)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.statements = 0

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self.statements += 1
        return self._conn.execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        self.statements += 1
        return self._conn.executemany(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def first_file(tmp_path: Path, n: int) -> Path:
    rows = [f"p{i}@example.fr,Prénom{i},Nom,prospect,Lyon,unknown" for i in range(n)]
    return write(tmp_path / "a.csv", ["email,prenom,nom,etape,ville,consent", *rows])


def second_file(tmp_path: Path, n: int) -> Path:
    """Every other row changes: a name, the stage, consent, a field and a tag."""
    rows = []
    for i in range(n):
        if i % 2:
            rows.append(f"p{i}@example.fr,Prénom{i},Nom,prospect,Lyon,,")
        else:
            rows.append(f"p{i}@example.fr,Autre{i},Nom,client,Paris,opted_in,vip")
    return write(tmp_path / "b.csv", ["email,prenom,nom,etape,ville,consent,tags", *rows])


def statements_for(tmp_path: Path, n: int) -> tuple[int, int, Store]:
    store = Store(tmp_path / f"e{n}.db")
    counting = CountingConnection(store.conn)
    store.conn = counting  # type: ignore[assignment]
    contacts_import.import_contacts(store, first_file(tmp_path, n), now=NOW)
    created = counting.statements
    counting.statements = 0
    report = contacts_import.import_contacts(store, second_file(tmp_path, n), now=LATER)
    assert (report.created, report.updated, report.unchanged, report.skipped) == (0, n // 2, n - n // 2, 0)
    return created, counting.statements, store


def test_import_statements_do_not_grow_with_the_rows(tmp_path):
    small_create, small_update, _ = statements_for(tmp_path, 40)
    large_create, large_update, _ = statements_for(tmp_path, 2_000)
    assert large_create <= small_create + 10, (small_create, large_create)
    assert large_update <= small_update + 10, (small_update, large_update)


def test_a_batched_update_leaves_what_the_rules_say(tmp_path):
    *_, store = statements_for(tmp_path, 40)
    changed, same = store.contact_by_email("p0@example.fr"), store.contact_by_email("p1@example.fr")
    assert (changed["first_name"], changed["stage"], changed["consent"], changed["consent_basis"]) == (
        "Autre0",
        "client",
        events.OPTED_IN,
        "opt_in",
    )
    assert json.loads(changed["fields"]) == {"ville": "Paris"}
    assert changed["updated_at"] == LATER and changed["imported_stage"] == "client"
    assert same["updated_at"] == NOW and same["first_name"] == "Prénom1"
    assert store.tags_of(changed["id"]) == ["vip"] and store.tags_of(same["id"]) == []
    names = [
        (r["name"], json.loads(r["data"]))
        for r in store.rows(
            "SELECT name, data FROM events WHERE contact_id = ? AND at = ? ORDER BY id",
            (changed["id"], clock.to_db(LATER)),
        )
    ]
    assert sorted(names, key=lambda r: r[0]) == [
        (events.CONSENT_CHANGED, {"basis": "opt_in", "from": "unknown", "source": "import b.csv", "to": "opted_in"}),
        (events.STAGE_CHANGED, {"from": "prospect", "to": "client"}),
        (events.TAG_ADDED, {"tag": "vip"}),
    ]
    log = store.consent_log(changed["id"])
    assert [(r["consent"], r["basis"], json.loads(r["proof"])) for r in log][-1] == (
        events.OPTED_IN,
        "opt_in",
        {"column": "consent", "command": "contacts import", "file": "b.csv", "line": 2},
    )
    assert store.rows("SELECT 1 FROM events WHERE contact_id = ? AND at = ?", (same["id"], clock.to_db(LATER))) == []


def events_statements(tmp_path: Path, n: int) -> int:
    store = Store(tmp_path / f"ev{n}.db")
    contacts_import.import_contacts(store, first_file(tmp_path, n), now=NOW)
    rows = [f"p{i % n}@example.fr,page_vue,2026-11-0{1 + i % 9}T10:00,excel" for i in range(2 * n)]
    rows += [f"new{i}@example.fr,page_vue,,excel" for i in range(n)]
    path = write(tmp_path / "ev.csv", ["email,name,at,formation", *rows])
    counting = CountingConnection(store.conn)
    store.conn = counting  # type: ignore[assignment]
    report = contacts_import.import_events(store, path, now=LATER, tz=clock.UTC)
    assert (report.recorded, report.contacts_created, report.skipped) == (3 * n, n, 0)
    assert store.scalar("SELECT COUNT(*) FROM events WHERE name = 'page_vue'") == 3 * n
    return counting.statements


def test_events_import_statements_do_not_grow_with_the_rows(tmp_path):
    small, large = events_statements(tmp_path, 40), events_statements(tmp_path, 2_000)
    assert large <= small + 20, (small, large)


def test_events_file_rows_short_repeated_and_blank_columns_read_as_their_cells_say(tmp_path):
    """An events file is read as rows of cells: a short row's missing cells are empty, a column named twice
    keeps its last cell, a column without a name is left out, a blank line is skipped."""
    store = Store(tmp_path / "e.db")
    path = write(
        tmp_path / "ev.csv",
        [
            "email,name,at,formation,,formation,ville",
            "a@example.fr,devis,2026-11-02T10:00,excel,x,word,Lyon",
            "b@example.fr,page_vue",
            " , , ",
            "c@example.fr,devis,,,,,Paris,extra",
        ],
    )
    report = contacts_import.import_events(store, path, now=LATER, tz=clock.UTC)
    assert (report.recorded, report.contacts_created, report.skipped, report.problems) == (3, 3, 0, [])
    found = {
        row["email"]: (row["at"], json.loads(row["data"]), row["line"])
        for row in store.rows(
            "SELECT c.email, e.at, e.data, e.id AS line FROM events e JOIN contacts c ON c.id = e.contact_id"
        )
    }
    assert found["a@example.fr"][:2] == (
        clock.parse_iso("2026-11-02T10:00Z", clock.UTC),
        {"formation": "word", "ville": "Lyon"},
    )
    assert found["b@example.fr"][:2] == (LATER, {})
    assert found["c@example.fr"][:2] == (LATER, {"ville": "Paris"})
    assert [found[a][2] for a in ("a@example.fr", "b@example.fr", "c@example.fr")] == [1, 2, 3]


def test_an_import_leaves_the_cycle_collector_as_it_found_it(tmp_path):
    """Imports pause Python's cycle collector while they build their rows, and give it back, even when the
    file is refused."""
    import gc

    store = Store(tmp_path / "e.db")
    seen: list[bool] = []
    contacts_import.import_contacts(store, first_file(tmp_path, 5), now=NOW)
    assert gc.isenabled()
    bad = write(tmp_path / "bad.csv", ["prenom,nom", "Marie,Dupont"])
    with pytest.raises(InputError):
        contacts_import.import_contacts(store, bad, now=NOW)
    assert gc.isenabled()
    gc.disable()
    try:
        contacts_import.import_events(
            store, write(tmp_path / "ev.csv", ["email,name", "p1@example.fr,x"]), now=NOW, tz=clock.UTC
        )
        seen.append(gc.isenabled())
    finally:
        gc.enable()
    assert seen == [False]  # off before, off after


def test_imports_run_without_cycle_collections(tmp_path):
    """Their rows hold no cycle: a collection during an import would only scan them again and again."""
    import gc

    store = Store(tmp_path / "e.db")
    started: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    contacts = first_file(tmp_path, 3_000)
    rows = [f"p{i}@example.fr,page_vue,2026-11-01T10:00,excel" for i in range(3_000)]
    path = write(tmp_path / "ev.csv", ["email,name,at,formation", *rows])
    gc.callbacks.append(record)
    try:
        contacts_import.import_contacts(store, contacts, now=NOW)
        contacts_import.import_events(store, path, now=LATER, tz=clock.UTC)
    finally:
        gc.callbacks.remove(record)
    # Without the pause, dozens; with it, at most the one that the allocations counted meanwhile start when
    # each import gives the collector back.
    assert len(started) <= 2, started
