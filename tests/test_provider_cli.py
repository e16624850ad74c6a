# ruff: noqa: F811  (fixtures are imported, then requested by name)
"""`edumail check` and `edumail providers test` for a provider transport; `bounces fetch` over IMAP."""

from __future__ import annotations

import json

from imap_server import ImapServer, imap_server_fixture  # noqa: F401  (provides the imap_server fixture)
from mailbox_support import add_contact, sent_mail
from provider_server import ProviderServer, Reply, provider_server  # noqa: F401  (fixture)
from test_bounces import bounced_events, hard

KEY = "pm-server-token-0123456789"


def settings(cli, provider: str, base_url: str = "", *, tracking: bool = True, webhook: bool = True) -> None:
    block = f"transport: {provider}\nprovider:\n  key_env: PROVIDER_KEY\n"
    if provider in ("mailjet", "ses"):
        block += "  secret_env: PROVIDER_SECRET\n"
    if base_url:
        block += f"  base_url: {base_url}\n"
    if webhook:
        block += "  webhook_secret_env: PROVIDER_HOOK\n"
    if tracking:
        block += "tracking:\n  base_url: https://mail.centre.example\n"
    path = cli.root / "edumail.yaml"
    path.write_text(path.read_text(encoding="utf-8") + block, encoding="utf-8")


def test_check_says_which_variables_are_unset_without_calling_the_provider(cli, provider_server):
    settings(cli, "mailjet", provider_server.url, tracking=False)
    result = cli("check")
    assert result.exit_code == 1
    assert "PROVIDER_KEY (the API key) is not set" in result.output
    assert "PROVIDER_SECRET (the Mailjet secret key) is not set" in result.output
    assert "PROVIDER_HOOK (webhook secret) is not set" in result.output
    assert "tracking.base_url is needed for provider webhooks" in result.output
    assert provider_server.seen == []
    ok = cli("check", env={"PROVIDER_KEY": "k", "PROVIDER_SECRET": "s", "PROVIDER_HOOK": "h"})
    assert "is not set" not in ok.output and provider_server.seen == []


def test_check_warns_when_no_webhook_secret_is_configured(cli):
    settings(cli, "brevo", webhook=False)
    result = cli("check", env={"PROVIDER_KEY": "k"})
    assert result.exit_code == 0, result.output
    assert "provider.webhook_secret_env is not set" in result.output


def test_a_provider_transport_without_provider_settings_is_one_clear_line(cli):
    path = cli.root / "edumail.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "transport: postmark\n", encoding="utf-8")
    result = cli("check")
    assert result.exit_code == 1
    assert "transport is postmark but there is no provider: section" in result.output


def test_providers_test_makes_one_call_that_sends_nothing(cli, provider_server):
    provider_server.authorized = lambda h: h.get("x-postmark-server-token") == KEY
    provider_server.ok = Reply(200, {"ID": 1, "Name": "Centre"})
    settings(cli, "postmark", provider_server.url)
    result = cli("providers", "test", env={"PROVIDER_KEY": KEY, "PROVIDER_HOOK": "h"})
    assert result.exit_code == 0, result.output
    assert "the API key works" in result.output and KEY not in result.output
    assert "https://mail.centre.example/webhooks/postmark/$PROVIDER_HOOK" in result.output
    [seen] = provider_server.seen
    assert (seen.method, seen.path) == ("GET", "/server")


def test_providers_test_says_when_the_key_is_refused(cli, provider_server):
    provider_server.authorized = lambda h: False
    provider_server.unauthorized = Reply(401, {"code": "unauthorized", "message": "Key not found"})
    settings(cli, "brevo", provider_server.url)
    result = cli("providers", "test", env={"PROVIDER_KEY": "wrong-key-123"})
    assert result.exit_code == 1
    assert "the key does not work" in result.output and "PROVIDER_KEY" in result.output
    assert "wrong-key-123" not in result.output
    assert provider_server.seen[0].path == "/v3/account"


def test_bounces_fetch_reads_dsns_over_imap(cli, imap_server):
    contact_id = add_contact(cli)
    sent_mail(cli, contact_id)
    imap_server.deliver(hard())
    server: ImapServer = imap_server
    block = {"host": server.host, "port": server.port, "security": "none", "username": server.user}
    path = cli.root / "edumail.yaml"
    text = "imap:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in block.items())
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    env = {"EDUMAIL_IMAP_PASSWORD": server.password}
    result = cli("bounces", "fetch", now="2026-11-20T10:00:00+00:00", env=env)
    assert result.exit_code == 0, result.output
    assert "1 hard" in result.output
    [event] = bounced_events(cli, contact_id)
    assert event["data"]["status"] == "5.1.1"
    again = cli("bounces", "fetch", now="2026-11-20T10:00:00+00:00", env=env)
    assert "1 already imported" in again.output and len(bounced_events(cli, contact_id)) == 1


def test_providers_test_on_the_file_transport_is_one_clear_line(cli):
    result = cli("providers", "test")
    assert result.exit_code == 1
    assert "this is for transport brevo, mailjet, ses or postmark" in result.output
