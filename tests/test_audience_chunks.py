"""A campaign's audience is read a chunk at a time (issue 17: a 100,000-contact send stays under 150 MB)."""

from __future__ import annotations

from pathlib import Path

from journeys_support import add_contact, open_project

from edumail import audience


def test_members_read_in_chunks_are_every_match_once_in_id_order(project_dir: Path) -> None:
    project = open_project(project_dir)
    store = project.store()
    ids = [add_contact(project, f"p{i}@example.org", tags=("vip",) if i % 2 == 0 else ()) for i in range(7)]
    vip = audience.from_options(["vip"], None, {})
    everyone = audience.from_options([], None, {})
    for chunk in (1, 2, 3, 100):
        assert [c["id"] for c in audience.members(store, vip, chunk)] == ids[::2]
        assert [c["id"] for c in audience.members(store, everyone, chunk)] == ids
