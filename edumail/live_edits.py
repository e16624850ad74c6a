"""Sequences edited while journeys are on their way (SPEC 12).

A journey remembers the id of the last step it ran. The store keeps, for each
sequence, its steps as the last run ran them ([id, timing] pairs); comparing
that snapshot with the file tells what changed:
- a removed step: journeys go on with the step that now follows the last one
  they ran (or complete if none);
- a step inserted before where a journey stands never runs for it, one
  inserted after runs when reached; a renamed id is a removal plus an insertion;
- a changed wait/at/time re-times the steps not yet run, at the next run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edumail.sequence_model import Sequence, Step

if TYPE_CHECKING:
    from edumail.store import Store

Snapshot = list[list[str]]


def timing(step: Step) -> str:
    """What decides when a step runs, as text (wait, at, time)."""
    parts = []
    if step.wait is not None:
        parts.append(f"wait {step.wait}")
    if step.at is not None:
        parts.append(f"at {step.at.text}")
    if step.time is not None:
        parts.append(f"time {step.time[0]:02d}:{step.time[1]:02d}")
    return ", ".join(parts)


def snapshot(sequence: Sequence) -> Snapshot:
    return [[step.id, timing(step)] for step in sequence.steps]


def anchor(old: Snapshot | None, ids: list[str], last: str | None) -> str | None:
    """Where a journey stands in the new file when the last step it ran is no longer there.

    It goes on with the first step that followed `last` in the old order and is
    still in the file; what the file now has between that step and the ones
    before (a renamed `last`, a step put in its place) stands where the journey
    already was, so it never runs. Returns the id to count as the last one run
    (None: the journey goes on with the first step); `last` unchanged when the
    old order does not know it either.
    """
    if last is None or last in ids:
        return last
    old_ids = [step_id for step_id, _ in old or []]
    if last not in old_ids:
        return last
    following = [step_id for step_id in old_ids[old_ids.index(last) + 1 :] if step_id in ids]
    if not following:
        return ids[-1] if ids else None
    position = ids.index(following[0])
    return ids[position - 1] if position else None


def next_index(ids: list[str], last: str | None) -> int:
    """The position of the next step to run after `last` (len(ids): none left)."""
    if last is None:
        return 0
    return ids.index(last) + 1 if last in ids else len(ids)


def fallback_last(ids: list[str], ran: set[str]) -> str | None:
    """With no snapshot to compare: the latest step of the file this journey ran (from its log)."""
    done = [step_id for step_id in ids if step_id in ran]
    return done[-1] if done else None


def changes(store: Store, sequence: Sequence, old: Snapshot | None) -> list[str]:
    """What an edit does to the journeys in flight, one line per change that touches some."""
    if old is None:
        return []
    new = snapshot(sequence)
    if new == old:
        return []
    waiting = store.waiting_on(sequence.name)
    if not waiting:
        return []
    old_ids, ids = [i for i, _ in old], [i for i, _ in new]
    lines = []
    for last, count in sorted(waiting.items(), key=lambda item: (item[0] is not None, item[0] or "")):
        before = old_ids[next_index(old_ids, last)] if next_index(old_ids, last) < len(old_ids) else None
        here = anchor(old, ids, last)
        after = ids[next_index(ids, here)] if next_index(ids, here) < len(ids) else None
        what = _what(before, after, dict(map(tuple, old)), dict(map(tuple, new)))  # type: ignore[arg-type]
        if what:
            where = f"after {last!r}" if last else "before their first step"
            lines.append(f"{sequence.file}: {_n(count)} {where}: {what}")
    return lines


def notes(store: Store, loaded: list[Sequence], broken: set[str]) -> list[str]:
    """For `check`: what the edits since the last run will do to the journeys in flight."""
    seen = store.sequences_seen()
    lines = []
    for sequence in loaded:
        row = seen.get(sequence.name)
        if row is not None:
            lines.extend(changes(store, sequence, row["steps"]))
    names = {s.name for s in loaded}
    for name, count in sorted(store.sequences_in_flight().items()):
        if name not in names and name not in broken:
            lines.append(f"sequence {name!r}: its file is gone; the next run ends its {_n(count)} (sequence removed)")
    return lines


def _what(before: str | None, after: str | None, old: dict[str, str], new: dict[str, str]) -> str:
    if before == after:
        if before is not None and old.get(before) != new.get(before):
            return f"step {before!r} re-timed ({old.get(before) or 'no timing'} -> {new.get(before) or 'no timing'})"
        return ""
    if after is None:
        return f"step {before!r} removed: they complete"
    if before is None:
        return f"will run the new step {after!r}"
    if before not in new:
        return f"step {before!r} removed (or renamed): they go on with {after!r}"
    return f"will run the new step {after!r} before {before!r}"


def _n(count: int) -> str:
    return f"{count} journey{'s' if count != 1 else ''} in flight"
