"""The top-level commands, each imported when it is used (start-up, issue 17).

`edumail --help` lists the commands from the table below without importing
their modules; `edumail run --once` imports `cli/engine.py` only. The table
says, for each top-level command, the modules that register it (a group may
take subcommands from several) and its one-line help, as `--help` shows it;
`tests/test_cli.py` checks it against the commands themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

# name: (modules of edumail/cli that register it, its help), in the order a centre meets them.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "init": (("project",), "Create a working project: settings, templates, sequences, example contacts."),
    "check": (("project",), "Validate settings, sequences and templates; print file:line: message for each problem."),
    "demo": (("project",), "Run a 30-day simulation on a throw-away project (no settings, no network)."),
    "contacts": (("contacts", "gdpr"), "Import, list, show and change contacts."),
    "event": (("contacts",), "Record an event for a contact."),
    "events": (("contacts",), "Import events."),
    "sessions": (("sessions",), "Training sessions: import, list, show, move, cancel."),
    "audit": (
        ("sessions",),
        "The Qualiopi proof: mails sent, delivered, read, and evaluations, per session and learner.",
    ),
    "preview": (("preview",), "Render a template exactly as it would be sent."),
    "run": (("engine",), "Run the sequences: enrol contacts, advance journeys, deliver due mail."),
    "plan": (("engine",), "Forecast what will be sent to whom and when, sending nothing."),
    "send": (("delivery",), "Send a one-off marketing campaign to matching contacts with consent."),
    "outbox": (("delivery",), "List and retry queued or failed mail."),
    "serve": (("tracking",), "Serve opens, clicks, unsubscribes and the events API."),
    "forms": (("forms",), "Public signup forms (forms/NAME.yaml)."),
    "stats": (
        ("tracking",),
        "Sent, delivered, opened, clicked, unsubscribed and bounced, per step and campaign.",
    ),
    "bounces": (("gdpr", "providers"), "Read delivery status notifications (bounces)."),
    "complaints": (("providers",), "Read spam complaints (ARF feedback reports)."),
    "inbox": (("gdpr",), "Record replies from a mailbox."),
    "providers": (("providers",), "Sending through Brevo, Mailjet, Amazon SES or Postmark."),
    "purge": (("gdpr",), "Anonymise prospects with no sign of life for 3 years (CNIL)."),
    "secret": (("hygiene",), "The project's HMAC keys (signed links): rotate them, list them by fingerprint."),
}


class LazyCommands(dict):  # type: ignore[type-arg]
    """The root group's commands: looking one up builds that one; listing them all builds them all.

    `build(name)` imports the command's modules and returns its click command. What typer, click
    and the tests do with a group's `commands` (get one, test membership, iterate) keeps working.
    """

    def __init__(self, built: dict[str, Any], build: Callable[[str], Any]) -> None:
        super().__init__(built)
        self._build = build
        self._complete = False

    def _one(self, name: object) -> None:
        if isinstance(name, str) and name in COMMANDS and not dict.__contains__(self, name):
            command = self._build(name)
            if command is not None:
                dict.__setitem__(self, name, command)

    def _all(self) -> None:
        if not self._complete:
            self._complete = True
            for name in COMMANDS:
                self._one(name)

    def get(self, name: Any, default: Any = None) -> Any:
        self._one(name)
        return dict.get(self, name, default)

    def __getitem__(self, name: Any) -> Any:
        self._one(name)
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        self._one(name)
        return dict.__contains__(self, name)

    def __iter__(self) -> Iterator[Any]:
        self._all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._all()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._all()
        return dict.keys(self)

    def values(self) -> Any:
        self._all()
        return dict.values(self)

    def items(self) -> Any:
        self._all()
        return dict.items(self)


def import_modules(name: str) -> None:
    """Import the modules that register command `name` (each registers itself on import)."""
    for module in COMMANDS[name][0]:
        importlib.import_module(f"edumail.cli.{module}")


def build(app: Any, name: str) -> Any:
    """The click command for top-level `name`, built from what its modules registered on `app`."""
    import typer.main

    import_modules(name)
    options = {"pretty_exceptions_short": app.pretty_exceptions_short, "rich_markup_mode": app.rich_markup_mode}
    for info in app.registered_commands:
        if (info.name or typer.main.get_command_name(info.callback.__name__)) == name:
            return typer.main.get_command_from_info(info, **options)
    for info in app.registered_groups:
        if info.name == name:
            return typer.main.get_group_from_info(info, suggest_commands=app.suggest_commands, **options)
    return None
