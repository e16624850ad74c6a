"""`webhook:` steps: signed JSON POSTs to an external CRM, retried with backoff.

The engine only writes a task row (in the step's transaction); this module
POSTs the due ones after the journeys have advanced, several at once, each
with a timeout, so a slow or dead endpoint never holds up anything else.
The body is signed: `X-Edumail-Signature: sha256=<hex HMAC-SHA256 of the body>`
under the project key, and `X-Edumail-Delivery` carries the task id, so a
receiver can drop the rare duplicate (a crash between its 200 and our commit).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edumail import __version__

if TYPE_CHECKING:
    from edumail.store import Store

TIMEOUT = 10.0
WORKERS = 8
# Seconds to wait after each failed attempt; after the last one the task is failed.
BACKOFF = (60, 300, 1800, 7200, 21600)


@dataclass
class WebhookReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed) for a task."""
    return json.dumps(payload["body"], ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, secret: bytes, task_id: int, timeout: float = TIMEOUT) -> str | None:
    """POST once; None on a 2xx answer, else what went wrong."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"edumail/{__version__}",
            "X-Edumail-Signature": signature(body, secret),
            "X-Edumail-Delivery": str(task_id),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - URL validated at load
            answer.read(65536)
            return None
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url}: {reason}"


def process(store: Store, secret: bytes, now: datetime, *, limit: int = 200, timeout: float = TIMEOUT) -> WebhookReport:
    """POST every due webhook task; record successes, schedule retries, fail the hopeless."""
    report = WebhookReport()
    tasks = store.due_tasks("webhook", now, limit)
    if not tasks:
        return report
    payloads = [json.loads(t["payload"]) for t in tasks]

    def attempt(item: tuple[dict[str, Any], dict[str, Any]]) -> str | None:
        task, payload = item
        return post(payload["url"], body_bytes(payload), secret, task["id"], timeout)

    with ThreadPoolExecutor(max_workers=min(WORKERS, len(tasks))) as pool:
        outcomes = list(pool.map(attempt, zip(tasks, payloads, strict=True)))
    for task, error in zip(tasks, outcomes, strict=True):
        attempts = int(task["attempts"]) + 1
        with store.transaction():
            if error is None:
                store.finish_task(task["id"], "done", attempts, task["not_before"], None)
                report.delivered += 1
            elif attempts > len(BACKOFF):
                store.finish_task(task["id"], "failed", attempts, task["not_before"], error)
                if task["journey_id"] is not None:
                    store.log_step(
                        task["journey_id"],
                        task["step_id"] or "",
                        now,
                        "failed",
                        f"webhook failed {attempts} times, giving up: {error}",
                    )
                report.failed += 1
                report.errors.append(f"gave up after {attempts} attempts: {error}")
            else:
                retry = now + timedelta(seconds=BACKOFF[attempts - 1])
                store.finish_task(task["id"], "pending", attempts, retry, error)
                report.retrying += 1
                report.errors.append(f"{error} (attempt {attempts}, retry at {retry:%Y-%m-%d %H:%M} UTC)")
    return report
