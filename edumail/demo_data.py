"""Realistic French contacts and enrolment events for `edumail demo` (seeded, repeatable)."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

FIRST_NAMES = (
    "Marie Camille Léa Manon Chloé Emma Inès Sarah Julie Clara Lucie Anaïs Pauline Élodie Margaux Océane "
    "Thomas Nicolas Julien Maxime Antoine Alexandre Quentin Romain Hugo Lucas Théo Mathieu Baptiste "
    "Sébastien Guillaume Damien Karim Yasmine Nadia Mehdi Sofiane Fatou Moussa Aurélien Gaëlle Hélène François"
).split()
LAST_NAMES = (
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Michel "
    "Garcia David Bertrand Roux Vincent Fournier Morel Girard André Mercier Dupont Lambert Bonnet François "
    "Martinez Legrand Garnier Faure Rousseau Blanc Guérin Muller Henry Roussel Nicolas Perrin Morin Mathieu "
    "Benali Haddad Nguyen Diallo Traoré Da Silva Lemoine Chevalier"
).split()
CITIES = ("Lyon", "Paris", "Bordeaux", "Lille", "Nantes", "Toulouse", "Marseille", "Rennes", "Grenoble", "Strasbourg")
FORMATIONS = (
    "Excel avancé",
    "Management d'équipe",
    "Prise de parole en public",
    "Gestion de projet agile",
    "Comptabilité pour non-comptables",
    "Anglais professionnel",
    "Word et PowerPoint",
    "Sauveteur secouriste du travail",
)
SITE = "https://horizon-formation.example"
DOMAINS = ("example.fr", "example.com", "example.org", "example.net")


@dataclass
class DemoContact:
    email: str
    first_name: str
    last_name: str
    stage: str
    city: str
    tags: list[str]
    consent: str
    basis: str | None


@dataclass
class DemoEvent:
    email: str
    name: str
    at: datetime
    data: dict[str, str] = field(default_factory=dict)


def _ascii(text: str) -> str:
    flat = unicodedata.normalize("NFKD", text)
    return "".join(c for c in flat if c.isalnum() and ord(c) < 128).lower()


def make_contacts(count: int, seed: int = 2026) -> list[DemoContact]:
    """`count` distinct contacts, stages, tags and consents mixed as in a real centre."""
    rng = random.Random(seed)
    result: list[DemoContact] = []
    used: set[str] = set()
    while len(result) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{_ascii(first)}.{_ascii(last)}@{rng.choice(DOMAINS)}"
        if email in used:
            continue
        used.add(email)
        stage = rng.choices(["prospect", "lead", "inscrit", "client"], weights=[45, 20, 25, 10])[0]
        tags = [t for t, p in (("newsletter", 0.5), ("webinar-2026", 0.25), ("salon-lyon", 0.15)) if rng.random() < p]
        consent, basis = rng.choices(
            [
                ("opted_in", "opt_in"),
                ("opted_in", "customer"),
                ("opted_in", "professional"),
                ("unknown", None),
                ("opted_out", None),
            ],
            weights=[45, 10, 10, 27, 8],
        )[0]
        if stage in ("inscrit", "client") and consent == "opted_in" and basis == "opt_in" and rng.random() < 0.5:
            basis = "customer"
        result.append(DemoContact(email, first, last, stage, rng.choice(CITIES), tags, consent, basis))
    return result


@dataclass
class DemoSession:
    """One session of the centre's calendar (local 09:00 on the first day to 17:00 on the last)."""

    id: str
    formation: str
    first_day: date
    last_day: date
    city: str
    trainer: str


CODES = ("EXCEL", "MANAGEMENT", "PAROLE", "AGILE", "COMPTA", "ANGLAIS", "BUREAUTIQUE", "SST")
TRAINERS = ("Anne Morel", "Karim Benali", "Sophie Durand", "Julien Roux")


def make_sessions(first_day: date, days: int, seed: int = 2026) -> list[DemoSession]:
    """Each formation once a week (a weekday), from the first simulated days to three weeks past the end."""
    rng = random.Random(seed + 3)
    found = []
    for formation, code in zip(FORMATIONS, CODES, strict=True):
        first = first_day + timedelta(days=rng.randrange(0, 5))
        while first <= first_day + timedelta(days=days + 21):
            last = first + timedelta(days=min(rng.choice([0, 1, 2]), 4 - first.weekday()))
            city = rng.choice(CITIES)
            session_id = f"{code}-{first.isoformat()}-{_ascii(city).upper()}"
            found.append(DemoSession(session_id, formation, first, last, city, rng.choice(TRAINERS)))
            first += timedelta(days=7)
    return sorted(found, key=lambda s: (s.first_day, s.id))


def _enrolment(rng: random.Random, enrolled: datetime, formation: str, calendar: list[DemoSession]) -> dict[str, str]:
    """The data of an enrolment: the session it names (one of its formation 3 to 15 days later)."""
    soon = [
        s
        for s in calendar
        if s.formation == formation and timedelta(days=3) <= s.first_day - enrolled.date() <= timedelta(days=15)
    ]
    return {"session": rng.choice(soon).id} if soon else {}


def make_events(
    contacts: list[DemoContact], start: datetime, days: int, calendar: list[DemoSession], seed: int = 2026
) -> list[DemoEvent]:
    """Enrolments into the calendar's sessions, unfinished enrolments, completions and replies."""
    rng = random.Random(seed + 1)
    found: list[DemoEvent] = []
    for contact in contacts:
        day = timedelta(days=rng.randrange(0, max(1, days - 10)), hours=rng.randrange(8, 19), minutes=rng.randrange(60))
        at = start + day
        formation = rng.choice(FORMATIONS)
        if contact.stage == "inscrit":
            found.append(
                DemoEvent(contact.email, "inscription_finalisee", at, _enrolment(rng, at, formation, calendar))
            )
        elif contact.stage in ("prospect", "lead") and rng.random() < 0.45:
            start_data = {"formation": formation, "lien_inscription": f"{SITE}/inscription/reprendre"}
            found.append(DemoEvent(contact.email, "inscription_commencee", at, start_data))
            if rng.random() < 0.35:
                done = at + timedelta(days=rng.randrange(1, 6))
                found.append(
                    DemoEvent(contact.email, "inscription_finalisee", done, _enrolment(rng, done, formation, calendar))
                )
        elif contact.stage == "prospect" and rng.random() < 0.5:
            asked = {"formation": formation, "lien_catalogue": f"{SITE}/catalogue", "lien_rdv": f"{SITE}/rendez-vous"}
            found.append(DemoEvent(contact.email, "demande_information", at, asked))
            if rng.random() < 0.3:
                found.append(DemoEvent(contact.email, "replied", at + timedelta(days=rng.randrange(1, 9)), {}))
    found.sort(key=lambda e: e.at)
    return found
