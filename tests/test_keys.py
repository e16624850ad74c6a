"""Several HMAC keys: the first signs, all verify; `secret rotate`; `serve` names its keys by fingerprint
(SPEC 20, issue 13 point 10)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from ports import free_port
from serve_support import one_click, output, serving
from test_delivery_support import NOW, add_contacts, make_project, queue
from typer.testing import CliRunner

from edumail import keys, tokens
from edumail.cli import app
from edumail.delivery import deliver
from edumail.transport.memory import MemoryTransport

FILE_KEY = "file-key-first-line-0123456789"
OLD_KEY = "file-key-older-line-0123456789"
ENV_KEY = "env-key-for-run-only-0123456789"


@pytest.fixture
def centre(tmp_path, monkeypatch):
    monkeypatch.delenv("EDUMAIL_SECRET")
    port = free_port()
    project = make_project(
        tmp_path / "centre", tracking=False, extra=f"tracking:\n  base_url: http://127.0.0.1:{port}\n"
    )
    (project.root / ".edumail-secret").write_text(f"{FILE_KEY}\n{OLD_KEY}\n", encoding="utf-8")
    return project, port


def unsubscribe_path(project, contact_id: int) -> str:
    """Send one marketing mail to the contact and return its /u/TOKEN path."""
    (mail_id,) = queue(project, [contact_id])
    memory = MemoryTransport()
    deliver(project, now=NOW, transport=memory)
    row = project.store().mail(mail_id)
    assert row["state"] == "sent"
    secret = project.secret()
    return urlsplit(tokens.unsubscribe_url("http://x", secret, mail_id)).path


def cli(project, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["--project", str(project.root), *args], env=env or {})


def test_the_first_line_signs_and_every_line_verifies(centre):
    project, _ = centre
    assert project.secret() == FILE_KEY.encode()
    assert project.secrets() == [FILE_KEY.encode(), OLD_KEY.encode()]
    old = tokens.sign(OLD_KEY.encode(), tokens.Token("u", 7))
    assert tokens.verify_any(project.secrets(), old, "u") == tokens.Token("u", 7)
    assert tokens.verify_any(project.secrets(), tokens.sign(b"stranger", tokens.Token("u", 7)), "u") is None


def test_rotate_keeps_links_already_sent_working_through_the_real_server(centre):
    project, port = centre
    first, second = add_contacts(project, 2)
    before = unsubscribe_path(project, first)
    result = cli(project, "secret", "rotate")
    assert result.exit_code == 0, result.output
    assert keys.fingerprint(FILE_KEY.encode()) in result.output
    assert FILE_KEY not in result.output and OLD_KEY not in result.output
    lines = (project.root / ".edumail-secret").read_text().split()
    assert lines[1:] == [FILE_KEY, OLD_KEY] and len(lines[0]) >= 40
    assert (project.root / ".edumail-secret").stat().st_mode & 0o777 == 0o600
    project.close()
    after = unsubscribe_path(project, second)
    assert after != before.replace(str(1), str(2))  # signed with the new key
    with serving(project.root, port) as server:
        assert one_click(port, before) == 200
        assert one_click(port, after) == 200
        assert one_click(port, "/u/u99-AAAAAAAAAAAAAAAA") == 404
    text = output(server)
    for key in [lines[0], FILE_KEY, OLD_KEY]:
        assert key not in text
        assert keys.fingerprint(key.encode()) in text
    store = project.store()
    assert store.contact(first)["consent"] == "opted_out"
    assert store.contact(second)["consent"] == "opted_out"


def test_a_serve_with_another_edumail_secret_still_honours_links_already_sent(centre):
    project, port = centre
    (contact_id,) = add_contacts(project, 1)
    path = unsubscribe_path(project, contact_id)
    project.close()
    with serving(project.root, port, {"EDUMAIL_SECRET": "a-different-key-set-for-serve-only"}) as server:
        assert one_click(port, path) == 200
    text = output(server)
    assert "a-different-key-set-for-serve-only" not in text
    assert keys.fingerprint(b"a-different-key-set-for-serve-only") in text
    assert project.store().contact(contact_id)["consent"] == "opted_out"


def test_links_signed_under_edumail_secret_still_verify_in_a_serve_without_it(centre, monkeypatch):
    project, port = centre
    (contact_id,) = add_contacts(project, 1)
    monkeypatch.setenv("EDUMAIL_SECRET", ENV_KEY)
    path = unsubscribe_path(project, contact_id)
    assert project.secret() == ENV_KEY.encode()
    lines = (project.root / ".edumail-secret").read_text().split()
    assert lines[0] == FILE_KEY and ENV_KEY in lines  # kept to verify; the file's signing key unchanged
    monkeypatch.delenv("EDUMAIL_SECRET")
    project.close()
    with serving(project.root, port):
        assert one_click(port, path) == 200
    assert project.store().contact(contact_id)["consent"] == "opted_out"


def test_secret_list_names_keys_by_fingerprint_only(centre):
    project, _ = centre
    result = cli(project, "secret", "list")
    assert result.exit_code == 0, result.output
    assert keys.fingerprint(FILE_KEY.encode()) in result.output and FILE_KEY not in result.output
