"""The project's HMAC keys (SPEC 20): several may verify, one signs.

`.edumail-secret` holds one key a line: the first signs, every line verifies,
so `edumail secret rotate` (a new first line) keeps every link already sent
working. `EDUMAIL_SECRET` (or the variable named by `tracking.secret_env`),
when set, signs instead of the file's first line, and the file's keys still
verify. The first time a variable's key signs, it is added to the file after
its first line: a link signed under it keeps working in a process started
without the variable, or with another value (a `serve` started from another
shell), and the file's own signing key does not change.

Keys are never printed: they are named by fingerprint (`sha256:` and the first
12 hex digits of their SHA-256).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from edumail.errors import EdumailError
from edumail.settings import SECRET_FILE


def fingerprint(key: bytes) -> str:
    """A name for a key that does not reveal it."""
    return "sha256:" + hashlib.sha256(key).hexdigest()[:12]


def read_file(path: Path) -> list[bytes]:
    """The keys of a secret file, in order (blank lines and `#` comments skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeError) as exc:
        raise EdumailError(f"{path}: cannot read the key file ({exc}); it holds one key a line") from None
    found: list[bytes] = []
    for line in text.splitlines():
        key = line.strip()
        if key and not key.startswith("#") and key.encode() not in found:
            found.append(key.encode())
    return found


def _write_file(path: Path, keys: list[bytes]) -> None:
    """Replace the key file atomically, readable by its owner only."""
    staging = path.with_name(path.name + ".tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"".join(k + b"\n" for k in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(staging, 0o600)
    os.replace(staging, path)


def verifying_keys(root: Path, env_name: str) -> list[bytes]:
    """Every key that verifies, the signing one first."""
    from_env = os.environ.get(env_name, "").strip().encode()
    from_file = read_file(root / SECRET_FILE)
    keys = [from_env] if from_env else []
    keys += [k for k in from_file if k != from_env]
    if not keys:
        raise EdumailError(
            f"no secret key: set {env_name} or create {root / SECRET_FILE} "
            "(edumail init writes one; `edumail secret rotate` makes one)"
        )
    return keys


def signing_key(root: Path, env_name: str) -> bytes:
    """The key that signs; a variable's key is first kept in the file so its links outlive the variable."""
    keys = verifying_keys(root, env_name)
    path = root / SECRET_FILE
    stored = read_file(path)
    if keys[0] not in stored:
        try:
            _write_file(path, stored[:1] + [keys[0]] + stored[1:])
        except OSError:
            pass  # a read-only project: the key still signs, its links verify wherever it is set
    return keys[0]


def rotate(root: Path) -> tuple[str, list[str]]:
    """A new signing key first in the file, the old ones kept to verify: (new fingerprint, kept fingerprints)."""
    path = root / SECRET_FILE
    old = read_file(path)
    new = secrets.token_urlsafe(32).encode()
    _write_file(path, [new, *old])
    return fingerprint(new), [fingerprint(k) for k in old]


def describe(keys: list[bytes], env_name: str) -> str:
    """One line naming the keys by fingerprint, for `serve` and `secret`: never the keys themselves."""
    source = f"{env_name}, then {SECRET_FILE}" if os.environ.get(env_name, "").strip() else SECRET_FILE
    names = ", ".join(fingerprint(k) for k in keys)
    return f"links verified with {len(keys)} key{'s' if len(keys) != 1 else ''} ({source}): {names}"
