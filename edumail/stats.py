"""Read-only aggregates: per sequence, step and campaign; the CSV and HTML reports.

Figures are unique contacts over the mails *sent* in the period (a cohort:
their opens and clicks count whenever they came). `opened` and `clicked`
count people only: machine opens and scanner clicks are left out, and a
person's click counts as an open (images may have been blocked).
Every rate is over delivered (sent minus bounced), bounce_rate included, as
SPEC section 8 says.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from babel import Locale
from babel.numbers import format_percent

from edumail import clock, sequences
from edumail.errors import InputError, NotFound
from edumail.project import Project
from edumail.store import Store
from edumail.typography import french_spacing_html

COUNTS = ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced", "complained")
RATES = ("open_rate", "click_rate", "unsubscribe_rate", "bounce_rate", "complaint_rate")
# Gmail and Yahoo's bulk-sender rules: spam complaints must stay under 0.3 % (aim for 0.1 %).
COMPLAINT_LIMIT = 0.003
_BEGINNING = datetime.min.replace(tzinfo=clock.UTC)
_END = datetime.max.replace(tzinfo=clock.UTC)


@dataclass
class Definition:
    """What stats need of a sequence file: its sending steps in order and its goal."""

    name: str
    steps: list[str] = field(default_factory=list)
    goal_event: str | None = None
    goal_within: timedelta | None = None


def definitions(project: Project) -> tuple[dict[str, Definition], list[str]]:
    """The sequences on disk that validate, and a note for each problem (stats still run)."""
    loaded, problems = sequences.load(project)
    found: dict[str, Definition] = {}
    for sequence in loaded:
        goal = sequence.goal
        found[sequence.name] = Definition(
            name=sequence.name,
            steps=[step.id for step in sequence.steps if step.template],
            goal_event=goal.event if goal else None,
            goal_within=goal.within if goal else None,
        )
    return found, [str(problem) for problem in problems]


def figures(row: dict[str, Any] | None) -> dict[str, Any]:
    """Counts and rates from one aggregate row (None: all zero)."""
    row = row or {}
    sent = int(row.get("sent") or 0)
    bounced = int(row.get("bounced") or 0)
    delivered = max(sent - bounced, 0)
    result: dict[str, Any] = {
        "sent": sent,
        "delivered": delivered,
        "opened": int(row.get("opened") or 0),
        "clicked": int(row.get("clicked") or 0),
        "unsubscribed": int(row.get("unsubscribed") or 0),
        "bounced": bounced,
        "complained": int(row.get("complained") or 0),
    }
    result["open_rate"] = _rate(result["opened"], delivered)
    result["click_rate"] = _rate(result["clicked"], delivered)
    result["unsubscribe_rate"] = _rate(result["unsubscribed"], delivered)
    result["bounce_rate"] = _rate(bounced, delivered)
    result["complaint_rate"] = _rate(result["complained"], delivered)
    result["complaints_over_limit"] = bool(delivered) and result["complained"] >= COMPLAINT_LIMIT * delivered
    return result


def over_limit(result: dict[str, Any]) -> list[str]:
    """One line for each step and campaign whose complaint rate reaches Gmail and Yahoo's 0.3 % limit."""
    found = []
    for sequence in result["sequences"]:
        for step in sequence["steps"]:
            if step["complaints_over_limit"]:
                found.append((f"sequence {sequence['name']} step {step['id']}", step))
    found += [(f"campaign {c['name']}", c) for c in result["campaigns"] if c["complaints_over_limit"]]
    return [
        f"{label}: complaint rate {percent(entry['complaint_rate'])} is over {percent(COMPLAINT_LIMIT)}"
        f" ({entry['complained']} of {entry['delivered']} delivered), Gmail and Yahoo's limit:"
        " send it only to people who asked for it"
        for label, entry in found
    ]


