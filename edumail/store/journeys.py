"""SQL for the journeys area. Methods are mixed into Store."""

from __future__ import annotations


class JourneysMixin:
    pass
