"""The demo's calendar: sessions imported from a spreadsheet, then one moved and one cancelled mid-month.

What each change did is read back from the store (journeys re-timed or ended,
notices sent), so the demo's summary says what the real engine did.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from edumail import clock, demo_data, sessions
from edumail.project import Project
from edumail.store import Store

MOVE_BY = timedelta(days=7)
CANCEL_REASON = "formateur indisponible"
_PENDING = "SELECT id, sequence, due_at FROM journeys WHERE session_id = ? AND state = 'active'"
_ENDED = "SELECT COUNT(*) AS n FROM journeys WHERE session_id = ? AND end_reason = 'session cancelled'"
_NOTICES = (
    "SELECT COUNT(*) AS n FROM mails m JOIN journeys j ON j.id = m.journey_id"
    " WHERE j.session_id = ? AND m.template = ? AND m.state = 'sent'"
)


def import_calendar(project: Project, calendar: list[demo_data.DemoSession], now: datetime) -> str:
    """Write the sessions as the centre's spreadsheet exports them, and import it with the real importer."""
    path = project.root / "sessions.csv"
    with path.open("w", encoding="cp1252", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["id", "formation", "début", "fin", "lieu", "formateur", "lien_enquete", "lien_evaluation"])
        for s in calendar:
            writer.writerow(
                [
                    s.id,
                    s.formation,
                    f"{s.first_day:%d/%m/%Y} 09:00",
                    f"{s.last_day:%d/%m/%Y} 17:00",
                    f"Centre Horizon {s.city}, salle {len(s.id) % 8 + 1}",
                    s.trainer,
                    f"{demo_data.SITE}/avis",
                    f"{demo_data.SITE}/evaluation",
                ]
            )
    report = sessions.import_sessions(project.store(), path, now=now, tz=project.settings.tz)
    return f"{len(report.changes)} sessions imported from sessions.csv"


@dataclass
class Calendar:
    """The two changes of the month: when each happens, and what it did."""

    move_at: datetime | None
    cancel_at: datetime | None
    lines: list[str] = field(default_factory=list)
    moved: str | None = None
    cancelled: str | None = None
    _before: dict[int, Any] = field(default_factory=dict)

    def change(self, store: Store, now: datetime, tz: Any) -> None:
        """Before a run: move or cancel the busiest session still to come, when its time has come."""
        if self.move_at is not None and now >= self.move_at:
            self.move_at = None
            target = _busiest(store, now, exclude=self.cancelled)
            if target is not None:
                self._before = {j["id"]: j["due_at"] for j in store.rows(_PENDING, (target["id"],))}
                new = {"start": target["start"] + MOVE_BY, "end": target["end"] + MOVE_BY}
                sessions.upsert(store, target["id"], new, now=now, source="demo")
                self.moved = target["id"]
                self.lines.append(
                    f"session {target['id']} moved on {_day(now, tz)} from {_day(target['start'], tz)} "
                    f"to {_day(new['start'], tz)}"
                )
        if self.cancel_at is not None and now >= self.cancel_at:
            self.cancel_at = None
            target = _busiest(store, now, exclude=self.moved)
            if target is not None:
                sessions.cancel(store, target["id"], reason=CANCEL_REASON, now=now, source="demo")
                self.cancelled = target["id"]
                self.lines.append(f"session {target['id']} cancelled on {_day(now, tz)} ({CANCEL_REASON})")

    def observe(self, store: Store) -> None:
        """After the run that followed the move: which pending steps it re-timed."""
        if not self._before or self.moved is None:
            return
        retimed = Counter(
            j["sequence"]
            for j in store.rows(_PENDING, (self.moved,))
            if j["id"] in self._before and j["due_at"] != self._before[j["id"]]
        )
        self._before = {}
        detail = ", ".join(f"{name} {count}" for name, count in sorted(retimed.items()))
        self.lines[0] += f": {sum(retimed.values())} pending steps re-timed ({detail or 'none'})"

    def summary(self, store: Store) -> list[str]:
        """The lines, with the journeys the cancellation ended and the notices each change sent."""
        found = list(self.lines)
        for index, session_id in enumerate(s for s in (self.moved, self.cancelled) if s):
            notice = "changement-de-date" if session_id == self.moved else "session-annulee"
            if session_id == self.cancelled:
                ended = _count(store, _ENDED, (session_id,))
                found[index] += f": {ended} session journeys ended"
            found[index] += f", {_count(store, _NOTICES, (session_id, notice))} {notice} sent"
        return found


def plan(start: datetime, days: int) -> Calendar:
    """A move in the middle of the month, a cancellation the next day (a short demo has neither)."""
    if days < 4:
        return Calendar(None, None)
    middle = start + timedelta(days=days // 2, hours=10)
    return Calendar(middle, middle + timedelta(days=1))


def _busiest(store: Store, now: datetime, exclude: str | None) -> dict[str, Any] | None:
    """The planned session with the most learners that starts between 2 and 12 days from now."""
    counts = store.session_learner_counts()
    upcoming = [
        s
        for s in store.list_sessions(since=now + timedelta(days=2))
        if s["status"] == sessions.PLANNED and s["id"] != exclude and s["start"] <= now + timedelta(days=12)
    ]
    upcoming = [s for s in upcoming if counts.get(s["id"])]
    return max(upcoming, key=lambda s: (counts[s["id"]], s["id"]), default=None)


def _count(store: Store, sql: str, params: tuple[Any, ...]) -> int:
    found = store.row(sql, params)
    return int(found["n"]) if found else 0


def _day(moment: datetime, tz: Any) -> str:
    return clock.show(moment, tz)
