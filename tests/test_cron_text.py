"""The plain crontab forms checked without APScheduler are forms APScheduler accepts."""

import os
import random
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from edumail.cron_text import plainly_valid

ITEMS = [
    *("*", "*/1", "*/0", "*/5", "*/6", "*/7", "*/11", "*/12", "*/23", "*/24", "*/30", "*/31", "*/59", "*/60"),
    *("0", "1", "5", "6", "7", "12", "13", "23", "24", "31", "32", "59", "60", "00", "09", "-1", "1-", "٣"),
    *("1-5", "5-1", "0-6", "0-7", "1-12", "1-31", "0-59", "mon", "sun", "mon-fri", "fri-mon", "mon-mon"),
    *("jan", "dec", "jan-mar", "mar-jan", "Mon", "1-5/2", "last", "mon-5", "1st mon", "x", ""),
]


def test_what_is_plainly_valid_apscheduler_accepts():
    rng = random.Random(17)
    accepted = 0
    for _ in range(20_000):
        text = " ".join(",".join(rng.choice(ITEMS) for _ in range(rng.choice((1, 1, 2)))) for _ in range(5))
        if plainly_valid(text):
            accepted += 1
            CronTrigger.from_crontab(text, timezone=ZoneInfo("Europe/Paris"))  # raises if not
    assert accepted > 20


@pytest.mark.parametrize("text", ["0 9 * * mon", "30 8 1 * *", "0 9 * * mon-fri", "*/15 * * * *", "0 0 1 jan,jul *"])
def test_the_usual_schedules_are_plainly_valid(text):
    assert plainly_valid(text)


@pytest.mark.parametrize("text", ["0 9 * *", "0 9 * * * *", "60 9 * * mon", "0 9 * * lundi", "0 9 L * *"])
def test_anything_else_is_left_to_apscheduler(text):
    assert not plainly_valid(text)


SCHEDULE = 'reenter: true\ntrigger:\n  schedule: "0 9 * * mon"\nsteps:\n  - tag: lu\n'


def test_a_run_with_no_firing_due_does_not_load_apscheduler(project_dir):
    (project_dir / "sequences" / "lettre.yaml").write_text(SCHEDULE, encoding="utf-8")
    code = (
        "import sys\nsys.argv = ['edumail', 'run', '--once']\nfrom edumail.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('apscheduler' in sys.modules, file=sys.stderr)"
    )
    loaded = []
    for now in ("2026-12-01T08:00:00+01:00", "2026-12-02T08:00:00+01:00", "2026-12-07T09:30:00+01:00"):
        env = {**os.environ, "EDUMAIL_PROJECT": str(project_dir), "EDUMAIL_NOW": now}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        loaded.append(result.stderr.strip().splitlines()[-1])
    # first sight computes the next firing; Wednesday is before it; Monday 9:30 is after it (it fires)
    assert loaded == ["True", "False", "True"]
