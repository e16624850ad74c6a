"""Two rules of `contacts import` (SPEC 16): consent read per row, and stages edumail set are kept.

Consent: a `consent` (or `consentement`) cell overrides `--consent`, an empty
cell falls back to it; likewise a `basis` (or `base`) cell and `--basis`.

Stage: an import never moves a contact's stage back from a value edumail set
(a sequence, the CLI, a form) since the contact's last import, unless
`--overwrite-stage`. "Back" means the file still says what it said at the last
import: when the CRM has written a new stage since, the file wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edumail import events
from edumail.errors import InputError

# Header aliases (normalised: lower case, no accents) for the two consent columns.
COLUMN_ALIASES = {
    "consent": "consent",
    "consentement": "consent",
    "basis": "basis",
    "base": "basis",
    "consent_basis": "basis",
    "base_legale": "basis",
}


@dataclass(frozen=True)
class RowConsent:
    state: str | None  # None: leave an existing contact's consent alone (a new one gets unknown)
    basis: str | None
    from_cell: bool  # the row's own cell decided (else the command's option)


def check_options(consent: str | None, basis: str | None, has_column: bool) -> None:
    """--consent / --basis make sense on their own, or as defaults for a file's consent column."""
    if consent is not None and consent not in events.CONSENT_STATES:
        raise InputError(f"--consent must be one of {', '.join(events.CONSENT_STATES)}, not {consent!r}")
    if basis is not None and basis not in events.BASES:
        raise InputError(f"--basis must be one of {', '.join(events.BASES)}, not {basis!r}")
    if basis is not None and consent != events.OPTED_IN and not (consent is None and has_column):
        raise InputError("--basis goes with --consent opted_in (or with a file that has a consent column)")


def _cell(value: str | None, allowed: tuple[str, ...], column: str) -> str | None:
    text = (value or "").strip().lower().replace("-", "_").replace(" ", "_")
    if not text:
        return None
    if text not in allowed:
        raise InputError(f"{column} {value!r} is not one of {', '.join(allowed)}")
    return text


def row_consent(values: dict[str, str], consent: str | None, basis: str | None) -> RowConsent:
    """The consent this row asks for, its cells first; InputError for a cell that cannot be used."""
    cell_state = _cell(values.get("consent"), events.CONSENT_STATES, "consent")
    cell_basis = _cell(values.get("basis"), events.BASES, "basis")
    state = cell_state or consent
    if cell_basis is not None and state != events.OPTED_IN:
        shown = state or "empty"
        raise InputError(f"basis {cell_basis!r} goes with consent opted_in (this row's consent: {shown})")
    if state != events.OPTED_IN:
        return RowConsent(state, None, cell_state is not None)
    return RowConsent(state, cell_basis or basis or "opt_in", cell_state is not None or cell_basis is not None)


def keeps_stage(contact: dict[str, Any], file_stage: str) -> bool:
    """True when the import must leave the contact's stage as edumail set it."""
    current = contact.get("stage") or ""
    imported = contact.get("imported_stage")
    if not file_stage or not current or file_stage == current:
        return False
    if imported is not None and current == imported:
        return False  # the stage is still the one the last import wrote: nobody in edumail changed it
    return imported is None or file_stage == imported
