"""segments/*.yaml, `audience: {segment: NAME}`, `topic:` on sequences and literal `at:` times in steps."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli
from journeys_support import T, add_contact, add_settings, install_library, open_project, run, write_sequence

from edumail import segments, sequences


def write_segment(root: Path, name: str, text: str) -> None:
    (root / "segments").mkdir(exist_ok=True)
    (root / "segments" / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_a_segment_file_is_an_audience(project_dir):
    write_segment(project_dir, "prospects-lyon", "description: Lyon\nstage: [prospect, lead]\nfields: {ville: Lyon}\n")
    audience = segments.load_one(open_project(project_dir), "prospects-lyon")
    assert audience.stage == ("prospect", "lead") and audience.fields == {"ville": "Lyon"}


def test_an_unknown_key_in_a_segment_is_a_file_line_error(project_dir):
    write_segment(project_dir, "chauds", "stage: lead\ncolour: red\n")
    result = Cli(project_dir)("check")
    assert result.exit_code == 1
    assert "segments/chauds.yaml:2: unknown key 'colour' (known: stage, tags, not_tags, fields, description)" in (
        result.output
    )


def test_an_empty_segment_is_refused(project_dir):
    write_segment(project_dir, "tous", "description: tout le monde\n")
    result = Cli(project_dir)("check")
    assert "segments/tous.yaml:1: a segment needs at least one of stage, tags, not_tags, fields" in result.output


def test_a_sequence_audience_names_a_segment(project_dir):
    write_segment(project_dir, "chauds", "stage: [lead]\ntags: [webinar]\n")
    write_sequence(
        project_dir,
        "suivi",
        "trigger: {event: demande}\naudience: {segment: chauds, not_tags: [client]}\nsteps:\n  - tag: suivi\n",
    )
    (sequence,) = sequences.load_all(open_project(project_dir))
    assert sequence.audience.stage == ("lead",)
    assert sequence.audience.tags == ("webinar",) and sequence.audience.not_tags == ("client",)
    assert sequence.audience.describe() == "segment chauds (stage lead; tags webinar; without client)"


def test_a_segment_trigger_may_name_a_segment(project_dir):
    write_segment(project_dir, "chauds", "stage: lead\n")
    write_sequence(project_dir, "suivi", "trigger: {segment: chauds}\nsteps:\n  - tag: suivi\n")
    (sequence,) = sequences.load_all(open_project(project_dir))
    assert sequence.trigger.segment.stage == ("lead",)


def test_check_reports_an_unknown_segment_at_its_line(project_dir):
    write_segment(project_dir, "chauds", "stage: lead\n")
    write_sequence(
        project_dir, "suivi", "trigger: {event: demande}\n\naudience: {segment: chaud}\nsteps:\n  - tag: suivi\n"
    )
    result = Cli(project_dir)("check")
    assert result.exit_code == 1
    assert "sequences/suivi.yaml:3: unknown segment 'chaud' (did you mean 'chauds'?) (segments/ has: chauds)" in (
        result.output
    )


def test_a_segment_and_an_audience_that_exclude_each_other_are_reported(project_dir):
    write_segment(project_dir, "chauds", "stage: lead\n")
    write_sequence(
        project_dir, "suivi", "trigger: {event: d}\naudience: {segment: chauds, stage: client}\nsteps:\n  - tag: x\n"
    )
    result = Cli(project_dir)("check")
    assert "sequences/suivi.yaml:2: segment 'chauds''s stage (lead) and the stage asked (client)" in result.output


def test_a_sequence_topic_must_be_a_settings_topic(project_dir):
    add_settings(project_dir, "topics:\n  newsletter: La lettre mensuelle\n")
    write_sequence(project_dir, "lettre", "topic: nouvelles\ntrigger: {event: d}\nsteps:\n  - tag: x\n")
    result = Cli(project_dir)("check")
    assert result.exit_code == 1
    assert "sequences/lettre.yaml:1: unknown topic 'nouvelles' (topics: newsletter)" in result.output


def test_settings_topics_are_validated(project_dir):
    add_settings(project_dir, "topics:\n  Newsletter!: La lettre\n  offres: ''\n")
    result = Cli(project_dir)("check")
    assert "edumail.yaml:8: topics: 'Newsletter!' is not a topic name" in result.output
    assert "edumail.yaml:9: topics.offres: expected the label people read" in result.output


def test_a_step_at_a_literal_time_runs_then(project_dir):
    install_library(project_dir, sequences=False)
    write_sequence(
        project_dir,
        "soldes",
        "trigger: {event: inscrit}\nsteps:\n  - at: 2026-12-01T09:00\n    tag: soldes\n"
        "  - at: 2026-12-03\n    time: '10:30'\n    tag: soldes-fin\n",
    )
    project = open_project(project_dir)
    run(project, "2026-11-20T08:00")
    cid = add_contact(project, "ada@example.org")
    Cli(project_dir)("event", "ada@example.org", "inscrit", now="2026-11-20T09:00")
    run(project, "2026-12-01T08:59")
    assert project.store().tags_of(cid) == []
    run(project, "2026-12-01T09:00")
    assert project.store().tags_of(cid) == ["soldes"]
    run(project, "2026-12-03T10:29")
    assert "soldes-fin" not in project.store().tags_of(cid)
    run(project, "2026-12-03T10:30")
    assert "soldes-fin" in project.store().tags_of(cid)
    assert T("2026-12-01T09:00").hour == 8  # 09:00 in Paris is 08:00 UTC in winter


def test_a_step_at_that_is_neither_a_time_nor_a_field_is_explained(project_dir):
    write_sequence(project_dir, "s", "trigger: {event: d}\nsteps:\n  - at: demain\n    tag: x\n")
    result = Cli(project_dir)("check")
    assert "sequences/s.yaml:3: at: expected a time such as 2026-12-01T09:00" in result.output


def test_a_sequence_with_a_topic_skips_who_left_it_and_tags_its_mails(project_dir):
    from journeys_support import context, event, journal, mails

    from edumail import topics

    install_library(project_dir, sequences=False)
    add_settings(project_dir, "topics:\n  newsletter: La lettre mensuelle\n")
    write_sequence(project_dir, "lettre", "topic: newsletter\ntrigger: {event: abonne}\nsteps:\n  - send: newsletter\n")
    project = open_project(project_dir)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    bob = add_contact(project, "bob@example.org")
    topics.leave(project.store(), bob, "newsletter", T("2026-12-01T08:30"), "test", {})
    event(project, ada, "abonne", "2026-12-01T09:00")
    event(project, bob, "abonne", "2026-12-01T09:00")
    run(project, "2026-12-01T10:00")
    (mail,) = mails(project)
    assert mail["contact_id"] == ada and context(mail)["topic"] == "newsletter"
    assert ("lettre", "newsletter", "skipped", "left topic newsletter") in journal(project, bob)
