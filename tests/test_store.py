import sqlite3
import subprocess
import sys

import pytest

from edumail.errors import EdumailError
from edumail.store import Store
from edumail.store.schema import MIGRATIONS


def test_new_store_is_at_latest_version_in_wal_mode(tmp_path):
    store = Store(tmp_path / "e.db")
    assert store.version == MIGRATIONS[-1][0]
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.scalar("PRAGMA busy_timeout") >= 5000


def test_reopening_runs_no_migration_twice(tmp_path):
    Store(tmp_path / "e.db").close()
    store = Store(tmp_path / "e.db")
    assert store.scalar("SELECT COUNT(*) FROM schema_version") == len(MIGRATIONS)


def test_a_newer_schema_is_refused_with_advice(tmp_path):
    store = Store(tmp_path / "e.db")
    store.execute("INSERT INTO schema_version VALUES (999, 'x')")
    store.close()
    with pytest.raises(EdumailError, match="upgrade edumail"):
        Store(tmp_path / "e.db")


def test_an_older_schema_is_migrated_on_open(tmp_path, monkeypatch):
    from edumail.store import schema

    path = tmp_path / "e.db"
    Store(path).close()
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, (99, "CREATE TABLE later (x INTEGER);")])
    import edumail.store as store_module

    monkeypatch.setattr(store_module, "MIGRATIONS", schema.MIGRATIONS)
    store = Store(path)
    assert store.version == 99 and "later" in store.db.table_names()


def test_a_lower_version_landing_late_is_still_applied(tmp_path, monkeypatch):
    """Versions are reserved per branch: one recorded 7 must not hide a 3 that arrives later."""
    import edumail.store as store_module
    from edumail.store import schema

    path = tmp_path / "e.db"
    later = [*schema.MIGRATIONS, (97, "CREATE TABLE seventh (x INTEGER);")]
    monkeypatch.setattr(store_module, "MIGRATIONS", later)
    Store(path).close()
    both = sorted([*later, (93, "CREATE TABLE third (x INTEGER);")])
    monkeypatch.setattr(store_module, "MIGRATIONS", both)
    store = Store(path)
    assert {"third", "seventh"} <= set(store.db.table_names())
    assert store.scalar("SELECT COUNT(*) FROM schema_version") == len(both)
    store.close()
    Store(path).close()  # reopening applies nothing twice


def test_transaction_rolls_back_on_error(tmp_path):
    store = Store(tmp_path / "e.db")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.insert_contact({"email": "a@b.fr"}, "2026-01-01T00:00:00.000000Z")
            raise RuntimeError("boom")
    assert store.count_contacts() == 0


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "e.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(EdumailError, match="cannot open the database"):
        Store(path)


def test_two_connections_share_the_file(tmp_path):
    one, two = Store(tmp_path / "e.db"), Store(tmp_path / "e.db")
    with one.transaction():
        one.insert_contact({"email": "a@b.fr"}, "2026-01-01T00:00:00.000000Z")
    assert two.count_contacts() == 1
    assert isinstance(two.conn, sqlite3.Connection)


def test_reading_the_store_does_not_load_sqlite_utils(tmp_path):
    # Every command opens the store: sqlite-utils (60 ms of imports) is for introspection only (issue 17).
    code = (
        "import sys\nfrom edumail.store import Store\n"
        f"store = Store({str(tmp_path / 'edumail.db')!r})\n"
        "assert store.rows('SELECT * FROM contacts') == []\n"
        "print('sqlite_utils' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_zero_byte_database_is_refused_with_how_to_restore(cli, project_dir):
    (project_dir / "edumail.db").write_bytes(b"")
    result = cli("contacts", "list")
    assert result.exit_code == 1
    assert "empty (0 bytes)" in result.output and "Restore it from your last backup" in result.output
    assert (project_dir / "edumail.db").stat().st_size == 0


def test_a_damaged_database_is_a_clear_error_not_a_traceback(cli, project_dir):
    assert cli("contacts", "list").exit_code == 0  # creates the database
    path = project_dir / "edumail.db"
    data = bytearray(path.read_bytes())
    data[0:16] = b"this is not sqli"  # the header of the file is gone
    path.write_bytes(bytes(data))
    for wal in project_dir.glob("edumail.db-*"):
        wal.unlink()
    result = cli("contacts", "list")
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output


def test_claiming_due_mails_finds_them_by_primary_key_not_by_walking_the_queue(tmp_path):
    """The claim of a delivery round costs the same with 10 or 100,000 mails queued."""
    from edumail.store.outbox import CLAIM

    store = Store(tmp_path / "edumail.db")
    plan = " / ".join(r["detail"] for r in store.rows("EXPLAIN QUERY PLAN " + CLAIM, {"now": "2026", "n": 2}))
    store.close()
    assert plan.startswith("SEARCH mails USING INTEGER PRIMARY KEY"), plan
    assert "mails_state (state=? AND not_before<?)" in plan, plan


def test_contact_ids_are_found_by_address_one_by_one_for_a_few_and_in_one_pass_for_many(tmp_path):
    """Both ways give the known addresses and nothing for the others; the pass is taken when the addresses
    are a third of the contacts or more (an import naming most of the centre)."""
    store = Store(tmp_path / "e.db")
    stamp = "2026-03-01T09:00:00.000000Z"
    with store.transaction():
        ids = {
            f"c{n}@example.org": store.insert_contact({"email": f"c{n}@example.org", "consent": "unknown"}, stamp)
            for n in range(3_000)
        }
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    few = ["c7@example.org", "nobody@example.org", "c2999@example.org"]
    many = [f"c{n}@example.org" for n in range(0, 3_000, 2)] + [f"new{n}@example.org" for n in range(500)]
    for emails, one_by_one in ((few, True), (many, False)):
        statements.clear()
        assert store.contact_ids_by_email(emails) == {a: ids[a] for a in emails if a in ids}
        assert any(" IN (" in sql for sql in statements) == one_by_one
