"""`edumail demo`: the real product on a throw-away project, through 30 simulated days.

Contacts are imported by the real importer, events recorded as they happen,
the real engine and delivery run every simulated hour with the file
transport, and simulated readers open, click and unsubscribe through the real
tracking app with the real signed links. Nothing is canned.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edumail import clock, contacts, contacts_import, demo_calendar, demo_data, recording, runner, scaffold
from edumail import project as project_module
from edumail.project import Project

CENTRE = "Centre de formation Horizon"
SENDER = "contact@horizon-formation.example"
BASE_URL = "http://127.0.0.1:8025"
SETTINGS = f"""\
# The demo project: file transport (mails are .eml files in outbox/), tracking
# links pointing at `edumail serve` on this machine.
sender:
  name: {CENTRE}
  email: {SENDER}
  reply_to: inscriptions@horizon-formation.example
transport: file
timezone: Europe/Paris
locale: fr_FR
tracking:
  base_url: {BASE_URL}
send_window:
  days: [mon, tue, wed, thu, fri]
  hours: "08:00-19:00"
limits:
  marketing_per_week: 3
  max_late: 1d
"""
READER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"
_CONSENT_GROUPS = {
    ("opted_in", "opt_in"): "formulaire du site (case cochée)",
    ("opted_in", "customer"): "ancien stagiaire (soft opt-in)",
    ("opted_in", "professional"): "contact professionnel (B2B)",
    ("unknown", None): "fichier salon 2026",
    ("opted_out", None): "désinscrit de l'ancien outil",
}


@dataclass
class Day:
    """What one simulated day did."""

    date: datetime
    events: Counter[str] = field(default_factory=Counter)
    entered: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    exited: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0


@dataclass
class DemoResult:
    root: Path
    days: list[Day]
    imported: str
    mails: int
    calendar: list[str] = field(default_factory=list)  # what moving and cancelling a session did


@dataclass(order=True)
class _Reaction:
    at: datetime
    kind: str = field(compare=False)  # open | click | unsubscribe
    mail_id: int = field(compare=False)
    index: int = field(default=0, compare=False)


def create(root: Path | None) -> Path:
    """A fresh demo project folder (a temporary one unless `root` is given)."""
    target = root or Path(tempfile.mkdtemp(prefix="edumail-demo-"))
    scaffold.init_project(target, name=CENTRE, email=SENDER)
    (target / "edumail.yaml").write_text(SETTINGS, encoding="utf-8")
    return target


def run(
    root: Path | None = None,
    *,
    contact_count: int = 200,
    days: int = 30,
    seed: int = 2026,
    on_day: Callable[[Day], None] | None = None,
) -> DemoResult:
    """Create the project, import contacts, then live `days` days hour by hour."""
    target = create(root)
    start = _start(clock.now() - timedelta(days=days))  # the simulated month ends about now
    project = project_module.load(target)
    people = demo_data.make_contacts(contact_count, seed)
    imported = _import(project, people, start)
    calendar = demo_data.make_sessions(start.astimezone(clock.zone("Europe/Paris")).date(), days, seed)
    imported += "; " + demo_calendar.import_calendar(project, calendar, start)
    happenings = demo_data.make_events(people, start, days, calendar, seed)
    changes = demo_calendar.plan(start, days)
    simulation = _Simulation(project, happenings, random.Random(seed + 2), changes)
    done = []
    for number in range(days):
        # Local calendar days: a summer-time change makes one of them 23 or 25 hours long.
        day = Day(_local_midnight(start, number))
        tick, end = day.date + timedelta(minutes=5), _local_midnight(start, number + 1)
        while tick < end:
            simulation.tick(tick, day)
            tick += timedelta(hours=1)
        done.append(day)
        if on_day:
            on_day(day)
    mails = sum(1 for _ in (target / "outbox").rglob("*.eml"))
    lines = changes.summary(project.store())
    project.close()
    return DemoResult(target, done, imported, mails, lines)


def _start(now: datetime) -> datetime:
    """Midnight (Paris) of the Monday on or before `now`."""
    paris = clock.zone("Europe/Paris")
    local = now.astimezone(paris)
    monday = (local - timedelta(days=local.weekday())).date()
    return datetime(monday.year, monday.month, monday.day, tzinfo=paris).astimezone(clock.UTC)


def _local_midnight(start: datetime, days: int) -> datetime:
    """Midnight (Paris) `days` calendar days after `start`, in UTC."""
    paris = clock.zone("Europe/Paris")
    day = start.astimezone(paris).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, tzinfo=paris).astimezone(clock.UTC)


def _import(project: Project, people: list[demo_data.DemoContact], now: datetime) -> str:
    """Import each consent group from its own CSV file, as a centre would."""
    created = 0
    for (consent, basis), source in _CONSENT_GROUPS.items():
        group = [p for p in people if p.consent == consent and p.basis == basis]
        if not group:
            continue
        path = project.root / f"contacts-{consent}-{basis or 'aucune'}.csv"
        with path.open("w", encoding="cp1252", newline="") as handle:  # as Excel exports it
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(["email", "prénom", "nom", "étape", "tags", "ville"])
            for p in group:
                writer.writerow([p.email, p.first_name, p.last_name, p.stage, ",".join(p.tags), p.city])
        report = contacts_import.import_contacts(
            project.store(),
            path,
            now=now,
            consent=consent,
            basis=basis if consent == "opted_in" else None,
            source=source,
        )
        created += report.created
    return f"{created} contacts imported from {len(_CONSENT_GROUPS)} CSV files (Windows-1252, semicolons)"


class _Simulation:
    def __init__(
        self,
        project: Project,
        happenings: list[demo_data.DemoEvent],
        rng: random.Random,
        calendar: demo_calendar.Calendar,
    ):
        self.project = project
        self.calendar = calendar
        self.store = project.store()
        self.pending = list(happenings)
        self.reactions: list[_Reaction] = []
        self.rng = rng
        self.last = datetime(1970, 1, 1, tzinfo=clock.UTC)

    def tick(self, now: datetime, day: Day) -> None:
        self._record_happenings(now, day)
        self._react(now, day)
        self.calendar.change(self.store, now, self.project.settings.tz)
        summary = runner.run_once(self.project, now=now)
        self.calendar.observe(self.store)
        for decision in summary.engine.decisions:
            if decision.outcome == "entered":
                day.entered += 1
            elif decision.outcome == "skipped":
                day.skipped[decision.reason] += 1
            elif decision.outcome == "exited":
                day.exited += 1
        upto = now
        for mail in self.store.mails_sent_between(self.last, upto):
            day.sent[mail["template"]] += 1
            self._plan_reactions(mail, now)
        self.last = upto

    def _record_happenings(self, now: datetime, day: Day) -> None:
        while self.pending and self.pending[0].at <= now:
            happening = self.pending.pop(0)
            contacts.record_event_for(
                self.store,
                happening.email,
                happening.name,
                at=happening.at,
                data=happening.data,
                source="demo",
                now=now,
            )
            day.events[happening.name] += 1

    def _plan_reactions(self, mail: dict[str, Any], now: datetime) -> None:
        """A reader: opens most service mail, some marketing; clicks a few links; rarely unsubscribes."""
        service = mail["purpose"] == "service"
        if self.rng.random() > (0.75 if service else 0.45):
            return
        opened = now + timedelta(minutes=self.rng.randrange(20, 60 * 30))
        self.reactions.append(_Reaction(opened, "open", mail["id"]))
        links = [i for i, url in enumerate(json.loads(mail["links"] or "[]")) if url.startswith("http")]
        if links and self.rng.random() < (0.45 if mail["template"] == "enquete-satisfaction" else 0.25):
            self.reactions.append(_Reaction(opened + timedelta(minutes=2), "click", mail["id"], self.rng.choice(links)))
        if not service and self.rng.random() < 0.04:
            self.reactions.append(_Reaction(opened + timedelta(minutes=3), "unsubscribe", mail["id"]))

    def _react(self, now: datetime, day: Day) -> None:
        """The readers' opens, clicks and unsubscribes, recorded as the tracking server would."""
        self.reactions.sort()
        while self.reactions and self.reactions[0].at <= now:
            reaction = self.reactions.pop(0)
            mail = self.store.tracked_mail(reaction.mail_id)
            if mail is None or not recording.reachable(mail):
                continue
            if reaction.kind == "open":
                recording.record_open(self.store, mail, None, READER_AGENT, "GET", now)
                day.opened += 1
            elif reaction.kind == "click":
                links = json.loads(mail["links"] or "[]")
                link = (reaction.index, str(links[reaction.index]), len(links))
                recording.record_click(self.store, mail, link, None, READER_AGENT, "GET", now)
                day.clicked += 1
            else:
                proof = {"user_agent": READER_AGENT, "mail_id": mail["id"], "message_id": mail["message_id"]}
                if recording.opt_out(
                    self.store, mail, source=recording.UNSUBSCRIBE_SOURCE, method="one-click", proof=proof, now=now
                ):
                    day.unsubscribed += 1
