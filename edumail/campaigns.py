"""One-off marketing campaigns (`edumail send`): pick the audience, queue one mail each.

A campaign is a row in `campaigns`; its mails are ordinary outbox rows with
UNIQUE(campaign_id, contact_id), so running the same command again queues
nothing new. Consent is checked here (and again at delivery), and so is
`limits.marketing_per_week`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edumail import audience as audience_module
from edumail import clock, contacts, events
from edumail.errors import InputError, NotFound
from edumail.message import new_message_id
from edumail.project import Project

OVER_LIMIT = "over limits.marketing_per_week"


@dataclass
class CampaignPlan:
    """What `create_campaign` did (or, for a dry run, would do)."""

    name: str
    template: str
    at: datetime
    campaign_id: int | None = None
    matched: int = 0  # contacts matching the audience
    queued: int = 0  # mails queued by this call
    already: int = 0  # contacts queued by an earlier run of the same campaign
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> contacts
    recipients: list[str] = field(default_factory=list)  # the addresses (first 20), for a dry run
    scheduled: bool = False  # `at` is in the future: `edumail run` delivers it then
    dry_run: bool = False
    existed: bool = False


def default_name(template: str, at: datetime, tz: ZoneInfo) -> str:
    """`TEMPLATE-YYYY-MM-DD`, the local date of the campaign."""
    return f"{template}-{at.astimezone(tz):%Y-%m-%d}"


def create_campaign(
    project: Project,
    template: str,
    *,
    now: datetime,
    at: datetime | None = None,
    tags: list[str] | None = None,
    stage: str | None = None,
    where: dict[str, str] | None = None,
    name: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
) -> CampaignPlan:
    """Record the campaign and queue one mail per matching contact allowed marketing mail."""
    settings = project.settings
    _check_template(project, template)
    if limit is not None and limit < 1:
        raise InputError("--limit: expected a number of contacts, 1 or more")
    at = at or now
    tags, where = list(tags or []), dict(where or {})
    for key in where:
        if not key or '"' in key:
            raise InputError(f"--where {key}=...: expected a field name")
    audience = {"tags": tags, "stage": stage, "where": where}
    plan = CampaignPlan(name or default_name(template, at, settings.tz), template, at, dry_run=dry_run)
    plan.scheduled = at > now
    store = project.store()

    existing = store.campaign_by_name(plan.name)
    if existing is not None:
        if existing["template"] != template or _audience(existing) != audience:
            raise InputError(
                f"campaign {plan.name!r} already exists with template {existing['template']!r} and audience "
                f"{existing['audience']}; give another --name to start a new campaign"
            )
        plan.campaign_id, plan.existed = int(existing["id"]), True
    done = store.campaign_contact_ids(plan.campaign_id) if plan.campaign_id else set()

    candidates = audience_module.members(store, audience_module.from_options(tags, stage, where))
    chosen = _choose(project, plan, candidates, done, now, limit)
    if dry_run:
        plan.queued = len(chosen)
        return plan
    with store.transaction():
        if plan.campaign_id is None:
            state = "scheduled" if plan.scheduled else "queued"
            plan.campaign_id = store.insert_campaign(plan.name, template, audience, at, now, state)
        _queue(project, plan, chosen, now)
    return plan


def _choose(
    project: Project,
    plan: CampaignPlan,
    candidates: list[dict[str, Any]],
    done: set[int],
    now: datetime,
    limit: int | None,
) -> list[dict[str, Any]]:
    """The contacts to queue: allowed marketing mail, under the weekly limit, not queued already."""
    plan.matched = len(candidates)
    cap = project.settings.limits.marketing_per_week
    counts = audience_module.weekly_marketing(project.store(), now, exclude_campaign=plan.campaign_id) if cap else {}
    skipped: Counter[str] = Counter()
    chosen: list[dict[str, Any]] = []
    for contact in candidates:
        if limit is not None and len(chosen) + plan.already >= limit:
            break
        if contact["id"] in done:
            plan.already += 1
            continue
        reason = contacts.may_receive(contact, events.MARKETING)
        if reason is None and cap and counts.get(contact["id"], 0) >= cap:
            reason = OVER_LIMIT
        if reason:
            skipped[reason] += 1
            continue
        chosen.append(contact)
    plan.skipped = dict(skipped)
    plan.recipients = [c["email"] for c in chosen[:20]]
    return chosen


def _queue(project: Project, plan: CampaignPlan, chosen: list[dict[str, Any]], now: datetime) -> None:
    """One mail per chosen contact, at the campaign's time (or the send window's next opening)."""
    settings, store = project.settings, project.store()
    window = settings.send_window
    for contact in chosen:
        tz = _zone(contact, settings.tz)
        queued = store.enqueue_mail(
            message_id=new_message_id(settings.sender.domain),
            template=plan.template,
            purpose=events.MARKETING,
            not_before=window.next_opening(plan.at, tz) if window else plan.at,
            now=now,
            contact_id=int(contact["id"]),
            context={"campaign": plan.name},
            campaign_id=plan.campaign_id,
        )
        if queued is None:
            plan.already += 1
        else:
            plan.queued += 1


def _check_template(project: Project, template: str) -> None:
    from edumail.render import TemplateLibrary

    library = TemplateLibrary(project.templates_dir, project.settings)
    if not library.exists(template):
        have = ", ".join(library.names()) or "no templates"
        raise NotFound(f"unknown template {template!r} (templates/ has: {have})")


def _audience(campaign: dict[str, Any]) -> dict[str, Any]:
    stored = json.loads(campaign.get("audience") or "{}")
    return {"tags": stored.get("tags", []), "stage": stored.get("stage"), "where": stored.get("where", {})}


def _zone(contact: dict[str, Any], default: ZoneInfo) -> ZoneInfo:
    name = contact.get("timezone")
    if name:
        try:
            return clock.zone(name)
        except InputError:
            return default
    return default
