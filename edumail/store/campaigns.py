"""SQL for campaigns (`edumail send`). Mixed into Store."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store


class CampaignsMixin:
    def campaign_by_name(self: Store, name: str) -> dict[str, Any] | None:
        return self.row("SELECT * FROM campaigns WHERE name = ?", (name,))

    def insert_campaign(
        self: Store,
        name: str,
        template: str,
        audience: dict[str, Any],
        scheduled_at: datetime,
        now: datetime,
        state: str,
    ) -> int:
        cursor = self.execute(
            "INSERT INTO campaigns (name, template, audience, scheduled_at, created_at, state)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, template, json.dumps(audience, ensure_ascii=False, sort_keys=True), scheduled_at, now, state),
        )
        return int(cursor.lastrowid or 0)

    def settle_campaigns(self: Store) -> None:
        """Campaigns with no mail left queued or sending are done."""
        self.execute(
            "UPDATE campaigns SET state = 'done' WHERE state != 'done' AND EXISTS (SELECT 1 FROM mails m WHERE"
            " m.campaign_id = campaigns.id) AND NOT EXISTS (SELECT 1 FROM mails m WHERE m.campaign_id = campaigns.id"
            " AND m.state IN ('queued', 'sending'))"
        )

    def campaign_contact_ids(self: Store, campaign_id: int) -> set[int]:
        return {r[0] for r in self.execute("SELECT contact_id FROM mails WHERE campaign_id = ?", (campaign_id,))}
