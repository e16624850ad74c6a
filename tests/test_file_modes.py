"""The database, its WAL and the outbox's files are readable by their owner only (SPEC 20, issue 13 point 12)."""

from __future__ import annotations

import os
import stat

from test_delivery_support import NOW, add_contacts, make_project, queue

from edumail.delivery import deliver


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_wal_and_outbox_files_are_owner_only_even_with_a_permissive_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        project = make_project(tmp_path / "centre")
        queue(project, add_contacts(project, 2))
        assert deliver(project, now=NOW).sent == 2
        root = project.root
        wal = root / "edumail.db-wal"
        assert wal.exists()
        for path in [root / "edumail.db", wal, *sorted((root / "outbox" / "new").glob("*.eml"))]:
            assert mode(path) & 0o077 == 0, f"{path.name} is {oct(mode(path))}"
        assert len(list((root / "outbox" / "new").glob("*.eml"))) == 2
    finally:
        os.umask(previous)


def test_an_existing_database_made_world_readable_is_tightened_on_open(tmp_path):
    project = make_project(tmp_path / "centre")
    add_contacts(project, 1)
    project.close()
    os.chmod(project.database_path, 0o644)
    project.store()
    assert mode(project.database_path) == 0o600
