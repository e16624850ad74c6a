"""SQL for audiences: who matches a stage/tags/fields filter (sequences, segments, `send --where`).

The SQL is a prefilter that never leaves out a contact the rule accepts;
the rule itself is `Audience.matches` (conditions.py: values trimmed,
true == "true", 3.0 == "3"), which callers apply to every candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edumail.conditions import field_text

if TYPE_CHECKING:
    from edumail.conditions import Audience
    from edumail.store import Store

# Columns that the contact's template view (contacts.template_view) takes from the row, over custom fields.
_CORE = {
    "email": "c.email",
    "first_name": "c.first_name",
    "last_name": "c.last_name",
    "stage": "c.stage",
    "consent": "c.consent",
    "timezone": "c.timezone",
}
# What Python's str.strip() removes, as far as SQL TRIM needs to know (spaces, tabs, line ends, no-break space).
_SPACE = "char(32, 9, 10, 11, 12, 13, 160, 8239)"


def marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def _field_clause(key: str, want: Any) -> tuple[str, list[Any]]:
    options = want if isinstance(want, list) else [want]
    texts = sorted({field_text(o) for o in options})
    column = _CORE.get(key)
    if column is not None:
        return f"TRIM(COALESCE({column}, ''), {_SPACE}) IN ({marks(texts)})", texts
    path = f'$."{key}"'
    # Booleans, reals, lists are compared by the rule (true == "true", 3.0 == "3"), not as SQLite's text.
    clause = (
        f"(json_type(c.fields, ?) IN ('true', 'false', 'real', 'array', 'object')"
        f" OR TRIM(COALESCE(CAST(json_extract(c.fields, ?) AS TEXT), ''), {_SPACE}) IN ({marks(texts)}))"
    )
    return clause, [path, path, *texts]


def audience_sql(audience: Audience) -> tuple[str, list[Any]]:
    """A WHERE fragment on `contacts c` that every contact of the audience passes (not forgotten)."""
    clauses = ["c.forgotten_at IS NULL"]
    params: list[Any] = []
    if audience.stage:
        clauses.append(f"c.stage IN ({marks(audience.stage)})")
        params.extend(audience.stage)
    for tag in audience.tags:
        clauses.append("EXISTS (SELECT 1 FROM tags t WHERE t.contact_id = c.id AND t.tag = ?)")
        params.append(tag)
    if audience.not_tags:
        clauses.append(
            f"NOT EXISTS (SELECT 1 FROM tags t WHERE t.contact_id = c.id AND t.tag IN ({marks(audience.not_tags)}))"
        )
        params.extend(audience.not_tags)
    for key, want in audience.fields.items():
        clause, values = _field_clause(key, want)
        clauses.append(clause)
        params.extend(values)
    return " AND ".join(clauses), params


class AudienceMixin:
    def audience_contact_ids(self: Store, audience: Audience) -> list[int]:
        """Candidates for the audience, by id (confirm each with Audience.matches)."""
        where, params = audience_sql(audience)
        return [r[0] for r in self.execute(f"SELECT c.id FROM contacts c WHERE {where} ORDER BY c.id", params)]

    def audience_contacts(self: Store, audience: Audience, after: int = 0, limit: int = -1) -> list[dict[str, Any]]:
        """Candidate contact rows for the audience, by id, those after id `after` and at most `limit`
        (confirm each with Audience.matches)."""
        where, params = audience_sql(audience)
        return self.rows(
            f"SELECT c.* FROM contacts c WHERE ({where}) AND c.id > ? ORDER BY c.id LIMIT ?", [*params, after, limit]
        )
