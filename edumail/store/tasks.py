"""SQL for deferred tasks (webhook POSTs of sequence steps). Mixed into Store."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edumail.store import Store


class TasksMixin:
    def add_task(
        self: Store,
        kind: str,
        payload: dict[str, Any],
        journey_id: int | None,
        step_id: str | None,
        not_before: datetime,
    ) -> int:
        cursor = self.execute(
            "INSERT INTO tasks (kind, payload, journey_id, step_id, not_before) VALUES (?, ?, ?, ?, ?)",
            (
                kind,
                json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str),
                journey_id,
                step_id,
                not_before,
            ),
        )
        return int(cursor.lastrowid or 0)

    def due_tasks(self: Store, kind: str, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT * FROM tasks WHERE state = 'pending' AND not_before <= ? AND kind = ? ORDER BY"
            " not_before, id LIMIT ?",
            (now, kind, limit),
        )

    def pending_tasks(self: Store, kind: str) -> int:
        return int(self.scalar("SELECT COUNT(*) FROM tasks WHERE state = 'pending' AND kind = ?", (kind,)) or 0)

    def finish_task(
        self: Store, task_id: int, state: str, attempts: int, not_before: datetime, error: str | None
    ) -> None:
        self.execute(
            "UPDATE tasks SET state = ?, attempts = ?, not_before = ?, last_error = ? WHERE id = ?",
            (state, attempts, not_before, error, task_id),
        )

    def task(self: Store, task_id: int) -> dict[str, Any] | None:
        return self.row("SELECT * FROM tasks WHERE id = ?", (task_id,))
