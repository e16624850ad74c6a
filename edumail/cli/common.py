"""What every CLI module shares: consoles, the current project, argument parsing."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edumail import clock
from edumail.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from edumail.project import Project


class _LazyConsole:
    """A rich Console made on first use: `edumail --help` never loads rich (start-up, issue 17)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


console = _LazyConsole(highlight=False)
err_console = _LazyConsole(stderr=True, highlight=False)


class _State:
    project_dir: Path | None = None
    project: Project | None = None


state = _State()


def current_project() -> Project:
    """The project named by --project / EDUMAIL_PROJECT / the current directory."""
    if state.project is None:
        from edumail import project as project_module

        state.project = project_module.load(state.project_dir)
    return state.project


def reset() -> None:
    """Forget the loaded project (between invocations in one process, e.g. tests)."""
    if state.project is not None:
        state.project.close()
    state.project = None
    state.project_dir = None


def parse_pairs(pairs: list[str] | None, option: str = "--data") -> dict[str, Any]:
    """`key=value` arguments -> dict."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} {pair!r}: expected key=value")
        result[key.strip()] = value
    return result


def parse_at(value: str | None, project: Project, option: str = "--at") -> datetime:
    """An ISO 8601 option in the project timezone, or now."""
    if value is None:
        return clock.now()
    try:
        return clock.parse_iso(value, project.settings.tz)
    except InputError as exc:
        raise InputError(f"{option}: {exc}") from None


def finish(done_all: bool) -> None:
    """The exit status rule (SPEC 11), in one place: 0 only when everything asked was done, else 1.

    Call it last, after printing what was done and what needs a look.
    """
    import typer

    if not done_all:
        raise typer.Exit(1)


INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C (128 + SIGINT)


class Interruption:
    """`stop` is handed to the work (delivery sets it too, when it halts); `signalled` says a person asked."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signalled = False


@contextmanager
def interruptible() -> Iterator[Interruption]:
    """Ctrl-C (SIGINT) or SIGTERM sets `stop`: the mails in flight finish, then the command says what is left.

    A second signal interrupts at once (KeyboardInterrupt), as a user pressing Ctrl-C twice expects.
    """
    interruption = Interruption()

    def handler(signum: int, frame: Any) -> None:
        if interruption.signalled:
            raise KeyboardInterrupt
        interruption.signalled = True
        interruption.stop.set()
        err_console.print("Stopping after the mails in flight...", soft_wrap=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interruption
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def escape(value: object) -> str:
    """A user value (a name, an address, a server reply) printed as written, never read as Rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(str(value))
