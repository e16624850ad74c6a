"""A project folder: its settings, its store, its templates and sequences."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edumail import clock, journal, keys
from edumail import settings as settings_module
from edumail.errors import EdumailError
from edumail.settings import Settings
from edumail.store import Store


@dataclass
class Project:
    root: Path
    settings: Settings
    _store: Store | None = field(default=None, repr=False)

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def sequences_dir(self) -> Path:
        return self.root / "sequences"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    @property
    def database_path(self) -> Path:
        return self.root / self.settings.database

    def store(self) -> Store:
        """The project's store, opened (and migrated) on first use."""
        if self._store is None:
            self._store = self.open_store()
        return self._store

    def open_store(self) -> Store:
        """A new connection, for another thread; what a full disk or a long lock left in the journal is
        recorded first (edumail.journal)."""
        store = Store(self.database_path)
        if journal.pending(self.database_path):
            try:
                journal.replay(store, self.database_path)
            except BaseException:
                store.close()
                raise
        return store

    def secret(self) -> bytes:
        """The HMAC key that signs: the secret_env variable, else the first line of .edumail-secret."""
        return keys.signing_key(self.root, self.settings.tracking.secret_env)

    def secrets(self) -> list[bytes]:
        """Every key that verifies (SPEC 20), the signing one first."""
        return keys.verifying_keys(self.root, self.settings.tracking.secret_env)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def project_dir(given: Path | None = None) -> Path:
    """--project DIR, else EDUMAIL_PROJECT, else the current directory."""
    if given is not None:
        return given
    env = os.environ.get("EDUMAIL_PROJECT")
    return Path(env) if env else Path.cwd()


def load(given: Path | None = None) -> Project:
    """Load the project at `given` (or EDUMAIL_PROJECT, or the current directory)."""
    root = project_dir(given).resolve()
    if not root.is_dir():
        raise EdumailError(f"{root}: no such folder (give --project DIR or set EDUMAIL_PROJECT)")
    loaded = settings_module.load(root)
    clock.use_zone(loaded.tz)
    return Project(root=root, settings=loaded)
