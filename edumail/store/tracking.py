"""SQL for the tracking area. Methods are mixed into Store."""

from __future__ import annotations


class TrackingMixin:
    pass
