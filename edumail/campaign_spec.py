"""What `edumail send` was asked for (SPEC 16), checked before anything is queued.

The audience is the sequences' `Audience` (repeated `--stage` = one of,
repeated `--tag` = all of, `--where` fields, a `--segment` merged in), so one
rule decides who matches. `--data` is what templates read as `event.*`,
`--content` the Markdown letter rendered into `content`, `--until` the time
after which an unsent mail is dropped, `--topic` the kind of marketing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edumail import mdcontent, segments
from edumail.conditions import Audience
from edumail.errors import InputError

if TYPE_CHECKING:
    from edumail.project import Project


@dataclass(frozen=True)
class CampaignSpec:
    audience: Audience = field(default_factory=Audience)
    data: dict[str, str] = field(default_factory=dict)
    content: str | None = None  # HTML, from --content FILE.md
    until: datetime | None = None
    topic: str | None = None

    def stored_audience(self) -> dict[str, Any]:
        """The audience as the campaigns row keeps it (and compares it on a second run)."""
        shown: dict[str, Any] = {
            "stage": list(self.audience.stage),
            "tags": list(self.audience.tags),
            "not_tags": list(self.audience.not_tags),
            "fields": dict(self.audience.fields),
        }
        if self.audience.segment:
            shown["segment"] = self.audience.segment
        return shown

    def differs_from(self, campaign: dict[str, Any]) -> str | None:
        """What a second run asks differently from the stored campaign, or None."""
        if stored_audience(campaign) != {k: v for k, v in self.stored_audience().items() if k != "segment"}:
            return f"audience {campaign['audience']}"
        if json.loads(campaign.get("data") or "{}") != self.data:
            return f"--data {campaign.get('data')}"
        if (campaign.get("content") or None) != self.content:
            return "--content (another letter)"
        if (campaign.get("topic") or None) != self.topic:
            return f"--topic {campaign.get('topic') or '(none)'}"
        return None


def stored_audience(campaign: dict[str, Any]) -> dict[str, Any]:
    """A campaign row's audience in today's shape (older rows kept `stage` as text and `where`)."""
    stored = json.loads(campaign.get("audience") or "{}")
    stage = stored.get("stage") or []
    return {
        "stage": [stage] if isinstance(stage, str) else list(stage),
        "tags": list(stored.get("tags") or []),
        "not_tags": list(stored.get("not_tags") or []),
        "fields": dict(stored.get("fields") or stored.get("where") or {}),
    }


def build(
    project: Project,
    *,
    stages: list[str] | None = None,
    tags: list[str] | None = None,
    where: dict[str, str] | None = None,
    segment: str | None = None,
    data: dict[str, str] | None = None,
    content_file: Path | None = None,
    until: datetime | None = None,
    topic: str | None = None,
) -> CampaignSpec:
    """Check every option and build the spec; InputError (or the segment's file:line) on the first problem."""
    for key in where or {}:
        if not key or '"' in key:
            raise InputError(f"--where {key}=...: expected a field name")
    audience = Audience(
        stage=tuple(dict.fromkeys(s.strip() for s in stages or [] if s.strip())),
        tags=tuple(dict.fromkeys(t.strip() for t in tags or [] if t.strip())),
        fields=dict(where or {}),
    )
    if segment:
        audience = segments.merge(segments.load_one(project, segment), audience, f"segment {segment!r}")
        audience = Audience(audience.stage, audience.tags, audience.not_tags, audience.fields, segment.strip())
    if topic is not None and topic not in project.settings.topics:
        have = ", ".join(project.settings.topics) or "none: name them under topics: in edumail.yaml"
        raise InputError(f"--topic: unknown topic {topic!r} (topics: {have})")
    for key in data or {}:
        if not key.replace("_", "").isalnum():
            raise InputError(f"--data {key}=...: a name made of letters, digits and _ (templates read event.{key})")
    content = mdcontent.render_file(content_file) if content_file is not None else None
    return CampaignSpec(audience, dict(data or {}), content, until, topic)
