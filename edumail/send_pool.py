"""The sending workers of one delivery run, as delivery sees them: give a mail, collect results, close.

Each worker (edumail.send_worker) has one duplex pipe to delivery and holds at
most `per_worker` mails at a time: the one it hands over and the next, which it
composes while delivery records the first. Worker processes come from a fork
server (Unix) that has edumail's sending modules loaded once: a run starts its
workers in milliseconds, not one interpreter start-up each.
"""

from __future__ import annotations

import multiprocessing
import select
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edumail import send_worker
from edumail.transport import Transport

_PRELOAD = ["edumail.send_preload"]
_context: Any = None
Result = tuple[int, tuple[Any, ...], "dict[str, Any] | None"]  # worker, its answer, the mail it was about


def context() -> Any:
    """The multiprocessing context of worker processes: a fork server where there is one, else spawn."""
    global _context
    if _context is None:
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        _context = multiprocessing.get_context(method)
        if method == "forkserver":
            _context.set_forkserver_preload(_PRELOAD)
    return _context


@contextmanager
def _without_main() -> Iterator[None]:
    """A worker needs nothing from the command's __main__ (edumail's CLI, a test runner, a script), which
    multiprocessing would import again in each worker: its start-up time and memory, for nothing."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class Pool:
    """`workers` processes (transport None: each makes the settings' transport) or threads sharing `transport`."""

    def __init__(
        self,
        setup: send_worker.Setup,
        shared: send_worker.Shared,
        *,
        workers: int,
        per_worker: int,
        project: Any,
        transport: Transport | None,
    ):
        self.per_worker = per_worker
        self.channels: list[Any] = []
        self.handles: list[Any] = []
        self.held: list[dict[int, dict[str, Any]]] = []  # per worker: the mails it holds, by id
        self.alive: list[bool] = []
        self._mails: list[list[dict[str, Any]]] = [[] for _ in range(workers)]  # to send, at the next collect
        self._go: list[bool] = [False] * workers
        # Pollers made once: multiprocessing's wait() and Connection.poll() build a selector at each call.
        self._poll = select.poll()  # every worker's pipe
        self._each: list[Any] = []  # one worker's pipe, for the answers already there
        self.fds: list[int] = []
        self.workers: dict[int, int] = {}  # fd -> worker
        ctx = context() if transport is None else multiprocessing
        for i in range(workers):
            mine, theirs = ctx.Pipe(duplex=True)
            if transport is None:
                handle: Any = ctx.Process(
                    target=send_worker.process_main,
                    args=(theirs, setup, shared),
                    name=f"edumail-send-{i}",
                    daemon=True,
                )
                with _without_main():
                    handle.start()
                theirs.close()
            else:
                handle = threading.Thread(
                    target=send_worker.work,
                    args=(theirs, setup, shared, project, transport),
                    name=f"edumail-send-{i}",
                    daemon=True,
                )
                handle.start()
            self.channels.append(mine)
            self.fds.append(mine.fileno())
            self.workers[mine.fileno()] = i
            self._poll.register(mine.fileno(), select.POLLIN)
            self._each.append(select.poll())
            self._each[i].register(mine.fileno(), select.POLLIN)
            self.handles.append(handle)
            self.held.append({})
            self.alive.append(True)

    @property
    def in_flight(self) -> int:
        return sum(len(held) for held in self.held)

    def room(self) -> int:
        """How many more mails the live workers can take now."""
        return sum(self.per_worker - len(held) for held, alive in zip(self.held, self.alive, strict=True) if alive)

    def give(self, mail: dict[str, Any]) -> None:
        """To the live worker holding the fewest mails (sent with its verdict, at the next collect)."""
        i = min((i for i, alive in enumerate(self.alive) if alive), key=lambda i: len(self.held[i]))
        self.held[i][int(mail["id"])] = mail
        self._mails[i].append(mail)

    def go(self, worker: int) -> None:
        """The worker's last hand-over is recorded: it may hand over the next mail (at the next collect)."""
        self._go[worker] = True

    def flush(self) -> None:
        """Each worker's new mails and verdict, in one message."""
        for i, (go, mails) in enumerate(zip(self._go, self._mails, strict=True)):
            if (go or mails) and self.alive[i]:
                try:
                    self.channels[i].send((go, mails))
                except OSError:
                    pass  # it ended: collect() reports it
            self._go[i], self._mails[i] = False, []

    def collect(self, timeout: float) -> list[Result]:
        """The results ready within `timeout`: (worker, result, its mail); ("gone",) for a worker that ended."""
        self.flush()
        results: list[Result] = []
        for i in self._ready(timeout):
            channel = self.channels[i]
            try:
                while True:  # every answer already there, without another wait
                    result = channel.recv()
                    mail = self.held[i].pop(int(result[1]), None) if result[1] is not None else None
                    results.append((i, result, mail))
                    if not self._each[i].poll(0):
                        break
            except (EOFError, OSError):
                self.alive[i] = False
                self._poll.unregister(self.fds[i])
                results.append((i, ("gone", None), None))
        return results

    def _ready(self, timeout: float) -> list[int]:
        """The workers with something to read (an answer, or their end)."""
        return [self.workers[fd] for fd, _ in self._poll.poll(timeout * 1000)]

    def orphans(self, worker: int) -> list[dict[str, Any]]:
        """The mails a worker that ended still held."""
        held = list(self.held[worker].values())
        self.held[worker].clear()
        return held

    def exit_code(self, worker: int) -> Any:
        handle = self.handles[worker]
        if isinstance(handle, threading.Thread):
            return None
        handle.join(timeout=5)
        return handle.exitcode

    def close(self) -> None:
        """No more mails: each worker closes its connection (QUIT) and ends."""
        self.flush()
        for channel, alive in zip(self.channels, self.alive, strict=True):
            if alive:
                try:
                    channel.send(None)
                except OSError:
                    pass
        for handle in self.handles:
            handle.join(timeout=30)
            if not isinstance(handle, threading.Thread) and handle.is_alive():
                handle.kill()
                handle.join()
        for channel in self.channels:
            channel.close()