def period(since: str | None, until: str | None, tz: Any) -> tuple[datetime | None, datetime | None]:
    """--since/--until in the project timezone; a date alone for --until includes that day."""
    start = _parse("--since", since, tz) if since else None
    end = _parse("--until", until, tz) if until else None
    if end is not None and until and "T" not in until.strip() and " " not in until.strip():
        end += timedelta(days=1)
    if start and end and start >= end:
        raise InputError(f"--since {since} is not before --until {until}")
    return start, end


def _parse(option: str, value: str, tz: Any) -> datetime:
    try:
        return clock.parse_iso(value, tz)
    except InputError as exc:
        raise InputError(f"{option}: {exc}") from None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _bounds(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    return (since or _BEGINNING, until or _END)


def compute(
    store: Store,
    defs: dict[str, Definition] | None = None,
    *,
    sequence: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """`{"sequences": [{"name", ..., "steps": [{"id", ...}]}], "campaigns": [...]}` for the period."""
    defs = defs or {}
    low, high = _bounds(since, until)
    names = store.stats_sequence_names()
    names += [name for name in defs if name not in names]
    if sequence is not None:
        if sequence not in names:
            known = ", ".join(names) or "none yet"
            raise NotFound(f"no sequence {sequence!r} (known: {known})")
        names = [sequence]
    by_step: dict[str, dict[str, dict[str, Any]]] = {}
    for row in store.mail_figures("step", low, high, sequence):
        by_step.setdefault(row["sequence"], {})[row["step_id"] or ""] = row
    by_sequence = {row["sequence"]: row for row in store.mail_figures("sequence", low, high, sequence)}
    result = {
        "period": {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None},
        "sequences": [
            _sequence(store, name, defs.get(name), by_step.get(name, {}), by_sequence.get(name), low, high)
            for name in names
        ],
        "campaigns": [] if sequence is not None else _campaigns(store, low, high, since or until),
        "overall": figures(next(iter(store.mail_figures("all", low, high, sequence)), None)),
    }
    return result


def _sequence(
    store: Store,
    name: str,
    definition: Definition | None,
    steps: dict[str, dict[str, Any]],
    total: dict[str, Any] | None,
    low: datetime,
    high: datetime,
) -> dict[str, Any]:
    order = list(definition.steps) if definition else []
    order += [step_id for step_id in steps if step_id not in order]
    entry: dict[str, Any] = {"name": name, **figures(total)}
    if definition and definition.goal_event:
        within = definition.goal_within or timedelta(days=36500)
        journeys, converted = store.journey_conversions(name, definition.goal_event, within.total_seconds(), low, high)
        entry["goal"] = {
            "event": definition.goal_event,
            "within": _duration(definition.goal_within) if definition.goal_within else None,
        }
        entry.update(journeys=journeys, converted=converted, conversion_rate=_rate(converted, journeys))
    else:
        entry.update(journeys=store.journeys_count(name, low, high), goal=None, converted=None, conversion_rate=None)
    entry["steps"] = [{"id": step_id, **figures(steps.get(step_id))} for step_id in order]
    return entry


def _campaigns(store: Store, low: datetime, high: datetime, bounded: object) -> list[dict[str, Any]]:
    rows = {row["campaign_id"]: row for row in store.mail_figures("campaign", low, high)}
    found = []
    for campaign in store.campaigns_all():
        row = rows.get(campaign["id"])
        if row is None and bounded and not low <= campaign["scheduled_at"] < high:
            continue
        found.append({"name": campaign["name"], "template": campaign["template"], **figures(row)})
    return found


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- per day --------------------------------------------------------------------------


def daily(
    store: Store, tz: Any, *, sequence: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Mails sent and first read by a person, per local day: [{"day", "sent", "opened"}]."""
    low, high = _bounds(since, until)
    days: dict[str, dict[str, int]] = {}
    for key, series in (
        ("sent", store.sends_per_hour(low, high, sequence)),
        ("opened", store.first_opens_per_hour(low, high, sequence)),
    ):
        for hour, count in series:
            moment = datetime.fromisoformat(hour + ":00:00+00:00")
            day = moment.astimezone(tz).date().isoformat()
            bucket = days.setdefault(day, {"sent": 0, "opened": 0})
            bucket[key] += count
    return _fill_gaps(days)


def _fill_gaps(days: dict[str, dict[str, int]], longest: int = 731) -> list[dict[str, Any]]:
    """Every day from the first to the last (zeros where nothing happened), for a readable chart."""
    if not days:
        return []
    first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    span = (last - first).days + 1
    if span > longest:
        return [{"day": day, **days[day]} for day in sorted(days)]
    every = (first + timedelta(days=n) for n in range(span))
    return [{"day": d.isoformat(), **days.get(d.isoformat(), {"sent": 0, "opened": 0})} for d in every]


# --- CSV ----------------------------------------------------------------------------------

CSV_HEADER = ["kind", "name", "step", *COUNTS, *RATES]


def to_csv(result: dict[str, Any]) -> str:
    """One row per sequence (step empty), per step and per campaign."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)

    def values(entry: dict[str, Any]) -> list[Any]:
        return [entry[key] for key in COUNTS] + ["" if entry[key] is None else entry[key] for key in RATES]

    for sequence in result["sequences"]:
        writer.writerow(["sequence", sequence["name"], "", *values(sequence)])
        for step in sequence["steps"]:
            writer.writerow(["step", sequence["name"], step["id"], *values(step)])
    for campaign in result["campaigns"]:
        writer.writerow(["campaign", campaign["name"], "", *values(campaign)])
    return out.getvalue()


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def percent_in(locale: str) -> Callable[[float | None], str]:
    """A rate as the locale writes it with one decimal: 0,0 % in French, 0.0% in English."""
    parsed = Locale.parse(locale)
    pattern = re.sub(r"0(?!.*0)", "0.0", parsed.percent_formats[None].pattern, count=1)

    def show(rate: float | None) -> str:
        return "–" if rate is None else format_percent(rate, pattern, locale=parsed)

    return show


# --- HTML report --------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2933}
body{margin:32px auto;max-width:980px;padding:0 16px}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:40px;border-bottom:1px solid #e4e7eb;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{padding:6px 8px;text-align:right;border-bottom:1px solid #eef0f2}
th:first-child,td:first-child{text-align:left}th{color:#52606d;font-weight:600}
.bar{display:inline-block;height:10px;border-radius:2px;vertical-align:middle;margin-right:6px}
.o{background:#1f5fbf}.c{background:#2e9e5b}.u{background:#d9822b}.b{background:#c23030}
.rate{white-space:nowrap;text-align:left}.muted{color:#7b8794}.legend span{margin-right:16px}
"""


def html_report(
    result: dict[str, Any],
    days: list[dict[str, Any]],
    *,
    centre: str,
    generated: str,
    period: str,
    locale: str = "fr_FR",
) -> str:
    """A self-contained HTML page in French (inline CSS and SVG, no script, nothing fetched)."""
    show = percent_in(locale)
    parts = [
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">',
        f"<title>Statistiques e-mail – {escape(centre)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Statistiques e-mail – {escape(centre)}</h1>",
        f'<p class="muted">Période : {escape(period)} · généré le {escape(generated)}. '
        "Ouvertures et clics comptent les personnes (pas les robots ni les proxys) ; "
        "taux calculés sur les e-mails délivrés (rebonds : sur les envoyés).</p>",
        "<h2>Envois et ouvertures par jour</h2>",
        _daily_svg(days),
    ]
    for sequence in result["sequences"]:
        parts.append(f"<h2>Séquence {escape(sequence['name'])}</h2>")
        goal = sequence.get("goal")
        if goal:
            within = f" en {_french_duration(goal['within'])}" if goal.get("within") else ""
            parts.append(
                f"<p>Objectif <b>{escape(goal['event'])}</b>{within} : {sequence['converted']} parcours sur "
                f"{sequence['journeys']} ({show(sequence['conversion_rate'])}).</p>"
            )
        rows = [(step["id"], step) for step in sequence["steps"]] + [("Total", sequence)]
        parts.append(_table("Étape", rows, show))
    if result["campaigns"]:
        parts.append("<h2>Campagnes</h2>")
        parts.append(_table("Campagne", [(c["name"], c) for c in result["campaigns"]], show))
    if not result["sequences"] and not result["campaigns"]:
        parts.append("<p>Aucun envoi sur la période.</p>")
    parts.append("</body></html>\n")
    return french_spacing_html("\n".join(parts))


def _french_duration(text: str) -> str:
    """'2w' -> '2 semaines', '14d' -> '14 jours', '48h' -> '48 heures'."""
    amount, unit = int(text[:-1]), text[-1]
    words = {"w": ("semaine", "semaines"), "d": ("jour", "jours"), "h": ("heure", "heures"), "m": ("minute", "minutes")}
    one, many = words.get(unit, ("seconde", "secondes"))
    return f"{amount} {one if amount == 1 else many}"


def _table(first: str, rows: list[tuple[str, dict[str, Any]]], show: Callable[[float | None], str]) -> str:
    head = (
        f"<table><tr><th>{escape(first)}</th><th>Envoyés</th><th>Délivrés</th><th>Ouverts</th><th>Cliqués</th>"
        '<th>Désinscrits</th><th>Rebonds</th><th>Plaintes</th><th class="rate">Taux</th></tr>'
    )
    body = []
    for label, entry in rows:
        bars = "<br>".join(
            _bar(css, entry[key], name, show)
            for css, key, name in (
                ("o", "open_rate", "ouverture"),
                ("c", "click_rate", "clic"),
                ("u", "unsubscribe_rate", "désinscription"),
                ("b", "bounce_rate", "rebond"),
                ("b", "complaint_rate", "plainte"),
            )
        )
        cells = "".join(f"<td>{entry[key]}</td>" for key in COUNTS)
        body.append(f'<tr><td>{escape(str(label))}</td>{cells}<td class="rate">{bars}</td></tr>')
    return head + "".join(body) + "</table>"


def _bar(css: str, rate: float | None, name: str, show: Callable[[float | None], str]) -> str:
    width = 0 if rate is None else max(1, round(rate * 160)) if rate else 0
    return f'<span class="bar {css}" style="width:{width}px"></span>{show(rate)} {name}'


def _daily_svg(days: list[dict[str, Any]]) -> str:
    if not days:
        return '<p class="muted">Aucun envoi sur la période.</p>'
    width, height, pad = 900, 220, 30
    peak = max(max(d["sent"], d["opened"]) for d in days) or 1
    slot = (width - 2 * pad) / len(days)
    bar = max(slot / 2 - 1, 1)
    shapes = []
    for i, day in enumerate(days):
        x = pad + i * slot
        for offset, key, colour in ((0.0, "sent", "#9aa5b1"), (bar, "opened", "#1f5fbf")):
            h = (height - 2 * pad) * day[key] / peak
            shapes.append(
                f'<rect x="{x + offset:.1f}" y="{height - pad - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(day["day"])} : {day[key]} '
                f"{'envoyés' if key == 'sent' else 'ouverts'}</title></rect>"
            )
    step = max(1, len(days) // 10)
    labels = [
        f'<text x="{pad + i * slot:.1f}" y="{height - 8}" font-size="10" fill="#52606d">{escape(d["day"][5:])}</text>'
        for i, d in enumerate(days)
        if i % step == 0
    ]
    axis = f'<text x="2" y="{pad - 8}" font-size="10" fill="#52606d">max {peak}</text>'
    legend = (
        '<p class="legend"><span><span class="bar" style="width:10px;background:#9aa5b1"></span>envoyés</span>'
        '<span><span class="bar o" style="width:10px"></span>ouverts (personnes)</span></p>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Envois et ouvertures par jour">{"".join(shapes)}{"".join(labels)}{axis}</svg>{legend}'
    )
