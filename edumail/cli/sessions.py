"""`edumail sessions import/list/show/set/cancel`: the centre's calendar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from edumail import clock
from edumail.cli import app
from edumail.cli.common import console, current_project, parse_at, parse_pairs

sessions_app = typer.Typer(help="Training sessions: import, list, show, move, cancel.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")


@sessions_app.command("import")
def sessions_import(
    file: Path = typer.Argument(..., help="CSV: id, formation, start, end, lieu, formateur, status, other columns."),
) -> None:
    """Create or update sessions from a CSV file (upsert by id); a bad row stops the whole file."""
    from edumail import sessions

    project = current_project()
    report = sessions.import_sessions(project.store(), file, now=clock.now(), tz=project.settings.tz)
    for change in report.changes:
        if change.moved or change.cancelled:
            console.print(change.describe(project.settings.tz), soft_wrap=True)
    console.print(f"[green]{file.name}:[/green] {report.summary()}")


@sessions_app.command("list")
def sessions_list(
    since: str | None = typer.Option(None, "--from", help="Only sessions ending at or after this time (ISO 8601)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List sessions by start, with their learner count."""
    from rich.table import Table

    project = current_project()
    tz = project.settings.tz
    store = project.store()
    found = store.list_sessions(since=parse_at(since, project, "--from") if since else None)
    counts = store.session_learner_counts()
    if json_:
        out = [{**_as_json(s, tz), "learners": counts.get(s["id"], 0)} for s in found]
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    table = Table("id", "formation", "start", "end", "lieu", "status", "learners", box=None)
    for s in found:
        status = s["status"] + (f": {s['cancel_reason']}" if s["cancel_reason"] else "")
        start, end = clock.show(s["start"], tz), clock.show(s["end"], tz)
        table.add_row(s["id"], s["formation"], start, end, s["lieu"], status, str(counts.get(s["id"], 0)))
    console.print(table)
    console.print(f"{len(found)} session(s)")


