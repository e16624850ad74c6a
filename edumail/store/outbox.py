"""SQL for the outbox area. Methods are mixed into Store."""

from __future__ import annotations


class OutboxMixin:
    pass
