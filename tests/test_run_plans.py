"""`run --once` with nothing due reads what is due, not every contact: the plans of its triggers' queries."""

from datetime import timedelta

from edumail import clock
from edumail.conditions import Audience
from edumail.store import Store

NOW = clock.parse_iso("2026-12-01T08:00:00+01:00", clock.UTC)


def _plans(store: Store, call) -> dict[str, str]:
    """Each SELECT or DELETE the call ran, with SQLite's plan for it."""
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        store.conn.set_trace_callback(None)
    return {
        sql: " | ".join(row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        for sql in seen
        if sql.lstrip().upper().startswith(("SELECT", "DELETE"))
    }


def _store(tmp_path) -> Store:
    store = Store(tmp_path / "e.db")
    stamp = clock.to_db(NOW - timedelta(days=400))
    with store.transaction():
        store.conn.executemany(
            "INSERT INTO contacts (id, email, stage, created_at, updated_at, last_inbound_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(i, f"c{i}@example.org", "lead" if i % 2 else "client", stamp, stamp, stamp) for i in range(1, 201)],
        )
        store.conn.executemany(
            "INSERT INTO tags (contact_id, tag, added_at) VALUES (?, 'webinar', ?)",
            [(i, stamp) for i in range(1, 201, 3)],
        )
    return store


def test_an_inactive_trigger_reads_the_last_signs_of_life_by_range(tmp_path):
    store = _store(tmp_path)
    span = timedelta(days=365)
    plans = _plans(store, lambda: store.inactive_contacts("reveil", NOW - span, NOW - timedelta(days=1) - span, False))
    [plan] = [p for sql, p in plans.items() if "FROM contacts c" in sql]
    assert "contacts_last_sign" in plan and "SCAN c" not in plan, plan


def test_segment_departures_follow_the_members_not_the_contacts(tmp_path):
    store = _store(tmp_path)
    segment = Audience(stage=("lead",), tags=("webinar",))
    store.add_segment_members("leads", store.segment_arrivals("leads", segment))
    members = store.scalar("SELECT COUNT(*) FROM segment_members")
    assert members and members == len(store.audience_contact_ids(segment))
    with store.transaction():
        store.execute("UPDATE contacts SET stage = 'client' WHERE id = 1")
        plans = _plans(store, lambda: store.segment_departures("leads", segment))
    [plan] = plans.values()
    assert "SCAN" not in plan and "USING INTEGER PRIMARY KEY" in plan, plan
    assert store.scalar("SELECT COUNT(*) FROM segment_members") == members - 1
    assert store.scalar("SELECT COUNT(*) FROM segment_members WHERE contact_id = 1") == 0
