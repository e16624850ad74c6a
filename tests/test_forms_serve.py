# ruff: noqa: F811  (the smtp_server fixture is imported, then requested by name)
"""The whole signup story with real processes: `edumail init`, `edumail serve` on a loopback port, the
shipped form posted by an HTTP client, `edumail run --once` sending the double opt-in mail through a real
SMTP server, its link followed, then `edumail send --topic newsletter` reaching exactly who chose it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from ports import free_port
from smtp_server import SmtpTestServer, smtp_server  # noqa: F401 (fixture)
from test_serve import html_of, request, running_server
from tracking_support import SECRET

from edumail import project as project_module

NOW = "2026-12-01T10:00:00+01:00"  # a Tuesday morning, inside the shipped send window
FORM = {"content-type": "application/x-www-form-urlencoded"}
LETTER = "# La lettre de décembre\n\nTrois **nouvelles sessions** en janvier : [le calendrier](https://centre.example/cal).\n"


def edumail(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUMAIL_")}
    env.update(EDUMAIL_SECRET=SECRET.decode(), EDUMAIL_NOW=NOW, EDUMAIL_PROJECT=str(root))
    return subprocess.run(
        [sys.executable, "-m", "edumail", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def centre(tmp_path: Path, smtp_server: SmtpTestServer) -> tuple[Path, int]:
    root, port = tmp_path / "centre", free_port()
    created = edumail(tmp_path, "init", str(root))
    assert created.returncode == 0, created.stderr
    settings = root / "edumail.yaml"
    text = settings.read_text(encoding="utf-8").replace("transport: file\n", "")
    text += smtp_server.settings_yaml() + f"tracking:\n  base_url: http://127.0.0.1:{port}\n"
    settings.write_text(text, encoding="utf-8")
    assert edumail(root, "check").returncode == 0
    assert edumail(root, "run", "--once").returncode == 0  # sequences start listening from now
    return root, port


def post_form(port: int, **fields: str) -> str:
    answer = request(port, "POST", "/f/newsletter", body=urlencode(fields).encode(), headers=FORM)
    assert answer.status == 200, answer.body.decode()
    return answer.body.decode()


def confirm(port: int, smtp_server: SmtpTestServer, email: str) -> None:
    """Follow the double opt-in mail's link and press the button."""
    (message,) = [m.message for m in smtp_server.messages if m.rcpt_tos == [email]]
    found = re.search(r'href="(http://127\.0\.0\.1:\d+/k/[^"]+)"', html_of(message))
    assert found, html_of(message)
    path = urlsplit(found.group(1)).path
    page = request(port, "GET", path)
    assert page.status == 200 and "Je confirme" in page.body.decode()
    assert request(port, "POST", path, body=b"", headers=FORM).status == 200


def test_signup_form_double_opt_in_then_a_campaign_to_the_topic(centre, smtp_server):
    root, port = centre
    (root / "lettre.md").write_text(LETTER, encoding="utf-8")
    with running_server(root, port, NOW):
        page = request(port, "GET", "/f/newsletter")
        assert page.status == 200 and "La lettre mensuelle" in page.body.decode()
        assert "Merci" in post_form(
            port, email="lea@example.org", first_name="Léa", consent="oui", topic_newsletter="oui"
        )
        post_form(port, email="max@example.org", first_name="Max", consent="oui", topic_offres="oui")
        post_form(port, email="bot@example.org", consent="oui", topic_newsletter="oui", website="http://spam")

        sent = edumail(root, "run", "--once")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sorted(smtp_server.recipients()) == ["lea@example.org", "max@example.org"]
        confirm(port, smtp_server, "lea@example.org")
        confirm(port, smtp_server, "max@example.org")

        store = project_module.load(root).store()
        lea = store.contact_by_email("lea@example.org")
        assert (lea["consent"], lea["consent_basis"]) == ("opted_in", "opt_in")
        assert store.topic_states(store.contact_by_email("max@example.org")["id"]) == {
            "newsletter": "out",
            "offres": "in",
        }
        assert store.contact_by_email("bot@example.org") is None

        smtp_server.messages.clear()
        campaign = edumail(root, "send", "newsletter", "--topic", "newsletter", "--content", str(root / "lettre.md"))
        assert campaign.returncode == 0, campaign.stdout + campaign.stderr
        assert "1 left topic newsletter" in campaign.stdout
        (letter,) = [m.message for m in smtp_server.messages]
        assert letter["To"].endswith("<lea@example.org>") or "lea@example.org" in letter["To"]
        html = html_of(letter)
        assert "La lettre de décembre" in html and "<strong>nouvelles sessions</strong>" in html

        unsubscribe = re.search(r"<(http://127\.0\.0\.1:\d+/u/[^>]+)>", letter["List-Unsubscribe"]).group(1)
        offer = request(port, "GET", urlsplit(unsubscribe).path).body.decode()
        assert "Ne plus recevoir «\u00a0La lettre mensuelle\u00a0»" in offer
        done = request(port, "POST", urlsplit(unsubscribe).path, body=b"scope=topic", headers=FORM)
        assert "vous ne recevrez plus «\u00a0La lettre mensuelle\u00a0»" in done.body.decode()
    store = project_module.load(root).store()
    lea = store.contact_by_email("lea@example.org")
    assert lea["consent"] == "opted_in" and store.topic_states(lea["id"])["newsletter"] == "out"
