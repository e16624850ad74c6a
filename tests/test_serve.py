"""`edumail serve` as a real process on a loopback port.

A campaign goes out through the SMTP test server; its pixel, a link and the
one-click unsubscribe are then followed over HTTP, and `stats --json` and
`contacts show --json` must tell exactly that story. A second test hits the
server with hundreds of requests while a send writes to the same database.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ports import free_port
from serve_support import serving
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401 (fixtures)
from tracking_support import BROWSER, SECRET, write_settings

from edumail import campaigns as campaigns_module
from edumail import clock, contacts_import, delivery, events, tokens
from edumail import project as project_module

SENT = "2026-11-02T10:00:00+01:00"
READ = "2026-11-02T12:30:00+01:00"
PROGRAMME = "https://centre.example/programme"
INSCRIPTION = "https://centre.example/inscription"
TEMPLATE = f"""---
subject: "{{{{ contact.first_name }}}}, la nouvelle session"
---
<html><body>
<p>Bonjour {{{{ contact.first_name }}}},</p>
<p><a href="{PROGRAMME}">Voir le programme</a> ou <a href="{INSCRIPTION}">s'inscrire</a>.</p>
</body></html>
"""


@contextmanager
def running_server(root: Path, port: int, now: str) -> Iterator[subprocess.Popen[bytes]]:
    """`edumail serve` in a subprocess, once /healthz answers; stopped afterwards."""
    with serving(root, port, {"EDUMAIL_SECRET": SECRET.decode(), "EDUMAIL_NOW": now}) as process:
        yield process


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> Answer:
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"User-Agent": BROWSER, **(headers or {})})
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        if connection is None:
            conn.close()


def html_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no html part")


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def centre(project_dir: Path, port: int, smtp_server: SmtpTestServer) -> Path:  # noqa: F811
    write_settings(project_dir, f"tracking:\n  base_url: http://127.0.0.1:{port}\n" + smtp_server.settings_yaml())
    (project_dir / "templates" / "offre.html").write_text(TEMPLATE, encoding="utf-8")
    (project_dir / "contacts.csv").write_text("email,prenom,nom\nlea@example.org,Léa,Martin\n", encoding="utf-8")
    return project_dir


def test_a_sent_mail_is_opened_clicked_and_unsubscribed_over_http(
    cli,
    centre: Path,
    port: int,
    smtp_server: SmtpTestServer,  # noqa: F811
) -> None:
    assert (
        cli(
            "contacts",
            "import",
            str(centre / "contacts.csv"),
            "--consent",
            "opted_in",
            "--source",
            "form",
            now="2026-11-01T09:00",
        ).exit_code
        == 0
    )
    sent = cli("send", "offre", "--name", "offre-novembre", now=SENT)
    assert sent.exit_code == 0, sent.output
    [message] = smtp_server.parsed()
    body = html_of(message)
    pixel = re.search(rf'src="http://127\.0\.0\.1:{port}(/o/[^"]+\.gif)"', body)
    clicks = re.findall(rf'href="http://127\.0\.0\.1:{port}(/c/[^"]+)"', body)
    unsubscribe = re.search(r"<(http://[^>]+/u/[^>]+)>", message["List-Unsubscribe"])
    assert pixel and len(clicks) == 2 and unsubscribe
    assert message["List-Unsubscribe-Post"] is None  # http:// base_url: RFC 8058 one-click needs https

    with running_server(centre, port, READ):
        opened = request(port, "GET", pixel.group(1))
        assert opened.status == 200 and opened.headers["content-type"] == "image/gif"
        clicked = request(port, "GET", clicks[0])
        assert clicked.status == 302 and clicked.headers["location"] == PROGRAMME
        forged = request(port, "GET", clicks[0][:-3] + "AAA")
        assert forged.status == 404 and "location" not in forged.headers
        page = request(port, "GET", urlsplit(unsubscribe.group(1)).path)
        assert page.status == 200 and "Centre de formation Exemple" in page.body.decode()
        done = request(
            port,
            "POST",
            urlsplit(unsubscribe.group(1)).path,
            body=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status == 200 and "location" not in done.headers

    stats = json.loads(cli("stats", "--json").stdout)
    [campaign] = stats["campaigns"]
    assert campaign["name"] == "offre-novembre"
    assert {k: campaign[k] for k in ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced")} == {
        "sent": 1,
        "delivered": 1,
        "opened": 1,
        "clicked": 1,
        "unsubscribed": 1,
        "bounced": 0,
    }
    assert (campaign["open_rate"], campaign["click_rate"], campaign["unsubscribe_rate"]) == (1.0, 1.0, 1.0)

    shown = cli("contacts", "show", "lea@example.org", "--json")
    assert shown.exit_code == 0, shown.output
    story = json.loads(shown.stdout)
    assert story["contact"]["consent"] == events.OPTED_OUT
    last = story["consent_log"][-1]
    assert last["consent"] == events.OPTED_OUT and last["source"] == "unsubscribe link"
    assert last["proof"]["ip"] == "127.0.0.1" and last["proof"]["user_agent"] == BROWSER
    assert last["proof"]["message_id"] == message["Message-ID"]
    [mail] = [item for item in story["timeline"] if item["kind"] == "mail"]
    assert mail["status"] == "sent" and mail["subject"] == "Léa, la nouvelle session"
    assert mail["opened"] is True and mail["clicked"] == [PROGRAMME]
    names = [item["name"] for item in story["timeline"] if item["kind"] == "event"]
    assert names.index("email_sent") < names.index("email_opened") < names.index("email_clicked")
    assert names.count("unsubscribed") == 1 and names.count("email_opened") == 1

    text = cli("contacts", "show", "lea@example.org").stdout
    assert "opened" in text and PROGRAMME in text and "unsubscribe link" in text


def test_serve_answers_hundreds_of_requests_while_a_send_runs(cli, project_dir: Path, port: int) -> None:
    write_settings(project_dir, f"tracking:\n  base_url: http://127.0.0.1:{port}\n")
    (project_dir / "templates" / "offre.html").write_text(TEMPLATE, encoding="utf-8")
    rows = "".join(f"c{i}@example.org,C{i},X\n" for i in range(300))
    (project_dir / "contacts.csv").write_text("email,prenom,nom\n" + rows, encoding="utf-8")
    project = project_module.load(project_dir)
    store = project.store()
    now = clock.parse_iso(SENT, clock.UTC)
    contacts_import.import_contacts(store, project_dir / "contacts.csv", now=now, consent="opted_in", source="form")
    # a first campaign already out: the mails the clients open and click
    campaigns_module.create_campaign(project, "offre", now=now, name="first", limit=40)
    assert delivery.deliver(project, now=now).sent == 40
    first = [m["id"] for m in store.rows("SELECT id FROM mails WHERE state = 'sent' ORDER BY id")]
    # a second one queued: the send that runs while the server is hit
    campaigns_module.create_campaign(project, "offre", now=now, name="second")
    paths = [tokens.open_url("", SECRET, i) for i in first] + [tokens.click_url("", SECRET, i, 0) for i in first]

    statuses: list[int] = []
    done = threading.Event()
    lock = threading.Lock()

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = offset
        while not done.is_set() or n < offset + 60:
            answer = request(port, "GET", paths[n % len(paths)], connection=conn)
            with lock:
                statuses.append(answer.status)
            n += 1
        conn.close()

    with running_server(project_dir, port, READ) as server:
        threads = [threading.Thread(target=client, args=(i * 17,)) for i in range(6)]
        for thread in threads:
            thread.start()
        try:
            report = delivery.deliver(project, now=now)
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=60)
        server.terminate()
        _, errors = server.communicate(timeout=15)
    assert report.sent == 300 and not report.failed
    assert len(statuses) >= 360
    assert set(statuses) <= {200, 302}, sorted(set(statuses))
    assert b"locked" not in errors and b"Traceback" not in errors
    recorded = store.scalar("SELECT COUNT(*) FROM events WHERE name IN ('email_opened', 'email_clicked')")
    assert recorded == len(paths)  # every token hit is recorded; one client's replays of it count once


def test_serve_says_when_the_port_is_taken(cli, project_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = cli("serve", "--port", str(taken.getsockname()[1]))
    assert result.exit_code == 1
    assert "already in use" in result.output and "--port" in result.output


def test_serve_needs_a_secret(cli, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDUMAIL_SECRET")
    result = cli("serve", "--port", str(free_port()))
    assert result.exit_code == 1 and "no secret key" in result.output
