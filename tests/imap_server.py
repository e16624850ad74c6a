"""A real IMAP server for the `inbox fetch` tests: Debian's dovecot, on a loopback port.

The fixture writes a minimal dovecot.conf (plaintext auth, no TLS, one
passwd-file user, a Maildir) and runs `dovecot -F -c CONF`. Run as root (CI),
dovecot refuses to serve mail as uid 0, so the mail user is the `dovecot`
system user and the files live in a world-traversable temporary folder; run as
a normal user, everything runs as that user in pytest's tmp_path.
"""

from __future__ import annotations

import getpass
import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ports import free_port

USER = "inscriptions@centre.example"
PASSWORD = "correct horse battery staple"
DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)

CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
auth_mechanisms = plain login
auth_failure_delay = 0
disable_plaintext_auth = no
default_internal_user = {system_user}
default_internal_group = {system_group}
default_login_user = {system_user}
first_valid_uid = {uid}
last_valid_uid = 0
mail_location = maildir:{root}/mail/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass
class ImapServer:
    """A running dovecot: where it listens, who may log in, and how to put mail in."""

    host: str
    port: int
    user: str
    password: str

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message in the mailbox (IMAP APPEND, as a mail client would)."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            conn.login(self.user, self.password)
            if folder != "INBOX":
                conn.create(folder)
            status, data = conn.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
            assert status == "OK", data
        finally:
            conn.logout()


def _identity() -> tuple[str, str, int, int]:
    """(system user and group for dovecot's own processes, mail uid, mail gid)."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam("dovecot")
        return "dovecot", grp.getgrgid(entry.pw_gid).gr_name, entry.pw_uid, entry.pw_gid
    return getpass.getuser(), grp.getgrgid(os.getgid()).gr_name, os.getuid(), os.getgid()


def _wait_for(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dovecot exited with {proc.returncode}: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)  # waiting for a real server process to come up, not for simulated time
    pytest.fail(f"dovecot did not answer on 127.0.0.1:{port}: {log.read_text() if log.exists() else ''}")


@pytest.fixture(name="imap_server")
def imap_server_fixture(tmp_path: Path) -> Iterator[ImapServer]:
    """A dovecot IMAP server on a free loopback port with one user and an empty Maildir."""
    if DOVECOT is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd; .ci/run installs it in CI)")
    system_user, system_group, uid, gid = _identity()
    root = Path(tempfile.mkdtemp(prefix="edumail-imap-")) if os.geteuid() == 0 else tmp_path / "dovecot"
    root.mkdir(exist_ok=True)
    root.chmod(0o755)
    (root / "mail" / "Maildir").mkdir(parents=True)
    if os.geteuid() == 0:
        for path in (root / "mail", root / "mail" / "Maildir"):
            os.chown(path, uid, gid)
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{root}/mail::\n", encoding="utf-8")
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(
        CONF.format(root=root, port=port, system_user=system_user, system_group=system_group, uid=min(uid, 100)),
        encoding="utf-8",
    )
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(port, proc, root / "dovecot.log")
        yield ImapServer("127.0.0.1", port, USER, PASSWORD)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if os.geteuid() == 0:
            shutil.rmtree(root, ignore_errors=True)
