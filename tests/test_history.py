"""`contacts show`: the timeline a person reads, in local time and in words."""

from __future__ import annotations

from pathlib import Path

SEQUENCE = """\
description: Prévenir l'équipe quand un prospect regarde les tarifs
trigger: {event: clic_tarifs}
steps:
  - id: alerte
    tag: prospect-chaud
    notify: equipe@centre.example
"""


def test_the_timeline_shows_a_staff_alert_in_words_and_times_in_the_project_timezone(cli, project_dir: Path) -> None:
    (project_dir / "sequences" / "chauds.yaml").write_text(SEQUENCE, encoding="utf-8")
    (project_dir / "c.csv").write_text("email,first_name\nada@example.org,Ada\n", encoding="utf-8")
    assert cli("contacts", "import", str(project_dir / "c.csv"), now="2026-12-01T07:00:00Z").exit_code == 0
    cli("run", "--once", now="2026-12-01T07:00:00Z")
    cli("event", "ada@example.org", "clic_tarifs", now="2026-12-01T08:00:00Z")
    assert cli("run", "--once", now="2026-12-01T08:01:00Z").exit_code == 0
    shown = cli("contacts", "show", "ada@example.org", now="2026-12-01T08:05:00Z")
    assert shown.exit_code == 0, shown.output
    lines = [" ".join(line.split()) for line in shown.output.splitlines()]
    assert "__notify__" not in shown.output and "\\xa0" not in shown.output
    [alert] = [line for line in lines if "staff alert" in line]
    assert alert.startswith("2026-12-01 09:01 chauds / alerte: staff alert to equipe@centre.example")
    assert any(line.startswith("2026-12-01 09:00 clic_tarifs") for line in lines), "Paris time, not UTC"
