"""Property-based: random CSV files give clean errors or a whole import, never a traceback or half a file."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edumail import clock, contacts_import
from edumail.errors import EdumailError
from edumail.store import Store

NOW = clock.parse_iso("2026-11-20T10:00:00Z", clock.UTC)
cell = st.text(alphabet=string.printable + 'éèàçÉ€ßœ;,"', max_size=30)
address = st.one_of(st.emails().map(str), cell)
row = st.tuples(address, cell, cell, cell)
separator = st.sampled_from([";", ",", "\t"])
encoding = st.sampled_from(["utf-8", "utf-8-sig", "cp1252"])


def render_csv(rows: list[tuple[str, str, str, str]], sep: str) -> str:
    lines = [sep.join(["email", "prenom", "nom", "ville"])]
    for values in rows:
        lines.append(sep.join('"' + v.replace('"', '""') + '"' for v in values))
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, max_size=12), sep=separator, enc=encoding)
def test_random_rows_import_cleanly(tmp_path_factory, rows, sep, enc):
    root = tmp_path_factory.mktemp("imp")
    path = root / "c.csv"
    try:
        path.write_bytes(render_csv(rows, sep).encode(enc))
    except UnicodeEncodeError:
        path.write_bytes(render_csv(rows, sep).encode("utf-8"))
    store = Store(root / "e.db")
    try:
        report = contacts_import.import_contacts(store, path, now=NOW)
    except EdumailError:
        assert store.count_contacts() == 0  # refused whole: nothing written
        return
    nonblank = [r for r in rows if any(v.strip() for v in r)]  # blank lines are passed over
    assert report.created + report.updated + report.unchanged + report.skipped == len(nonblank)
    assert store.count_contacts() == report.created


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes_never_raise_anything_but_a_clean_error(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("bin")
    path = root / "c.csv"
    path.write_bytes(data)
    store = Store(root / "e.db")
    try:
        contacts_import.import_contacts(store, path, now=NOW)
    except EdumailError as exc:
        assert "\n" not in str(exc).strip() and str(exc)
        assert store.count_contacts() == 0
