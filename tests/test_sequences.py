"""Loading and checking sequences/*.yaml: every problem as file:line: message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from journeys_support import T, install_library, open_project, write_sequence

from edumail import sequences
from edumail.errors import ConfigError


@pytest.fixture
def root(project_dir: Path) -> Path:
    install_library(project_dir, sequences=False)
    return project_dir


def problems(root: Path, text: str, name: str = "s") -> list[str]:
    write_sequence(root, name, text)
    return [str(p) for p in sequences.check(open_project(root))]


def one(root: Path, text: str) -> str:
    found = problems(root, text)
    assert len(found) == 1, found
    return found[0]


def test_library_sequences_load_without_problems(project_dir: Path) -> None:
    install_library(project_dir)
    loaded = sequences.load_all(open_project(project_dir))
    assert sorted(s.name for s in loaded) == [
        "double-optin",
        "rappel-session",
        "relance-inscription",
        "relance-sans-reponse",
    ]


def test_rappel_session_is_a_service_sequence_with_timed_steps(project_dir: Path) -> None:
    install_library(project_dir)
    seq = {s.name: s for s in sequences.load_all(open_project(project_dir))}["rappel-session"]
    assert seq.purpose == "service" and seq.trigger.event == "inscription_finalisee"
    assert [s.id for s in seq.steps] == [
        "confirmation-inscription",
        "rappel-session",
        "enquete-satisfaction",
        "relance-enquete",
    ]
    assert seq.steps[1].at is not None and seq.steps[1].at.offset == -timedelta(hours=24)
    assert seq.steps[2].time == (9, 0)
    assert seq.steps[3].condition is not None and seq.steps[3].condition.kind == "not_clicked"


def test_double_optin_is_triggered_by_subscribed(project_dir: Path) -> None:
    install_library(project_dir)
    seq = {s.name: s for s in sequences.load_all(open_project(project_dir))}["double-optin"]
    assert (seq.trigger.event, seq.purpose, seq.steps[0].template) == ("subscribed", "service", "double-optin")


def test_name_defaults_to_file_stem_and_step_ids_to_template_or_position(root: Path) -> None:
    write_sequence(root, "accueil", "trigger: {event: x}\nsteps:\n  - send: bienvenue\n  - tag: nouveau\n")
    (seq,) = sequences.load_all(open_project(root))
    assert seq.name == "accueil" and seq.purpose == "marketing" and seq.enabled and not seq.reenter
    assert [s.id for s in seq.steps] == ["bienvenue", "step-2"]


def test_unknown_template_lists_the_available_ones(root: Path) -> None:
    message = one(root, "trigger: {event: x}\nsteps:\n  - send: relance-2\n")
    assert message.startswith("sequences/s.yaml:3: unknown template 'relance-2'")
    assert "templates/ has: absence, bienvenue, changement-de-date, confirmation-inscription" in message


def test_unknown_template_suggests_the_closest(root: Path) -> None:
    assert "did you mean 'bienvenue'?" in one(root, "trigger: {event: x}\nsteps:\n  - send: bienvenu\n")


def test_unknown_step_id_in_a_condition(root: Path) -> None:
    text = (
        "trigger: {event: x}\nsteps:\n  - send: bienvenue\n  - wait: 3d\n"
        "    if: {not_opened: bienvenu}\n    send: inactivite\n"
    )
    assert one(root, text) == (
        "sequences/s.yaml:5: unknown step id 'bienvenu' (did you mean 'bienvenue'?) (steps: bienvenue, inactivite)"
    )


def test_condition_on_a_step_that_sends_nothing(root: Path) -> None:
    text = "trigger: {event: x}\nsteps:\n  - tag: a\n  - if: {opened: step-1}\n    send: bienvenue\n"
    assert "step 'step-1' sends no mail" in one(root, text)


def test_condition_on_a_later_step(root: Path) -> None:
    text = "trigger: {event: x}\nsteps:\n  - if: {clicked: inactivite}\n    send: bienvenue\n  - send: inactivite\n"
    assert "comes after step 'bienvenue'" in one(root, text)


def test_nested_conditions_are_checked_too(root: Path) -> None:
    text = (
        "trigger: {event: x}\nsteps:\n  - send: bienvenue\n"
        "  - if:\n      any:\n        - {opened: bienvenue}\n        - not: {clicked: nope}\n    send: inactivite\n"
    )
    assert one(root, text).startswith("sequences/s.yaml:7: unknown step id 'nope'")


def test_duplicate_step_ids(root: Path) -> None:
    text = "trigger: {event: x}\nsteps:\n  - send: bienvenue\n  - wait: 1d\n    send: bienvenue\n"
    assert one(root, text) == (
        "sequences/s.yaml:4: duplicate step id 'bienvenue' (also on line 3); give one of them an id:"
    )


def test_bad_duration(root: Path) -> None:
    message = one(root, "trigger: {event: x}\nsteps:\n  - wait: 3 days\n    send: bienvenue\n")
    assert message.startswith("sequences/s.yaml:3: wait: '3 days' is not a duration")


def test_bad_cron(root: Path) -> None:
    message = one(root, 'trigger:\n  schedule: "0 9 * * lundi"\nsteps:\n  - send: newsletter\n')
    assert message.startswith("sequences/s.yaml:2: trigger.schedule: '0 9 * * lundi' is not a cron expression")


def test_good_cron_in_the_project_timezone(root: Path) -> None:
    write_sequence(root, "s", 'trigger:\n  schedule: "0 9 * * mon"\nsteps:\n  - send: newsletter\n')
    project = open_project(root)
    (seq,) = sequences.load_all(project)
    fire = seq.cron(project.settings.tz).get_next_fire_time(None, T("2026-12-01T12:00"))
    assert fire == T("2026-12-07T09:00")


def test_a_trigger_with_two_kinds(root: Path) -> None:
    message = one(root, "trigger:\n  event: x\n  inactive: 30d\nsteps:\n  - send: bienvenue\n")
    assert message == (
        "sequences/s.yaml:1: trigger: expected exactly one of event, segment, inactive, schedule, at"
        " (it has event, inactive)"
    )


def test_a_trigger_with_none(root: Path) -> None:
    assert "(it has none)" in one(root, "trigger: {}\nsteps:\n  - send: bienvenue\n")


def test_unknown_keys_with_did_you_mean(root: Path) -> None:
    found = problems(root, "trigger: {event: x}\nexit_onn: [y]\nsteps:\n  - send: bienvenue\n    wiat: 1d\n")
    assert found == [
        "sequences/s.yaml:2: unknown key exit_onn (did you mean 'exit_on'?) (known: name,"
        " description, purpose, enabled,"
        " trigger, audience, exit_on, reenter, goal, steps, topic)",
        "sequences/s.yaml:5: unknown key step.wiat (did you mean 'wait'?) (known: id, wait, at,"
        " time, if, else, set, stage,"
        " tag, untag, send, notify, webhook)",
    ]


def test_unknown_condition(root: Path) -> None:
    message = one(root, "trigger: {event: x}\nsteps:\n  - if: {no_events: y}\n    send: bienvenue\n")
    assert "unknown condition 'no_events' (did you mean 'no_event'?)" in message


def test_bad_at_expression(root: Path) -> None:
    message = one(root, "trigger: {event: x}\nsteps:\n  - at: session_start - 1d\n    send: bienvenue\n")
    assert message.startswith(
        "sequences/s.yaml:3: at: expected a time such as 2026-12-01T09:00, "
        "or event.FIELD, contact.FIELD or session.FIELD"
    )


def test_at_expression_with_bad_duration(root: Path) -> None:
    assert "is not a duration" in one(
        root, "trigger: {event: x}\nsteps:\n  - at: event.debut - 1 jour\n    send: bienvenue\n"
    )


def test_wait_and_at_together(root: Path) -> None:
    message = one(root, "trigger: {event: x}\nsteps:\n  - wait: 1d\n    at: event.debut\n    send: bienvenue\n")
    assert message == "sequences/s.yaml:4: a step takes wait: or at:, not both"


def test_time_of_day_quoted_or_not(root: Path) -> None:
    write_sequence(
        root,
        "s",
        'trigger: {event: x}\nsteps:\n  - time: 9:30\n    send: bienvenue\n  - time: "18:05"\n    send: inactivite\n',
    )
    (seq,) = sequences.load_all(open_project(root))
    assert [s.time for s in seq.steps] == [(9, 30), (18, 5)]


def test_bad_time_of_day(root: Path) -> None:
    assert "time: expected a local time of day" in one(
        root, 'trigger: {event: x}\nsteps:\n  - time: "25:00"\n    send: bienvenue\n'
    )


def test_step_without_action(root: Path) -> None:
    assert "step 1 has no action" in one(root, "trigger: {event: x}\nsteps:\n  - wait: 1d\n")


def test_else_must_be_exit(root: Path) -> None:
    message = one(root, "trigger: {event: x}\nsteps:\n  - if: {tag: a}\n    else: stop\n    send: bienvenue\n")
    assert message == "sequences/s.yaml:4: else: expected exit (or skip, the default), got 'stop'"


def test_bad_purpose(root: Path) -> None:
    assert "did you mean 'service'?" in one(root, "purpose: servce\ntrigger: {event: x}\nsteps:\n  - send: bienvenue\n")


def test_bad_webhook_and_notify(root: Path) -> None:
    found = problems(root, "trigger: {event: x}\nsteps:\n  - webhook: crm.example\n  - notify: jean\n")
    assert [f.split(": ", 1)[1] for f in found] == [
        "webhook: expected an http(s) URL, got 'crm.example'",
        "notify: expected the e-mail address of the person to alert, got 'jean'",
    ]


def test_set_cannot_touch_consent(root: Path) -> None:
    assert "'consent' cannot be set here" in one(root, "trigger: {event: x}\nsteps:\n  - set: {consent: opted_in}\n")


def test_segment_and_audience_keys(root: Path) -> None:
    found = problems(root, "trigger:\n  segment: {stages: lead}\naudience: {tag: [a]}\nsteps:\n  - send: bienvenue\n")
    assert "unknown key trigger.segment.stages (did you mean 'stage'?)" in found[0]
    assert "unknown key audience.tag (did you mean 'tags'?)" in found[1]


def test_where_only_on_event_triggers(root: Path) -> None:
    assert "only an event trigger takes where:" in one(
        root, "trigger:\n  inactive: 30d\n  where: {a: 1}\nsteps:\n  - send: inactivite\n"
    )


def test_bad_at_trigger(root: Path) -> None:
    assert "trigger.at: 'lundi' is not an ISO 8601 date" in one(
        root, "trigger: {at: lundi}\nsteps:\n  - send: newsletter\n"
    )


def test_duplicate_sequence_names_across_files(root: Path) -> None:
    write_sequence(root, "a", "name: pareil\ntrigger: {event: x}\nsteps:\n  - send: bienvenue\n")
    found = problems(root, "name: pareil\ntrigger: {event: y}\nsteps:\n  - send: bienvenue\n", name="b")
    assert found == ["sequences/b.yaml:1: sequence name 'pareil' is already used by sequences/a.yaml"]


def test_invalid_yaml_is_reported_with_its_line(root: Path) -> None:
    assert one(root, "trigger: {event: x}\nsteps:\n  - send: [bienvenue\n").startswith(
        "sequences/s.yaml:4: not valid YAML"
    )


def test_every_problem_of_every_file_at_once(root: Path) -> None:
    write_sequence(root, "a", "trigger: {event: x}\nsteps:\n  - send: nope\n")
    found = problems(root, "trigger: {inactive: 3x}\nsteps:\n  - send: bienvenue\n", name="b")
    assert [f.split(":")[0] for f in found] == ["sequences/a.yaml", "sequences/b.yaml"]


def test_load_all_raises_config_error_with_every_problem(root: Path) -> None:
    write_sequence(root, "a", "trigger: {event: x}\nsteps:\n  - send: nope\n  - send: nope2\n")
    with pytest.raises(ConfigError) as caught:
        sequences.load_all(open_project(root))
    assert len(caught.value.problems) == 2


def test_edumail_check_reports_sequence_problems(root: Path, cli) -> None:  # noqa: ANN001
    write_sequence(root, "s", "trigger: {event: x}\nsteps:\n  - send: relance-2\n")
    result = cli("check")
    assert result.exit_code == 1
    assert "sequences/s.yaml:3: unknown template 'relance-2'" in result.output
