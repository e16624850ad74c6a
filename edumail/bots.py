"""Is this open or click a person, or a machine (privacy proxy, link scanner)?

Pure decisions from what a request shows (address, user agent, method) and
when it came relative to delivery. Machine hits are still recorded, flagged,
so they can be audited; stats and sequence conditions count people only.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

# A person cannot read a mail and click in it this fast after delivery;
# Safe Links, Proofpoint and friends do.
SCANNER_WINDOW = timedelta(seconds=10)
# All links of a mail followed within this span: a scanner walking the mail.
# Short, because a person may well open two links of a mail within a minute.
BURST_WINDOW = timedelta(seconds=10)

# Apple Mail Privacy Protection fetches from Apple's 17.0.0.0/8.
_APPLE = ipaddress.ip_network("17.0.0.0/8")
# What Apple's proxy (and some other prefetchers) send: a bare, generic agent.
_GENERIC_AGENTS = {"", "mozilla/5.0"}

_SCANNER_AGENTS = (
    "barracuda",
    "proofpoint",
    "mimecast",
    "safelinks",
    "safe links",
    "urldefense",
    "forcepoint",
    "trendmicro",
    "symantec",
    "messagelabs",
    "fireeye",
    "sophos",
    "zscaler",
    "cloudmark",
    "bingpreview",
    "headlesschrome",
    "phantomjs",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww",
    "wget",
    "curl/",
    "scanner",
    "crawler",
    "spider",
    "bot/",
    "bot;",
    "bot)",
    "+http",
)


def is_apple_address(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip) in _APPLE
    except ValueError:
        return False


def _agent(user_agent: str | None) -> str:
    return (user_agent or "").strip().lower()


def scanner_agent(user_agent: str | None) -> bool:
    """A user agent of a link scanner, a script or an empty one."""
    agent = _agent(user_agent)
    return not agent or any(mark in agent for mark in _SCANNER_AGENTS)


def is_google_proxy(user_agent: str | None) -> bool:
    agent = _agent(user_agent)
    return "googleimageproxy" in agent or "ggpht.com" in agent


def soon_after(sent_at: datetime | None, at: datetime, window: timedelta = SCANNER_WINDOW) -> bool:
    """`at` within `window` of delivery (an unknown delivery time counts as just now)."""
    return sent_at is None or at - sent_at < window


def open_verdict(
    ip: str | None, user_agent: str | None, method: str, sent_at: datetime | None, at: datetime
) -> str | None:
    """Why this open is a machine's ('apple-proxy', 'prefetch', ...), or None for a person."""
    if is_apple_address(ip):
        return "apple-proxy"
    if _agent(user_agent) in _GENERIC_AGENTS:
        return "generic-agent"
    if method == "HEAD":
        return "head-request"
    if soon_after(sent_at, at):
        # Gmail's proxy fetches when the person opens the mail, except when it
        # prefetches at delivery: only the latter is a machine.
        return "prefetch"
    if scanner_agent(user_agent) and not is_google_proxy(user_agent):
        return "scanner-agent"
    return None


def click_verdict(
    ip: str | None, user_agent: str | None, method: str, sent_at: datetime | None, at: datetime
) -> str | None:
    """Why this click is a scanner's, or None for a person (the burst rule is `all_links_burst`)."""
    if method == "HEAD":
        return "head-request"
    if scanner_agent(user_agent) or _agent(user_agent) in _GENERIC_AGENTS:
        return "scanner-agent"
    if soon_after(sent_at, at):
        return "too-fast"
    return None


def all_links_burst(link_count: int, recent_indexes: set[int]) -> bool:
    """Every link of a mail (two or more) followed within BURST_WINDOW: a scanner."""
    return link_count >= 2 and len(recent_indexes) >= link_count
