"""The typer application: parse, call one core function, print.

Errors: any EdumailError becomes a red one-line message and exit status 1.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from edumail import __version__, dbfault
from edumail.cli import coercion, lazy
from edumail.cli.common import err_console, escape, reset, state
from edumail.errors import EdumailError

coercion.install()  # str, int, bool, Path and list[str] options converted without pydantic


def _fail(message: str) -> NoReturn:
    for line in message.splitlines() or ["error"]:
        err_console.print(f"[red]error:[/red] {escape(line)}", markup=True, soft_wrap=True)
    raise typer.Exit(1) from None


class _Group(TyperGroup):
    """Turns EdumailError into a message and exit 1, wherever it is raised."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.commands = lazy.LazyCommands(self.commands, lambda name: lazy.build(app, name))

    def list_commands(self, ctx: Any) -> list[str]:
        """In the order a centre meets them, without importing them."""
        return [*lazy.COMMANDS, *(n for n in dict.keys(self.commands) if n not in lazy.COMMANDS)]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """`edumail --help`'s list, from the table of commands (lazy.py): no command module is imported."""
        from gettext import gettext as _

        from typer._click.utils import make_default_short_help

        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [
            (n, make_default_short_help(lazy.COMMANDS[n][1], limit))
            if n in lazy.COMMANDS
            else (n, self.commands[n].get_short_help_str(limit))
            for n in names
        ]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EdumailError as exc:
            _fail(str(exc))
        except sqlite3.DatabaseError as exc:  # a fault of the file or the disk, not of the user's input
            holder = (
                dbfault.lock_holders(state.project.database_path) if state.project and dbfault.is_busy(exc) else None
            )
            _fail(dbfault.describe(exc, holder=holder))
        except KeyboardInterrupt:  # Ctrl-C pressed (twice during a send): what was committed stays, no traceback
            err_console.print(
                "Interrupted: what was done is saved and the rest is untouched (mails not sent stay queued for "
                "the next `edumail run`; `edumail outbox` shows them).",
                soft_wrap=True,
            )
            raise typer.Exit(130) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}; check the path, its permissions and the free disk space")
        finally:
            reset()


app = typer.Typer(
    cls=_Group,
    help="E-mail automation for training centres: sequences, campaigns, tracking, consent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edumail {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    project: Path | None = typer.Option(
        None, "--project", "-p", envvar="EDUMAIL_PROJECT", help="Project folder (default: the current directory)."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """E-mail automation for training centres: sequences, campaigns, tracking, consent."""
    state.project_dir = project


def main() -> None:
    """Console-script entry point."""
    app(prog_name="edumail")
