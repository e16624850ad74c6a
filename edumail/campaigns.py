"""One-off marketing campaigns (`edumail send`): pick the audience, queue one mail each.

A campaign is a row in `campaigns`; its mails are ordinary outbox rows with
UNIQUE(campaign_id, contact_id), so running the same command again queues
nothing new. Consent is checked here (and again at delivery), and so is
`limits.marketing_per_week`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from edumail import audience as audience_module
from edumail import campaign_spec, clock, contacts, events, topics
from edumail.campaign_spec import CampaignSpec
from edumail.errors import InputError, NotFound
from edumail.message import new_message_id
from edumail.project import Project

if TYPE_CHECKING:
    from edumail.render import TemplateLibrary

OVER_LIMIT = "over limits.marketing_per_week"
AFTER_UNTIL = "after --until"


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
    spec: CampaignSpec | None = None,
    name: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
) -> CampaignPlan:
    """Record the campaign and queue one mail per matching contact allowed marketing mail."""
    if limit is not None and limit < 1:
        raise InputError("--limit: expected a number of contacts, 1 or more")
    at = at or now
    if spec is None:
        spec = campaign_spec.build(project, stages=[stage] if stage else [], tags=tags, where=where)
    if spec.until is not None and spec.until <= at:
        tz = project.settings.tz
        raise InputError(
            f"--until {clock.show(spec.until, tz)} is not after the campaign's time ({clock.show(at, tz)}): "
            "nothing would be sent"
        )
    library = _check_template(project, template, spec)
    plan = CampaignPlan(name or default_name(template, at, project.settings.tz), template, at, dry_run=dry_run)
    plan.scheduled = at > now
    store = project.store()
    _join(store, plan, template, spec)
    done = store.campaign_contact_ids(plan.campaign_id) if plan.campaign_id else set()
    candidates = audience_module.members(store, spec.audience)
    chosen = _choose(project, plan, spec, candidates, done, now, limit)
    if chosen:  # a template that cannot render for these contacts stops here, before anything is queued
        _try_render(library, template, spec, chosen[0], store.tags_of(int(chosen[0]["id"])), now)
    if dry_run:
        plan.queued = len(chosen)
        return plan
    with store.transaction():
        if plan.campaign_id is None and not _join(store, plan, template, spec):
            state = "scheduled" if plan.scheduled else "queued"
            plan.campaign_id = store.insert_campaign(plan.name, template, spec.stored_audience(), at, now, state)
            store.set_campaign_extras(
                plan.campaign_id, data=spec.data, content=spec.content, until=spec.until, topic=spec.topic
            )
        _queue(project, plan, chosen, now)
    return plan


def _join(store: Any, plan: CampaignPlan, template: str, spec: CampaignSpec) -> bool:
    """Take the campaign of that name if it exists (an earlier run, or another `send` queueing it right now:
    UNIQUE(campaign_id, contact_id) then queues each contact once); refuse it if it differs."""
    existing = store.campaign_by_name(plan.name)
    if existing is None:
        return False
    differs = f"template {existing['template']!r}" if existing["template"] != template else None
    differs = differs or spec.differs_from(existing)
    if differs:
        raise InputError(
            f"campaign {plan.name!r} already exists with {differs}; give another --name to start a new campaign"
        )
    plan.campaign_id, plan.existed = int(existing["id"]), True
    return True


_QUEUED = ("id", "email", "timezone")  # what _queue and _send_time read of a chosen contact


def _choose(
    project: Project,
    plan: CampaignPlan,
    spec: CampaignSpec,
    candidates: Iterable[dict[str, Any]],
    done: set[int],
    now: datetime,
    limit: int | None,
) -> list[dict[str, Any]]:
    """The contacts to queue: allowed marketing mail, in the topic, under the weekly limit, sendable before
    --until, not queued already."""
    store = project.store()
    cap = project.settings.limits.marketing_per_week
    counts = audience_module.weekly_marketing(store, now, exclude_campaign=plan.campaign_id) if cap else {}
    left = store.left_topic_ids(spec.topic) if spec.topic else set()
    skipped: Counter[str] = Counter()
    chosen: list[dict[str, Any]] = []
    for contact in candidates:
        plan.matched += 1
        if limit is not None and len(chosen) + plan.already >= limit:
            continue  # counted as matched, as the whole audience is
        if contact["id"] in done:
            plan.already += 1
            continue
        reason = contacts.may_receive(contact, events.MARKETING)
        if reason is None and contact["id"] in left:
            reason = topics.reason_left(str(spec.topic))
        if reason is None and cap and counts.get(contact["id"], 0) >= cap:
            reason = OVER_LIMIT
        if reason is None and spec.until is not None and _send_time(project, plan.at, contact) > spec.until:
            reason = AFTER_UNTIL
        if reason:
            skipped[reason] += 1
            continue
        # The first keeps its whole row (the trial render); the others what queueing needs.
        chosen.append(contact if not chosen else {k: contact[k] for k in _QUEUED})
    plan.skipped = dict(skipped)
    plan.recipients = [c["email"] for c in chosen[:20]]
    return chosen


def _queue(project: Project, plan: CampaignPlan, chosen: list[dict[str, Any]], now: datetime) -> None:
    """One mail per chosen contact, at the campaign's time (or the send window's next opening)."""
    settings, store = project.settings, project.store()
    for contact in chosen:
        queued = store.enqueue_mail(
            message_id=new_message_id(settings.sender.domain),
            template=plan.template,
            purpose=events.MARKETING,
            not_before=_send_time(project, plan.at, contact),
            now=now,
            contact_id=int(contact["id"]),
            context={"campaign": plan.name},
            campaign_id=plan.campaign_id,
        )
        if queued is None:
            plan.already += 1
        else:
            plan.queued += 1


def _send_time(project: Project, at: datetime, contact: dict[str, Any]) -> datetime:
    """The campaign's time, or the send window's next opening in the contact's timezone."""
    window = project.settings.send_window
    return window.next_opening(at, _zone(contact, project.settings.tz)) if window else at


def _check_template(project: Project, template: str, spec: CampaignSpec) -> TemplateLibrary:
    from edumail.render import TemplateLibrary
    from edumail.render_check import variables

    library = TemplateLibrary(project.templates_dir, project.settings)
    if not library.exists(template):
        have = ", ".join(library.names()) or "no templates"
        raise NotFound(f"unknown template {template!r} (templates/ has: {have})")
    if spec.content is not None and "content" not in variables(library, template):
        raise InputError(
            f"template {template!r} does not show `content`: put {{{{ content }}}} where the letter goes "
            "(as templates/newsletter.html does), or send without --content"
        )
    return library


def _try_render(
    library: TemplateLibrary, template: str, spec: CampaignSpec, contact: dict[str, Any], tags: list[str], now: datetime
) -> None:
    from markupsafe import Markup

    from edumail.render import render

    extra: dict[str, Any] = {"campaign": template}
    if spec.content is not None:
        extra["content"] = Markup(spec.content)
    render(
        library,
        template,
        contact=contacts.template_view(contact, tags),
        event=dict(spec.data),
        now=now,
        unsubscribe_url="#",
        preferences_url="#",
        extra=extra,
    )


def _zone(contact: dict[str, Any], default: ZoneInfo) -> ZoneInfo:
    name = contact.get("timezone")
    if name:
        try:
            return clock.zone(name)
        except InputError:
            return default
    return default
