"""Who a mail is for: the one audience rule and the one weekly marketing count.

Sequences (`audience:`, `segment:`) and `edumail send --tag/--stage/--where`
select contacts through the same query and the same rule (Audience.matches:
values trimmed, true == "true", 3.0 == "3", case and accents kept). The
weekly limit counts, for sequences and campaigns alike, the marketing mails
queued for a contact in the 7 days before now.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import contacts
from edumail.conditions import Audience

if TYPE_CHECKING:
    from edumail.store import Store

WEEK = timedelta(days=7)


def from_options(tags: list[str], stage: str | None, where: dict[str, str]) -> Audience:
    """The audience of `send --tag ... --stage ... --where k=v`."""
    return Audience(stage=(stage,) if stage is not None else (), tags=tuple(tags), fields=dict(where))


def members(store: Store, audience: Audience, chunk: int = 2_000) -> Iterator[dict[str, Any]]:
    """Contacts (not forgotten) in the audience, by id; read `chunk` rows at a time, so that a large
    audience is never held whole (issue 17: a 100,000-contact campaign)."""
    after = 0
    while True:
        found = store.audience_contacts(audience, after, chunk)
        if not found:
            return
        tags = store.tags_by_ids(c["id"] for c in found)
        yield from (c for c in found if audience.matches(c["stage"], tags[c["id"]], contacts.template_view(c, [])))
        after = found[-1]["id"]


def weekly_marketing(
    store: Store, now: datetime, contact_ids: list[int] | None = None, *, exclude_campaign: int | None = None
) -> dict[int, int]:
    """Marketing mails queued per contact in the 7 days before `now` (sequences and campaigns)."""
    return store.marketing_counts(now - WEEK, contact_ids, exclude_campaign)
