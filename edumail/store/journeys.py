"""SQL for the journeys area. Methods are mixed into Store."""

from __future__ import annotations


from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store


class JourneysMixin:
    def journey_steps_of(self: "Store", contact_id: int) -> list[dict[str, Any]]:
        """Every journey_log entry of a contact, with its sequence name."""
        return self.rows(
            "SELECT j.sequence, l.step_id, l.at, l.outcome, l.reason, l.mail_id FROM journey_log l"
            " JOIN journeys j ON j.id = l.journey_id WHERE j.contact_id = ? ORDER BY l.at, l.id",
            (contact_id,),
        )
