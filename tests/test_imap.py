"""`edumail inbox fetch` against a real IMAP server (dovecot, see imap_server.py)."""

from __future__ import annotations

import json

from imap_server import ImapServer, imap_server_fixture  # noqa: F401  (provides the imap_server fixture)
from test_replies import add_contact, db, reply, sent_mail

NOW = "2026-11-20T10:00:00+00:00"
SECRET_ENV = {"EDUMAIL_IMAP_PASSWORD": "correct horse battery staple"}


def configure(cli, server: ImapServer, **overrides: object) -> None:
    settings = {"host": server.host, "port": server.port, "security": "none", "username": server.user, **overrides}
    block = "imap:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in settings.items())
    path = cli.root / "edumail.yaml"
    path.write_text(path.read_text(encoding="utf-8") + block, encoding="utf-8")


def replied(cli, contact_id: int) -> list[dict]:
    return [dict(e, data=json.loads(e["data"])) for e in db(cli).events_of(contact_id) if e["name"] == "replied"]


def test_fetch_records_a_reply_from_the_imap_inbox(cli, imap_server):
    cid = add_contact(cli)
    mail_id = sent_mail(cli, cid)
    imap_server.deliver(reply())
    imap_server.deliver(reply(in_reply_to="<unrelated@example.org>", message_id="<other@example.fr>"))
    configure(cli, imap_server)
    result = cli("inbox", "fetch", now=NOW, env=SECRET_ENV)
    assert result.exit_code == 0, result.output
    assert "2 messages: 1 replies recorded" in result.output
    [event] = replied(cli, cid)
    assert event["mail_id"] == mail_id and event["data"]["subject"] == "Re: Votre inscription"


def test_fetch_twice_records_each_reply_once_and_leaves_messages_unread(cli, imap_server):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    imap_server.deliver(reply())
    configure(cli, imap_server)
    cli("inbox", "fetch", now=NOW, env=SECRET_ENV)
    result = cli("inbox", "fetch", now=NOW, env=SECRET_ENV)
    assert "1 already imported" in result.output
    assert len(replied(cli, cid)) == 1
    import imaplib

    conn = imaplib.IMAP4(imap_server.host, imap_server.port)
    conn.login(imap_server.user, imap_server.password)
    conn.select("INBOX", readonly=True)
    assert conn.search(None, "UNSEEN")[1][0] == b"1"
    conn.logout()


def test_fetch_reads_the_configured_folder(cli, imap_server):
    cid = add_contact(cli)
    sent_mail(cli, cid)
    imap_server.deliver(reply(), folder="Replies")
    configure(cli, imap_server, folder="Replies")
    assert cli("inbox", "fetch", now=NOW, env=SECRET_ENV).exit_code == 0
    assert len(replied(cli, cid)) == 1


def test_wrong_password_is_one_clear_line_without_the_password(cli, imap_server):
    configure(cli, imap_server)
    result = cli("inbox", "fetch", now=NOW, env={"EDUMAIL_IMAP_PASSWORD": "not-the-password"})
    assert result.exit_code == 1
    assert f"refused login for {imap_server.user}" in result.output
    assert "EDUMAIL_IMAP_PASSWORD" in result.output
    assert "not-the-password" not in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_folder_is_a_clear_error(cli, imap_server):
    configure(cli, imap_server, folder="Nope")
    result = cli("inbox", "fetch", now=NOW, env=SECRET_ENV)
    assert result.exit_code == 1 and "no folder 'Nope'" in result.output


def test_password_comes_from_the_named_environment_variable(cli, imap_server):
    configure(cli, imap_server, password_env="MY_IMAP_SECRET")
    result = cli("inbox", "fetch", now=NOW, env={"MY_IMAP_SECRET": "correct horse battery staple"})
    assert result.exit_code == 0, result.output


def test_missing_password_variable_says_which_to_set(cli, imap_server, monkeypatch):
    monkeypatch.delenv("EDUMAIL_IMAP_PASSWORD", raising=False)
    configure(cli, imap_server)
    result = cli("inbox", "fetch", now=NOW)
    assert result.exit_code == 1 and "set the environment variable EDUMAIL_IMAP_PASSWORD" in result.output


def test_without_imap_settings_fetch_says_what_to_add(cli):
    result = cli("inbox", "fetch", now=NOW, env=SECRET_ENV)
    assert result.exit_code == 1 and "no imap: section in edumail.yaml" in result.output


def test_server_not_listening_is_a_clear_error(cli):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (cli.root / "edumail.yaml").write_text(
        (cli.root / "edumail.yaml").read_text()
        + f"imap:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  username: u\n"
    )
    result = cli("inbox", "fetch", now=NOW, env=SECRET_ENV)
    assert result.exit_code == 1 and f"127.0.0.1:{port}: cannot connect to the IMAP server" in result.output
