# ruff: noqa: F811  (the provider_server fixture is imported, then requested by name)
"""Provider sending and webhooks as real processes: a SIGKILL after the provider's 2xx, and `edumail serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from ports import free_port
from provider_server import ProviderServer, Reply, provider_server  # noqa: F401  (fixture)
from serve_support import call, serving
from test_delivery_support import add_contacts, make_project, queue
from test_provider_webhooks import fixture
from tracking_support import contact, sent_mail

from edumail import project as project_module

KEY = "xkeysib-crash-test-0123"


def _run(root: Path, url: str) -> subprocess.Popen:
    env = {**os.environ, "EDUMAIL_NOW": "2026-03-02T09:00:00Z", "PROVIDER_KEY": KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "edumail", "--project", str(root), "run", "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_sender_killed_after_the_providers_2xx_retries_with_the_same_idempotency_key(tmp_path, provider_server):
    settings = f"transport: brevo\nprovider:\n  key_env: PROVIDER_KEY\n  base_url: {provider_server.url}\n"
    project = make_project(tmp_path / "centre", extra=settings)
    [mail_id] = queue(project, add_contacts(project, 1))
    project.close()
    provider_server.script = [Reply(201, {"messageId": "<1@relay>"}, stall=True)]
    provider_server.ok = Reply(201, {"messageId": "<1@relay>"})

    first = _run(project.root, provider_server.url)
    try:
        assert provider_server.stalled.wait(60), first.communicate(timeout=5)
        first.send_signal(signal.SIGKILL)  # Brevo said 201; the local commit never happened
    finally:
        first.wait(timeout=30)
    provider_server.release.set()
    assert project_module.load(project.root).store().mail(mail_id)["state"] != "sent"

    second = _run(project.root, provider_server.url)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, (out + err).decode()
    keys = [seen.json["headers"]["idempotencyKey"] for seen in provider_server.seen]
    assert len(keys) == 2 and keys[0] == keys[1]
    uuid.UUID(keys[0])
    assert project_module.load(project.root).store().mail(mail_id)["state"] == "sent"


def test_the_serve_process_records_a_postmark_bounce_once(project_dir):
    hook = "whsec-serve-test-42"
    settings = project_dir / "edumail.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8")
        + "transport: postmark\nprovider:\n  key_env: PROVIDER_KEY\n  webhook_secret_env: PROVIDER_HOOK\n",
        encoding="utf-8",
    )
    project = project_module.load(project_dir)
    store = project.store()
    contact_id = contact(store, "john@example.com")
    mail_id = sent_mail(store, contact_id)
    project.close()
    body = json.dumps(fixture("postmark_bounce")).encode()
    port = free_port()
    headers = {"Content-Type": "application/json"}
    env = {"PROVIDER_HOOK": hook, "EDUMAIL_SECRET": "test-secret-key-not-for-production"}
    with serving(project_dir, port, env=env):
        assert call(port, "POST", "/webhooks/postmark/wrong", body, headers)[0] == 403
        status, answer = call(port, "POST", f"/webhooks/postmark/{hook}", body, headers)
        assert status == 200, answer
        assert json.loads(answer) == {"recorded": 1, "replayed": 0, "unmatched": 0}
        assert json.loads(call(port, "POST", f"/webhooks/postmark/{hook}", body, headers)[1])["replayed"] == 1
        assert call(port, "POST", f"/webhooks/postmark/{hook}", b"{not json", headers)[0] == 400
    store = project_module.load(project_dir).store()
    rows = store.rows("SELECT * FROM events WHERE name = 'bounced' AND contact_id = ?", (contact_id,))
    assert len(rows) == 1 and rows[0]["mail_id"] == mail_id
    assert json.loads(rows[0]["data"])["kind"] == "hard"
    assert store.contact(contact_id)["bounced_at"]
