"""Existing contacts updated from an import file in a few statements (issue 17).

The rules are those of one row at a time (SPEC 16): non-empty cells win, a stage
edumail set since the last import is kept, an opted-out contact stays opted out,
a consent change is logged with its proof and recorded as `consent_changed`, a
stage change as `stage_changed`, each new tag as `tag_added`. Each row is planned
in memory against the contact as read inside the import's transaction, then the
plan is written with one statement per kind of change.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from edumail import events, import_rules
from edumail.contacts import clean_tags, record_events

if TYPE_CHECKING:
    from edumail.contacts_import import _Batch
    from edumail.store import Store

_SKIP = {"email", "first_name", "last_name", "stage", "tags", "timezone"} | {
    "consent",
    "basis",
    "id",
    "created_at",
    "updated_at",
    "consent_basis",
    "imported_stage",
    "imported_at",
}
_COLUMNS = ("first_name", "last_name", "timezone", "fields", "stage", "consent", "consent_basis")
COMPARED = ("id", *_COLUMNS, "imported_stage")  # what the rules compare of an existing contact


def fields_from_row(values: dict[str, str]) -> dict[str, str]:
    """The custom fields of a row: every cell that is not a core column, empty cells left out."""
    return {k: v for k, v in values.items() if k not in _SKIP and v != ""}


class Updates:
    """The changes an import makes to existing contacts, planned row by row and written at once."""

    def __init__(self, store: Store, batch: _Batch, tags: list[str]) -> None:
        self.batch = batch
        self.columns: list[tuple[Any, ...]] = []  # (*_COLUMNS, id) of contacts whose columns change
        self.imported: list[tuple[str, int]] = []  # (file stage, id)
        self.consents: list[tuple[int, str, str | None, dict[str, Any]]] = []
        self.events: list[tuple[int, str, datetime, dict[str, Any]]] = []
        self.tags: list[tuple[int, str]] = []
        self.present = store.tag_pairs(tags) if tags else set()
        self.consent_of: dict[tuple[str | None, str | None], import_rules.RowConsent] = {}

    def row(self, line: int, values: dict[str, str], contact: dict[str, Any]) -> bool:
        """Plan one existing contact's (merged) row; True when it changes the contact."""
        batch, report, cid = self.batch, self.batch.report, contact["id"]
        cells = (values.get("consent"), values.get("basis"))
        wanted = self.consent_of.get(cells)
        if wanted is None:
            wanted = self.consent_of[cells] = import_rules.row_consent(values, batch.consent, batch.basis)
        file_stage = values.get("stage", "")
        stage = file_stage
        if stage and not batch.overwrite_stage and import_rules.keeps_stage(contact, stage):
            report.stages_kept += 1
            stage = ""
        new = {key: contact.get(key) for key in _COLUMNS}
        for key in ("first_name", "last_name", "timezone"):
            if values.get(key) and values[key] != (contact.get(key) or ""):
                new[key] = values[key]
        fields = json.loads(contact.get("fields") or "{}")
        merged = {**fields, **fields_from_row(values)}
        if merged != fields:
            new["fields"] = json.dumps(merged, ensure_ascii=False, sort_keys=True)
        if stage and stage != contact.get("stage"):
            new["stage"] = stage
            self.events.append((cid, events.STAGE_CHANGED, batch.now, {"from": contact["stage"], "to": stage}))
        if wanted.state is not None:
            self._consent(line, wanted, contact, new)
        changed = any(new[key] != contact.get(key) for key in _COLUMNS)
        if changed:
            self.columns.append((*(new[key] for key in _COLUMNS), cid))
        if file_stage:
            self.imported.append((file_stage, cid))
        for tag in clean_tags([values.get("tags", ""), *batch.tags]):
            if (cid, tag) not in self.present:
                self.present.add((cid, tag))
                self.tags.append((cid, tag))
                self.events.append((cid, events.TAG_ADDED, batch.now, {"tag": tag}))
                changed = True
        if changed:
            report.updated += 1
        else:
            report.unchanged += 1
        return changed

    def _consent(
        self, line: int, wanted: import_rules.RowConsent, contact: dict[str, Any], new: dict[str, Any]
    ) -> None:
        """set_consent's rule: an opted-out contact is kept so; a change is logged with its proof."""
        batch, state = self.batch, wanted.state
        assert state is not None
        if contact["consent"] == events.OPTED_OUT and state != events.OPTED_OUT:
            batch.report.kept_opted_out += 1
            return
        basis = (wanted.basis or "opt_in") if state == events.OPTED_IN else None
        if contact["consent"] == state and contact["consent_basis"] == basis:
            return
        new["consent"], new["consent_basis"] = state, basis
        proof: dict[str, Any] = {"file": batch.path.name, "line": line, "command": "contacts import"}
        if wanted.from_cell:
            proof["column"] = "consent"
        self.consents.append((contact["id"], state, basis, proof))
        data = {"from": contact["consent"], "to": state, "basis": basis, "source": batch.source}
        self.events.append((contact["id"], events.CONSENT_CHANGED, batch.now, data))

    def write(self, store: Store) -> None:
        """The planned changes, one statement per kind (inside the import's transaction)."""
        now = self.batch.now
        store.update_contact_columns(_COLUMNS, self.columns, now)
        store.set_imported_stages(self.imported, now)
        store.log_consents(self.consents, now, self.batch.source)
        store.add_new_tags(self.tags, now)
        stages = [e for e in self.events if e[1] == events.STAGE_CHANGED]
        record_events(store, stages, source="import", now=now)
        record_events(
            store, [e for e in self.events if e[1] != events.STAGE_CHANGED], source=self.batch.source, now=now
        )
