"""The one place that reads the clock, plus time parsing and formatting.

Times are stored in UTC as fixed-width ISO strings (they sort as text) and
shown in the project's timezone.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edumail.errors import InputError

UTC = UTC
_DB_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Dates outside these years are refused where they enter (SPEC 10): no stored value can overflow later.
FIRST_YEAR, LAST_YEAR = 1900, 2199
MAX_DURATION = timedelta(days=100 * 366)  # a `wait` longer than a century is a typo
_DATE_LIKE = re.compile(r"^\s*[+-]?\d{4,}-\d{2}-\d{2}([T ]|\s*$)")
_local_zone: ZoneInfo | timezone = UTC


def use_zone(tz: ZoneInfo | timezone) -> None:
    """The project's timezone: EDUMAIL_NOW without an offset is read in it (SPEC 10)."""
    global _local_zone
    _local_zone = tz


def now(tz: ZoneInfo | timezone | None = None) -> datetime:
    """The current time (aware, UTC): EDUMAIL_NOW when set (local time without offset), else the system clock."""
    value = os.environ.get("EDUMAIL_NOW")
    if value:
        try:
            return parse_iso(value, tz or _local_zone)
        except InputError as exc:
            raise InputError(f"EDUMAIL_NOW: {exc}") from None
    return datetime.now(UTC)


def zone(name: str) -> ZoneInfo:
    """A ZoneInfo for an IANA name, or an InputError saying so."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown timezone {name!r} (expected an IANA name such as Europe/Paris)") from None


def parse_iso(value: str, default_tz: ZoneInfo | timezone) -> datetime:
    """Parse ISO 8601; a value without offset is taken in `default_tz`. Returns UTC."""
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{value!r} is not an ISO 8601 date (expected e.g. 2026-12-01T09:00 or 2026-12-01)") from None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise InputError(_out_of_range(value, parsed.year))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed.astimezone(UTC)


def _out_of_range(value: object, year: int) -> str:
    return f"{value!r}: the year {year} is outside {FIRST_YEAR}-{LAST_YEAR}; check the date"


def looks_like_date(value: object) -> bool:
    """True for text that starts like an ISO date (`2026-12-01...`): event data that sequences may compute with."""
    return isinstance(value, str) and bool(_DATE_LIKE.match(value))


def check_date_text(value: str) -> None:
    """Refuse ISO date text outside the allowed years; other text is left alone."""
    match = re.match(r"^\s*([+-]?\d{4,})-", value)
    if match and not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR:
        raise InputError(_out_of_range(value, int(match.group(1))))


def to_db(moment: datetime) -> str:
    """UTC text for the store; sorts correctly as text."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    # Same text as strftime(_DB_FORMAT), several times faster (the engine and imports write many).
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_db(text: str) -> datetime:
    """The inverse of to_db."""
    # fromisoformat reads the _DB_FORMAT text four times faster than strptime.
    return datetime.fromisoformat(text[:-1] if text.endswith("Z") else text).replace(tzinfo=UTC)


def parse_duration(value: object) -> timedelta:
    """`30m`, `24h`, `7d`, `2w` (also `45s`) -> timedelta."""
    match = _DURATION.match(str(value))
    if not match:
        raise InputError(f"{value!r} is not a duration (expected a number and a unit: 30m, 24h, 7d, 2w)")
    amount, unit = match.groups()
    try:
        duration = timedelta(**{_UNITS[unit]: int(amount)})
    except OverflowError:
        duration = MAX_DURATION * 2
    if duration > MAX_DURATION:
        raise InputError(f"{value!r} is longer than a century; check the number")
    return duration


def local(moment: datetime, tz: ZoneInfo | timezone) -> datetime:
    """The same instant in `tz`."""
    return moment.astimezone(tz)


def show(moment: datetime, tz: ZoneInfo | timezone) -> str:
    """A short human form in `tz`: 2026-11-22 10:46."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def shift(moment: datetime, delta: timedelta, tz: ZoneInfo | timezone) -> datetime:
    """`moment + delta`, counting whole days (d, w) on the local calendar of `tz`.

    "1d later" keeps the local wall-clock time across a summer-time change;
    hours and minutes (h, m) stay exact durations.
    """
    days, rest = divmod(delta, timedelta(days=1))
    if rest or not days:
        return moment + delta
    wall = moment.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
    return wall.replace(tzinfo=tz).astimezone(UTC)


def at_local_time(moment: datetime, hour_minute: tuple[int, int], tz: ZoneInfo | timezone) -> datetime:
    """That day (in `tz`) at that local wall-clock time, in UTC; right across DST changes."""
    day = moment.astimezone(tz).date()
    return datetime.combine(day, time(*hour_minute), tzinfo=tz).astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """A time in JSON output and exports: UTC ISO 8601 with microseconds and Z (2026-12-01T08:00:00.000000Z)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def json_default(value: object) -> str:
    """`default=` for json.dumps: times as iso_utc, anything else as its text."""
    return iso_utc(value) if isinstance(value, datetime) else str(value)
