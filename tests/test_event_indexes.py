"""The indexes of `events` (issue 17): an event without a mail or a session (every imported event, most
posted ones) takes no entry in the mail and session indexes, and the queries that look events up by mail or
by session still go through them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edumail import clock, contacts_import
from edumail.store import Store

NOW = clock.parse_iso("2026-11-20T10:00:00Z", clock.UTC)


def index_entries(store: Store) -> dict[str, int]:
    """Entries per index of events, as ANALYZE counts them (an empty partial index has no row)."""
    store.execute("ANALYZE events")
    found = {name: 0 for name in ("events_mail", "events_session", "events_contact", "events_name")}
    for index, stat in store.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'events' AND idx IS NOT NULL"):
        found[index] = int(stat.split()[0])
    return found


def test_imported_events_take_no_entry_in_the_mail_and_session_indexes(tmp_path: Path) -> None:
    store = Store(tmp_path / "e.db")
    rows = [f"p{i}@example.fr,page_vue,2026-11-{1 + i % 20:02d}T09:00,excel" for i in range(30)]
    (tmp_path / "ev.csv").write_text("email,name,at,formation\n" + "\n".join(rows) + "\n", encoding="utf-8")
    report = contacts_import.import_events(store, tmp_path / "ev.csv", now=NOW, tz=clock.UTC)
    assert report.recorded == 30
    store.execute(
        "INSERT INTO events (contact_id, name, at, recorded_at, mail_id, session_id) VALUES (1, 'x', 'a', 'a', 7, 'S')"
    )
    entries = index_entries(store)
    assert entries["events_mail"] == 1 and entries["events_session"] == 1
    assert entries["events_contact"] == 31 and entries["events_name"] == 31


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("SELECT 1 FROM events WHERE mail_id = ? AND name = ? AND at > ?", "events_mail"),
        ("SELECT mail_id, name, at FROM events WHERE mail_id IN (?, ?) ORDER BY at, id", "events_mail"),
        (
            (
                "SELECT 1 FROM mails m JOIN events e ON e.mail_id = m.id WHERE m.journey_id = ? AND m.step_id = ?"
                " AND e.name IN (?) AND e.machine = 0 LIMIT 1"
            ),
            "events_mail",
        ),
        ("SELECT id FROM events WHERE session_id = ? AND name IN (?, ?) ORDER BY at, id", "events_session"),
        (
            "SELECT session_id, COUNT(DISTINCT contact_id) FROM events WHERE session_id IS NOT NULL"
            " GROUP BY session_id",
            "events_session",
        ),
    ],
)
def test_lookups_by_mail_and_by_session_use_their_index(tmp_path: Path, sql: str, index: str) -> None:
    store = Store(tmp_path / "e.db")
    plan = " | ".join(row[3] for row in store.execute("EXPLAIN QUERY PLAN " + sql, (1,) * sql.count("?")))
    assert f"INDEX {index}" in plan, plan
