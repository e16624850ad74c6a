"""The plain crontab forms, checked without APScheduler (start-up, issue 17).

`trigger.schedule` is validated on every load of the sequences; APScheduler's
import (with asyncio, about 35 ms) is paid only for the forms below it does
not cover. Everything `plainly_valid` accepts, APScheduler's
`CronTrigger.from_crontab` accepts too (tests/test_cron_text.py checks it);
anything else goes to APScheduler, which accepts it or words the error.
"""

from __future__ import annotations

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# minute, hour, day of month, month, day of week (APScheduler's numbering: 0 is Monday)
_FIELDS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, MONTHS),
    (0, 6, WEEKDAYS),
)


def plainly_valid(text: str) -> bool:
    """A 5-field crontab of `*`, `*/N`, `A` and `A-B` items (lists of them; month and weekday names
    in lower case), every value in range: valid for APScheduler. False: not decided here."""
    fields = text.split()
    if len(fields) != 5:
        return False
    return all(
        _item(item, low, high, names)
        for field, (low, high, names) in zip(fields, _FIELDS, strict=True)
        for item in field.split(",")
    )


def _item(item: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if item == "*":
        return True
    if item.startswith("*/"):
        step = item[2:]
        return step.isascii() and step.isdigit() and 0 < int(step) <= high - low
    first, dash, last = item.partition("-")
    if first.isascii() and first.isdigit() and (not dash or (last.isascii() and last.isdigit())):
        start, end = int(first), int(last) if dash else int(first)
        return low <= start <= end <= high
    if first in names and (not dash or last in names):
        return names.index(first) <= names.index(last if dash else first)
    return False
