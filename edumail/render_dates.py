"""The `date` and `datetime` template filters: babel, the project locale, the contact's or project's timezone."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import babel.dates
import jinja2
from babel import Locale

from edumail.clock import parse_iso, zone
from edumail.errors import InputError
from edumail.render_sandbox import FilterError
from edumail.settings import Settings
from edumail.typography import tie_date


class DateFormatter:
    """Formats dates for one project; caches zones and formatted values (babel costs ~20 µs a call)."""

    def __init__(self, settings: Settings) -> None:
        self.tz = settings.tz
        self.locale = Locale.parse(settings.locale)
        self._zones: dict[str, ZoneInfo] = {}
        self._formatted: dict[tuple[Any, ...], str] = {}
        french = self.french = self.locale.language == "fr"
        self.date_format = "EEEE d MMMM y" if french else self.locale.date_formats["full"].pattern
        self.datetime_format = (
            "EEEE d MMMM y 'à' H'h'mm" if french else f"{self.date_format}, {self.locale.time_formats['short'].pattern}"
        )

    def format(self, context: Any, value: Any, pattern: str | None, tz: str | None, with_time: bool) -> str:
        """`value` as text; `tz` given, or the contact's in `context`, or the project's."""
        what = "datetime" if with_time else "date"
        where = self._zone(tz, context, what)
        # Many mails show the same session dates: formatting is cached.
        key = (value, pattern, where.key, with_time) if isinstance(value, (str, date)) else None
        if key is not None:
            found = self._formatted.get(key)
            if found is not None:
                return found
        text = self._format(value, pattern, where, what, with_time)
        if self.french:
            text = tie_date(text)
        if key is not None:
            if len(self._formatted) > 10_000:
                self._formatted.clear()
            self._formatted[key] = text
        return text

    def _format(self, value: Any, pattern: str | None, where: ZoneInfo, what: str, with_time: bool) -> str:
        moment = self._moment(value, what)
        if isinstance(moment, datetime):
            pattern = pattern or (self.datetime_format if with_time else self.date_format)
        elif with_time:
            pattern = pattern or self.datetime_format
            moment = datetime.combine(moment, time(), tzinfo=where)
        else:
            pattern = pattern or self.date_format
        try:
            if isinstance(moment, datetime):
                return babel.dates.format_datetime(moment, pattern, tzinfo=where, locale=self.locale)
            return babel.dates.format_date(moment, pattern, locale=self.locale)
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise FilterError(f"{what}: cannot format {value!r} as {pattern!r} ({exc})") from None

    def _moment(self, value: Any, what: str) -> date | datetime:
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=self.tz)
        if isinstance(value, date):
            return value
        if value is None or (isinstance(value, str) and not value.strip()):
            raise FilterError(f"{what}: no date given (empty value; write `| default(...)` before `| {what}`)")
        if not isinstance(value, str):
            raise FilterError(f"{what}: expected a date, got {type(value).__name__} {value!r}")
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return parse_iso(text, self.tz)
        except (ValueError, InputError):
            raise FilterError(f"{what}: {value!r} is not a date (expected ISO 8601 such as 2026-12-01T09:00)") from None

    def _zone(self, tz: str | None, context: Any, what: str) -> ZoneInfo:
        name = tz
        if name is None:
            contact = context.get("contact") if context is not None else None
            name = contact.get("timezone") if isinstance(contact, dict) else None
            if not name:
                return self.tz
        found = self._zones.get(name)
        if found is None:
            try:
                found = self._zones[name] = zone(str(name))
            except InputError as exc:
                if tz is None:  # a contact's bad timezone must not block their mail
                    return self.tz
                raise FilterError(f"{what}: {exc}") from None
        return found
