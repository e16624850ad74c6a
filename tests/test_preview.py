"""`edumail preview`: one template as it would be sent, and the live-reload preview server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ports import free_port
from starlette.testclient import TestClient

from edumail import project as project_module
from edumail.preview import create_app, preview_links

ROOT = Path(__file__).resolve().parent.parent
STAMP = "2026-11-20T10:00:00.000000Z"


@pytest.fixture
def library_project(project_dir: Path) -> Path:
    """The conftest project with the shipped template library copied in."""
    shutil.rmtree(project_dir / "templates")
    shutil.copytree(ROOT / "templates", project_dir / "templates")
    return project_dir


def add_contact(root: Path, email: str, first_name: str, tags: list[str], fields: dict | None = None) -> None:
    project = project_module.load(root)
    store = project.store()
    contact_id = store.insert_contact(
        {"email": email, "first_name": first_name, "last_name": "Durand", "fields": json.dumps(fields or {})}, STAMP
    )
    for tag in tags:
        store.add_tag(contact_id, tag, STAMP)
    project.close()


def write(root: Path, name: str, text: str) -> Path:
    path = root / "templates" / name
    path.write_text(text, encoding="utf-8")
    return path


# --- edumail preview TEMPLATE -----------------------------------------------------


PREVIEW_NOW = "2026-11-17T10:00:00+01:00"  # the invented sample session starts 14 days later, at 9:30


def test_preview_prints_the_html_and_the_subject(cli, library_project):
    result = cli("preview", "rappel-session", now=PREVIEW_NOW)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert "mardi 1&nbsp;décembre&nbsp;2026&nbsp;à&nbsp;9h30" in result.stdout
    assert "Subject: Votre formation commence le mardi 1 décembre à 9h30" in result.stderr


def test_preview_text_prints_the_text_part(cli, library_project):
    result = cli("preview", "rappel-session", "--text")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Centre de formation Exemple\n\nVotre session approche")
    assert "<" not in result.stdout


def test_preview_event_data_overrides_the_sample(cli, library_project):
    result = cli("preview", "relance-inscription", "--text", "--event-data", "formation=Word avancé")
    assert result.exit_code == 0, result.output
    assert "Word avancé" in result.stdout and "Excel" not in result.stdout


def test_preview_event_data_session_shows_that_session(cli, library_project):
    (library_project / "s.csv").write_text(
        "id;formation;debut;fin\nWORD-1;Word avancé;08/12/2026 14:00;08/12/2026 17:30\n"
    )
    assert cli("sessions", "import", str(library_project / "s.csv"), now=PREVIEW_NOW).exit_code == 0
    result = cli("preview", "rappel-session", "--text", "--event-data", "session=WORD-1", now=PREVIEW_NOW)
    assert result.exit_code == 0, result.output
    assert "Nous vous attendons pour votre formation Word avancé." in result.stdout
    assert "Début\u00a0: mardi 8\u00a0décembre 2026\u00a0à\u00a014h00" in result.stdout
    unknown = cli("preview", "rappel-session", "--event-data", "session=WORD-9", now=PREVIEW_NOW)
    assert unknown.exit_code == 1 and "no session 'WORD-9' (see `edumail sessions list`)" in unknown.output


def test_preview_event_data_must_be_key_value(cli, library_project):
    result = cli("preview", "rappel-session", "--event-data", "formation")
    assert result.exit_code == 1
    assert "expected key=value" in result.stderr


def test_preview_out_writes_the_html_file(cli, library_project, tmp_path):
    target = tmp_path / "apercu.html"
    result = cli("preview", "bienvenue", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert result.stdout == ""
    assert f"Wrote {target}" in result.stderr


def test_preview_uses_anchor_links_without_tracking(cli, library_project):
    result = cli("preview", "double-optin")
    assert 'href="#unsubscribe-preview"' in result.stdout and 'href="#confirm-preview"' in result.stdout


def test_preview_links_look_real_with_tracking(library_project):
    with (library_project / "edumail.yaml").open("a", encoding="utf-8") as settings:
        settings.write("tracking:\n  base_url: https://mail.centre.example\n")
    links = preview_links(project_module.load(library_project))
    assert links.unsubscribe_url == "https://mail.centre.example/u/preview"
    assert links.preferences_url == "https://mail.centre.example/p/preview"


def test_preview_for_a_stored_contact_uses_their_data(cli, library_project):
    add_contact(library_project, "lea@example.org", "Léa", ["vip"], {"ville": "Nantes"})
    write(
        library_project,
        "perso.html",
        '---\nsubject: "Pour {{ contact.first_name }}"\n---\n'
        "<p>{{ contact.ville }} {{ contact.tags | join(',') }} {{ contact.email }}</p>",
    )
    result = cli("preview", "perso", "--contact", "LEA@example.org", "--text")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Nantes vip lea@example.org\n"
    assert "Subject: Pour Léa" in result.stderr


def test_preview_for_an_unknown_contact_fails_clearly(cli, library_project):
    result = cli("preview", "bienvenue", "--contact", "personne@example.org")
    assert result.exit_code == 1
    assert "no contact 'personne@example.org'" in result.stderr
    assert "Traceback" not in result.output


def test_preview_of_an_unknown_template_lists_the_library(cli, library_project):
    result = cli("preview", "bienvenu")
    assert result.exit_code == 1
    assert "unknown template 'bienvenu' (did you mean 'bienvenue'?)" in result.stderr


def test_preview_needs_a_template_or_serve(cli, library_project):
    result = cli("preview")
    assert result.exit_code == 1 and "--serve" in result.stderr


def test_serve_takes_no_template(cli, library_project):
    result = cli("preview", "bienvenue", "--serve")
    assert result.exit_code == 1 and "give no TEMPLATE" in result.stderr


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<p>\n{{ contact.societe }}</p>", "templates/cassé.html:5: undefined variable 'contact.societe'"),
        ("<p>{% if %}</p>", "templates/cassé.html:4: syntax error"),
        ("ok\n{{ ''.__class__.__mro__ }}", "templates/cassé.html:5: refused by the sandbox"),
    ],
)
def test_preview_of_a_broken_template_is_a_one_line_error(cli, project_dir, body, expected):
    write(project_dir, "cassé.html", f'---\nsubject: "x"\n---\n{body}')
    result = cli("preview", "cassé")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {expected}")
    assert "Traceback" not in result.output


def test_preview_of_a_template_with_a_missing_layout(cli, project_dir):
    write(project_dir, "t.html", "---\nsubject: x\nlayout: base\n---\nx")
    result = cli("preview", "t")
    assert result.exit_code == 1
    assert "templates/t.html:3: unknown layout 'base'" in result.stderr


def test_preview_of_a_non_utf8_template(cli, project_dir):
    (project_dir / "templates" / "t.html").write_bytes("---\nsubject: x\n---\nd\xe9j\xe0".encode("cp1252"))
    result = cli("preview", "t")
    assert result.exit_code == 1
    assert "templates/t.html:4: not UTF-8" in result.stderr


# --- the preview app, in process --------------------------------------------------


def test_the_index_lists_every_template_with_desktop_mobile_and_text(library_project, monkeypatch):
    monkeypatch.setenv("EDUMAIL_NOW", PREVIEW_NOW)
    with TestClient(create_app(project_module.load(library_project))) as client:
        page = client.get("/").text
    for name in ("bienvenue", "rappel-session", "double-optin", "newsletter"):
        assert f'id="{name}"' in page and f'src="/mail/{name}.html"' in page
    assert 'width="640"' in page and 'width="375"' in page
    assert "Votre formation commence le mardi 1 décembre à 9h30" in page
    assert "/__version" in page


def test_each_mail_is_served_as_html_and_text(library_project):
    with TestClient(create_app(project_module.load(library_project))) as client:
        html = client.get("/mail/bienvenue.html")
        text = client.get("/mail/bienvenue.txt")
        missing = client.get("/mail/absent.html")
    assert html.status_code == 200 and html.text.startswith("<!DOCTYPE html>")
    assert text.headers["content-type"].startswith("text/plain") and "Bienvenue Camille\u00a0!" in text.text
    assert missing.status_code == 404


def test_a_broken_template_shows_its_error_in_the_page(project_dir):
    write(project_dir, "t.html", '---\nsubject: "x"\n---\n{{ contact.societe }}')
    with TestClient(create_app(project_module.load(project_dir))) as client:
        page = client.get("/")
        one = client.get("/mail/t.html")
    assert page.status_code == 200
    assert "templates/t.html:4: undefined variable &#x27;contact.societe&#x27;" in page.text
    assert "templates/t.html:4" in one.text


def test_the_server_renders_for_a_stored_contact(library_project):
    add_contact(library_project, "lea@example.org", "Léa", [])
    with TestClient(create_app(project_module.load(library_project), contact_email="lea@example.org")) as client:
        assert "Bienvenue Léa\u00a0!" in client.get("/mail/bienvenue.txt").text


# --- the real server, in a subprocess ---------------------------------------------


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback test server
        return response.read().decode("utf-8")


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_preview_serve_serves_and_reloads_when_a_template_changes(library_project):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    command = [
        sys.executable,
        "-m",
        "edumail",
        "--project",
        str(library_project),
        "preview",
        "--serve",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: fetch(f"{base}/healthz") == "ok", 30, "the preview server to start")
        page = fetch(f"{base}/")
        assert 'id="rappel-session"' in page and 'src="/mail/rappel-session.html"' in page
        assert "Votre session approche" in fetch(f"{base}/mail/rappel-session.html")
        before = json.loads(fetch(f"{base}/__version"))["version"]

        path = library_project / "templates" / "rappel-session.html"
        path.write_text(
            path.read_text(encoding="utf-8").replace("Votre session approche", "Bientôt le jour J"), encoding="utf-8"
        )

        wait_for(lambda: json.loads(fetch(f"{base}/__version"))["version"] != before, 20, "the reload signal")
        assert "Bientôt le jour J" in fetch(f"{base}/mail/rappel-session.html")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode is not None


def test_preview_serve_listens_on_loopback_only(library_project):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    command = [
        sys.executable,
        "-m",
        "edumail",
        "--project",
        str(library_project),
        "preview",
        "--serve",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: fetch(f"http://127.0.0.1:{port}/healthz") == "ok", 30, "the preview server to start")
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        if listening.returncode == 0 and listening.stdout.strip():
            local_addresses = [line.split()[3] for line in listening.stdout.splitlines()]
            assert local_addresses == [f"127.0.0.1:{port}"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_preview_serve_on_a_busy_port_fails_clearly(cli, library_project):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("preview", "--serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
