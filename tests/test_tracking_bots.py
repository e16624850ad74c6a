"""Machine or person: the pure rules of edumail.bots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edumail import bots

SENT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LATER = SENT + timedelta(hours=1)
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)


@pytest.mark.parametrize(
    "ip, expected", [("17.0.0.1", True), ("17.255.1.2", True), ("18.0.0.1", False), ("garbage", False), (None, False)]
)
def test_apple_addresses(ip: str | None, expected: bool) -> None:
    assert bots.is_apple_address(ip) is expected


def test_a_person_opening_later_is_a_person() -> None:
    assert bots.open_verdict("203.0.113.9", CHROME, "GET", SENT, LATER) is None


@pytest.mark.parametrize(
    "ip, agent, method, at, reason",
    [
        ("17.1.2.3", CHROME, "GET", LATER, "apple-proxy"),
        ("203.0.113.9", "Mozilla/5.0", "GET", LATER, "generic-agent"),
        ("203.0.113.9", "", "GET", LATER, "generic-agent"),
        ("203.0.113.9", CHROME, "HEAD", LATER, "head-request"),
        ("203.0.113.9", CHROME, "GET", SENT + timedelta(seconds=4), "prefetch"),
        ("203.0.113.9", "curl/8.0", "GET", LATER, "scanner-agent"),
    ],
)
def test_machine_opens(ip: str, agent: str, method: str, at: datetime, reason: str) -> None:
    assert bots.open_verdict(ip, agent, method, SENT, at) == reason


def test_gmail_proxy_opens_are_people_except_at_delivery() -> None:
    gmail = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    assert bots.is_google_proxy(gmail)
    assert bots.open_verdict("66.249.84.1", gmail, "GET", SENT, LATER) is None
    assert bots.open_verdict("66.249.84.1", gmail, "GET", SENT, SENT + timedelta(seconds=2)) == "prefetch"


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; BarracudaCentral)",
        "Proofpoint URL Defense",
        "Mimecast",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0",
    ],
)
def test_scanner_agents(agent: str) -> None:
    assert bots.scanner_agent(agent)
    assert bots.click_verdict("203.0.113.9", agent, "GET", SENT, LATER) == "scanner-agent"


def test_clicks() -> None:
    assert bots.click_verdict("203.0.113.9", CHROME, "GET", SENT, LATER) is None
    assert bots.click_verdict("203.0.113.9", CHROME, "GET", SENT, SENT + timedelta(seconds=9)) == "too-fast"
    assert bots.click_verdict("203.0.113.9", CHROME, "GET", None, LATER) == "too-fast"
    assert bots.click_verdict("17.1.2.3", CHROME, "GET", SENT, LATER) is None


def test_all_links_burst_needs_two_links_or_more() -> None:
    assert not bots.all_links_burst(1, {0})
    assert not bots.all_links_burst(3, {0, 1})
    assert bots.all_links_burst(3, {0, 1, 2})
