"""Sequences edited while journeys are in flight, over a simulated fortnight (SPEC 12).

Eight contacts enter a five-step service sequence over four days while the
real CLI runs every three hours (EDUMAIL_NOW). Meanwhile a step is removed,
one inserted, one renamed, one re-timed, and another sequence's file deleted.
No run may fail, no step may go twice to anyone (a renamed step included), and
every step that should go does, at its time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from journeys_support import PARIS, T, add_contact, event, install_library, open_project, write_sequence

STEPS = {
    "s1": "  - id: s1\n    send: bienvenue\n",
    "s2": "  - id: s2\n    wait: 2d\n    send: bienvenue\n",
    "s2b": "  - id: s2b\n    wait: 1d\n    send: bienvenue\n",
    "s3": "  - id: s3\n    wait: 2d\n    send: bienvenue\n",
    "s4": "  - id: s4\n    wait: 2d\n    send: bienvenue\n",
    "s4b": "  - id: s4b\n    wait: 2d\n    send: bienvenue\n",
    "s5": "  - id: s5\n    wait: 2d\n    send: bienvenue\n",
}
EDITS = {  # local time -> the steps of the file from then on (None: delete the other sequence)
    "2026-12-04T12:00": ["s1", "s2", "s4", "s5"],  # s3 removed
    "2026-12-06T12:00": ["s1", "s2", "s2b", "s4", "s5"],  # s2b inserted
    "2026-12-08T12:00": ["s1", "s2", "s2b", "s4b", "s5"],  # s4 renamed s4b
    "2026-12-10T12:00": ["s1", "s2", "s2b", "s4b", "s5:3d"],  # s5 re-timed
    "2026-12-12T12:00": None,  # autre.yaml deleted
}


def _write(root: Path, steps: list[str]) -> None:
    text = "purpose: service\ntrigger: {event: go}\nsteps:\n"
    for step in steps:
        name, _, wait = step.partition(":")
        text += STEPS[name].replace("wait: 2d", f"wait: {wait}") if wait else STEPS[name]
    write_sequence(root, "suite", text)


def test_a_fortnight_of_edits_while_journeys_are_in_flight(project_dir: Path, cli) -> None:  # noqa: ANN001
    install_library(project_dir, sequences=False)
    _write(project_dir, ["s1", "s2", "s3", "s4", "s5"])
    write_sequence(
        project_dir, "autre", "purpose: service\ntrigger: {event: go}\nsteps:\n  - wait: 20d\n    send: bienvenue\n"
    )
    assert cli("run", "--once", now="2026-12-01T08:00").exit_code == 0
    project = open_project(project_dir)
    people = {}
    for n in range(8):  # one every 12 hours from 12-01 09:00
        at = T("2026-12-01T09:00") + timedelta(hours=12 * n)
        people[n] = (add_contact(project, f"p{n}@example.org"), at)
    project.close()

    moment, end = T("2026-12-01T09:00"), T("2026-12-15T09:00")
    pending = sorted(EDITS.items())
    while moment <= end:
        for cid, at in people.values():
            if at <= moment < at + timedelta(hours=3):
                event(open_project(project_dir), cid, "go", _local(at))
        while pending and T(pending[0][0]) <= moment:
            steps = pending.pop(0)[1]
            if steps is None:
                (project_dir / "sequences" / "autre.yaml").unlink()
            else:
                _write(project_dir, steps)
            assert cli("check").exit_code == 0
        result = cli("run", "--once", now=_local(moment))
        assert result.exit_code == 0, result.output
        moment += timedelta(hours=3)

    store = open_project(project_dir).store()
    mails = defaultdict(list)
    for mail in store.rows("SELECT contact_id, sequence, step_id, not_before, queued_at, state FROM mails ORDER BY id"):
        assert mail["state"] == "sent"
        mails[(mail["contact_id"], mail["sequence"])].append((mail["step_id"], mail["not_before"], mail["queued_at"]))
    assert store.rows("SELECT * FROM journey_log WHERE outcome IN ('skipped', 'failed')") == []
    for cid, _ in people.values():
        got = mails[(cid, "suite")]
        steps = [step for step, _, _ in got]
        assert len(steps) == len(set(steps)), f"a step went twice to {cid}: {steps}"
        assert steps[:2] == ["s1", "s2"] and steps[-1] == "s5", steps
        assert ("s4" in steps) != ("s4b" in steps), f"the renamed step went twice (or never) to {cid}: {steps}"
        times = {step: due for step, due, _ in got}  # when each was due
        decided = {step: queued for step, _, queued in got}  # the run that queued it
        edit = [T(at) for at in EDITS]  # each edit lands just before the run at its time
        assert ("s3" in steps) == (times["s2"] + timedelta(days=2) < edit[0]), steps
        if "s3" in steps:
            assert decided["s3"] < edit[0]
        fourth = decided.get("s4") or decided["s4b"]
        if "s2b" in steps:  # inserted after where the journey stood: runs when reached, before the next step
            assert edit[1] <= decided["s2b"] < fourth
        else:  # it stood past it already
            assert fourth < edit[1]
        assert ("s4b" in steps) == (fourth >= edit[2]), steps
        previous = times[steps[steps.index("s5") - 1]]
        wait = timedelta(days=3) if previous + timedelta(days=2) >= edit[3] else timedelta(days=2)
        assert times["s5"] == previous + wait, (steps, times)
        (journey,) = store.rows("SELECT state FROM journeys WHERE contact_id = ? AND sequence = 'suite'", (cid,))
        assert journey["state"] == "completed"
        assert mails[(cid, "autre")] == []
        (other,) = store.rows(
            "SELECT state, end_reason FROM journeys WHERE contact_id = ? AND sequence = 'autre'", (cid,)
        )
        assert (other["state"], other["end_reason"]) == ("exited", "sequence removed")


def _local(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