@sessions_app.command("show")
def sessions_show(
    session_id: str = typer.Argument(..., metavar="ID", help="The session's id."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a session: its learners, their attendance, mails and evaluations."""
    from rich.table import Table

    from edumail import sessions

    project = current_project()
    tz = project.settings.tz
    store = project.store()
    session = sessions.require(store, session_id)
    people = sessions.learners(store, session["id"])
    if json_:
        out = {**_as_json(session, tz), "learners": [_learner_json(e) for e in people]}
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    console.print(f"[bold]{session['id']}[/bold]  {session['formation']}")
    console.print(f"  {clock.show(session['start'], tz)} -> {clock.show(session['end'], tz)}  {session['lieu']}")
    if session["formateur"]:
        console.print(f"  formateur: {session['formateur']}")
    status = session["status"] + (f" ({session['cancel_reason']})" if session["cancel_reason"] else "")
    console.print(f"  status: {status}; {len(people)} learner(s)")
    table = Table("learner", "attendance", "evaluation", "mails", box=None)
    for entry in people:
        evaluation = entry["evaluation"]
        answered = "-"
        if evaluation is not None:
            note = evaluation["data"].get("note")
            answered = clock.show(evaluation["at"], tz) + (f" (note {note})" if note not in (None, "") else "")
        mails = ", ".join(f"{m['template']} {m['state']}" for m in entry["mails"]) or "-"
        table.add_row(entry["contact"]["email"], sessions.attendance(entry) or "-", answered, mails)
    console.print(table)


@sessions_app.command("set")
def sessions_set(
    session_id: str = typer.Argument(..., metavar="ID", help="The session's id."),
    pairs: list[str] = typer.Argument(None, metavar="FIELD=VALUE...", help="e.g. start=2026-12-14T09:30 lieu=Lyon"),
) -> None:
    """Change one session; moving it tells each learner and re-times their mails at the next run."""
    from edumail import sessions

    project = current_project()
    values = parse_pairs(pairs, "FIELD=VALUE (quote a value with a space: start='14/10/2026 09:30')")
    change = sessions.set_fields(project.store(), session_id, values, now=clock.now(), tz=project.settings.tz)
    console.print(change.describe(project.settings.tz), soft_wrap=True)


@sessions_app.command("cancel")
def sessions_cancel(
    session_id: str = typer.Argument(..., metavar="ID", help="The session's id."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with the session and in the notice)."),
) -> None:
    """Cancel a session: each learner gets `session_cancelled` and their session journeys end."""
    from edumail import sessions

    project = current_project()
    change = sessions.cancel(project.store(), session_id, reason=reason, now=clock.now())
    console.print(change.describe(project.settings.tz), soft_wrap=True)


def _as_json(session: dict[str, Any], tz: Any) -> dict[str, Any]:
    return {
        "id": session["id"],
        "formation": session["formation"],
        "start": session["start"].astimezone(tz).isoformat(),
        "end": session["end"].astimezone(tz).isoformat(),
        "lieu": session["lieu"],
        "formateur": session["formateur"],
        "status": session["status"],
        "cancel_reason": session["cancel_reason"],
        "fields": session["fields"],
    }


def _learner_json(entry: dict[str, Any]) -> dict[str, Any]:
    from edumail import contacts, sessions

    evaluation = entry["evaluation"]
    return {
        "email": entry["contact"]["email"],
        "name": contacts.display_name(entry["contact"]),
        "attendance": sessions.attendance(entry) or None,
        "evaluation": None
        if evaluation is None
        else {"at": evaluation["at"].isoformat(), "note": evaluation["data"].get("note")},
        "mails": [
            {
                "template": m["template"],
                "state": m["state"],
                "queued_at": m["queued_at"].isoformat() if m["queued_at"] else None,
                "sent_at": m["sent_at"].isoformat() if m["sent_at"] else None,
                "message_id": m["message_id"],
            }
            for m in entry["mails"]
        ],
    }


@app.command()
def audit(
    session_id: str | None = typer.Option(None, "--session", help="One session's proof."),
    email: str | None = typer.Option(None, "--contact", help="One learner's proof, every session."),
    since: str | None = typer.Option(None, "--from", help="A period: the sessions starting from this time (ISO)."),
    until: str | None = typer.Option(None, "--until", help="...and before this time (ISO)."),
    out: Path | None = typer.Option(None, "--out", help="Write audit.html and audit.csv in this folder."),
) -> None:
    """The Qualiopi proof: mails sent, delivered, read, and evaluations, per session and learner."""
    from rich.table import Table

    from edumail import audit as audit_module

    project = current_project()
    tz = project.settings.tz
    found = audit_module.build(
        project.store(),
        session_id=session_id,
        email=email,
        since=parse_at(since, project, "--from") if since else None,
        until=parse_at(until, project, "--until") if until else None,
        tz=tz,
    )
    if out is not None:
        paths = audit_module.write(found, out, tz, project.settings.sender.name, clock.now())
        console.print(f"{len(found.sessions)} session(s): " + ", ".join(str(p) for p in paths), soft_wrap=True)
        return
    table = Table("session", "formation", "start", "status", "learners", "mails sent", "evaluations", "rate", "mean")
    for proof in found.sessions:
        rates = found.rates([proof])
        sent = sum(1 for lp in proof.learners for m in lp.mails if m.state == "sent")
        s = proof.session
        table.add_row(
            s["id"],
            s["formation"],
            clock.show(s["start"], tz),
            s["status"],
            str(len(proof.learners)),
            str(sent),
            f"{rates['respondents']}/{rates['expected']}",
            _rate(rates["rate"]),
            _mean(rates["mean_note"]),
        )
    console.print(table)
    total = found.rates()
    console.print(
        f"{found.scope}: {len(found.sessions)} session(s), evaluations {total['respondents']}/{total['expected']}"
        f" ({_rate(total['rate'])}), mean note {_mean(total['mean_note'])}; --out DIR writes audit.html and audit.csv",
        soft_wrap=True,
    )


def _rate(value: float | None) -> str:
    return "missing" if value is None else f"{value:.0%}"


def _mean(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
