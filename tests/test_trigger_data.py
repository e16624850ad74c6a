"""`trigger: {event: X, data: [...]}`: check reads of event.x, warn on events without a declared key (SPEC 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from journeys_support import install_library, write_sequence

SEQUENCE = "trigger: {event: inscrit, data: [formation]}\nsteps:\n  - send: fiche\n"
TEMPLATE = (
    "---\nsubject: Votre formation {{ event.formation }}\n---\n"
    "<p>{{ event.lieu }} {{ event.salle | default('') }}</p>\n"
)


@pytest.fixture
def root(project_dir: Path) -> Path:
    install_library(project_dir, sequences=False)
    (project_dir / "templates" / "fiche.html").write_text(TEMPLATE, encoding="utf-8")
    write_sequence(project_dir, "fiche", SEQUENCE)
    return project_dir


def test_check_reports_an_event_read_the_trigger_does_not_declare(root: Path, cli) -> None:  # noqa: ANN001
    result = cli("check")
    assert result.exit_code == 1
    assert "sequences/fiche.yaml:3: template 'fiche' reads event.lieu" in result.output
    assert "event.formation" not in result.output and "event.salle" not in result.output
    write_sequence(root, "fiche", SEQUENCE.replace("[formation]", "[formation, lieu]"))
    assert cli("check").exit_code == 0


def test_an_event_without_a_declared_key_is_recorded_with_a_warning(root: Path, cli) -> None:  # noqa: ANN001
    result = cli("event", "ada@example.org", "inscrit", "--data", "lieu=Lyon")
    assert result.exit_code == 0 and "recorded inscrit" in result.output
    assert "sequence 'fiche' expects 'formation' in inscrit events" in result.output
    quiet = cli("event", "ada@example.org", "inscrit", "--data", "formation=Excel")
    assert "warning" not in quiet.output


def test_a_csv_event_without_a_declared_key_is_recorded_with_a_warning(root: Path, cli) -> None:  # noqa: ANN001
    path = root / "ev.csv"
    path.write_text("email,name,formation\nada@example.org,inscrit,\nbob@example.org,inscrit,Excel\n", encoding="utf-8")
    result = cli("events", "import", str(path))
    assert "ev.csv:2: warning: sequence 'fiche' expects 'formation' in inscrit events" in result.output
    assert "2 recorded" in result.output


def test_a_trigger_data_list_must_be_keys(root: Path, cli) -> None:  # noqa: ANN001
    write_sequence(root, "fiche", SEQUENCE.replace("[formation]", "formation"))
    assert "trigger.data: expected a list of keys" in cli("check").output


def test_the_api_returns_the_warning(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    from edumail import project as project_module
    from edumail.tracking import create_app

    monkeypatch.setenv("EDUMAIL_API_TOKEN", "t0ken-for-tests")
    with TestClient(create_app(project_module.load(root))) as client:
        body = {"email": "ada@example.org", "name": "inscrit", "data": {"lieu": "Lyon"}}
        answer = client.post("/api/events", json=body, headers={"Authorization": "Bearer t0ken-for-tests"})
    assert answer.status_code == 201
    assert answer.json()["warnings"] == ["sequence 'fiche' expects 'formation' in inscrit events (trigger data:)"]
