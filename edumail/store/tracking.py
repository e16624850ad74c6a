"""SQL for the tracking area. Methods are mixed into Store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edumail.store import Store


class TrackingMixin:
    def mail_opened(self: "Store", mail_id: int) -> bool:
        """A human open of this mail (machine opens do not count)."""
        return self.scalar(
            "SELECT 1 FROM events WHERE mail_id = ? AND name = 'email_opened' AND machine = 0 LIMIT 1", (mail_id,)
        ) is not None

    def mail_clicks(self: "Store", mail_id: int) -> list[str]:
        """The URLs of this mail clicked by a human, in order, once each."""
        urls: list[str] = []
        for (data,) in self.execute(
            "SELECT data FROM events WHERE mail_id = ? AND name = 'email_clicked' AND machine = 0 ORDER BY at, id",
            (mail_id,),
        ):
            url = json.loads(data or "{}").get("url")
            if url and url not in urls:
                urls.append(url)
        return urls
