"""The engine through time, with the example sequences: every mail, skip and exit.

Times are local (Europe/Paris); the first run of each test is the moment the
sequences are first seen, so that the events recorded after it enrol.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from journeys_support import (
    T,
    add_contact,
    add_settings,
    context,
    event,
    install_library,
    journal,
    journeys,
    mails,
    open_project,
    outcomes,
    run,
    sent,
)

from edumail import clock, contacts
from edumail import journeys as journeys_module
from edumail.project import Project

SESSION = {
    "formation": "Excel avancé",
    "session_start": "2026-12-10T09:00",
    "session_end": "2026-12-11T17:00",
    "lien_enquete": "https://centre.example/avis",
}


@pytest.fixture
def project(project_dir: Path) -> Project:
    install_library(project_dir)
    loaded = open_project(project_dir)
    run(loaded, "2026-12-01T08:00")  # the sequences are first seen here
    return loaded


# --- rappel-session (service) ---------------------------------------------------------


def test_rappel_session_walkthrough(project: Project) -> None:
    ada = add_contact(project, "ada@example.org", consent="unknown")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **SESSION)

    run(project, "2026-12-01T10:05")
    assert sent(project, ada) == [("confirmation-inscription", "confirmation-inscription", "2026-12-01T10:00")]
    assert context(mails(project, ada)[0]) == {"event": SESSION}

    run(project, "2026-12-09T08:59")
    assert len(mails(project, ada)) == 1
    run(project, "2026-12-09T09:00")
    assert sent(project, ada)[-1] == ("rappel-session", "rappel-session", "2026-12-09T09:00")

    run(project, "2026-12-12T08:59")
    assert len(mails(project, ada)) == 2
    run(project, "2026-12-12T09:00")
    assert sent(project, ada)[-1] == ("enquete-satisfaction", "enquete-satisfaction", "2026-12-12T09:00")

    run(project, "2026-12-15T08:59")
    assert len(mails(project, ada)) == 3
    run(project, "2026-12-15T09:00")
    assert sent(project, ada)[-1] == ("relance-enquete", "enquete-satisfaction", "2026-12-15T09:00")
    assert [m["purpose"] for m in mails(project, ada)] == ["service"] * 4

    assert outcomes(project, ada) == [
        ("", "entered"),
        ("confirmation-inscription", "sent"),
        ("rappel-session", "sent"),
        ("enquete-satisfaction", "sent"),
        ("relance-enquete", "sent"),
        ("", "completed"),
    ]
    (journey,) = journeys(project, ada)
    assert journey["state"] == "completed" and journey["due_at"] is None


def test_survey_reminder_skipped_when_the_survey_was_clicked(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **SESSION)
    run(project, "2026-12-12T09:00")  # the earlier steps are too late by now: skipped; the survey goes
    survey = next(m for m in mails(project, ada) if m["step_id"] == "enquete-satisfaction")
    contacts.record_event(
        project.store(),
        ada,
        "email_clicked",
        at=T("2026-12-12T10:00"),
        data={"url": SESSION["lien_enquete"]},
        source="tracking",
        now=T("2026-12-12T10:00"),
        mail_id=survey["id"],
    )
    run(project, "2026-12-15T09:00")
    assert [m["step_id"] for m in mails(project, ada)][-1] == "enquete-satisfaction"
    assert journal(project, ada)[-2] == (
        "rappel-session",
        "relance-enquete",
        "skipped",
        "condition not met: not clicked enquete-satisfaction",
    )


def test_a_machine_click_does_not_count_as_a_click(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **SESSION)
    run(project, "2026-12-12T09:00")
    survey = next(m for m in mails(project, ada) if m["step_id"] == "enquete-satisfaction")
    contacts.record_event(
        project.store(),
        ada,
        "email_clicked",
        at=T("2026-12-12T09:00"),
        data={"url": "x"},
        source="tracking",
        now=T("2026-12-12T09:00"),
        mail_id=survey["id"],
        machine=True,
    )
    run(project, "2026-12-15T09:00")
    assert mails(project, ada)[-1]["step_id"] == "relance-enquete"


def test_a_step_later_than_max_late_is_skipped_not_sent(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **SESSION)
    run(project, "2026-12-01T10:00")
    run(project, "2026-12-10T09:30")  # the reminder was due on the 9th at 09:00: 24h30 late
    assert [m["step_id"] for m in mails(project, ada)] == ["confirmation-inscription"]
    assert journal(project, ada)[-1][1:] == ("rappel-session", "skipped", "24h30m late (limits.max_late 24h)")
    run(project, "2026-12-12T09:00")
    assert mails(project, ada)[-1]["step_id"] == "enquete-satisfaction"  # the journey goes on


def test_missing_at_field_skips_that_step_for_that_journey_only(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    bob = add_contact(project, "bob@example.org")
    without_start = {k: v for k, v in SESSION.items() if k != "session_start"}
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **without_start)
    event(project, bob, "inscription_finalisee", "2026-12-01T10:00", **SESSION)
    run(project, "2026-12-01T10:00")
    reason = "at: event.session_start - 24h: the trigger event has no 'session_start'"
    assert ("rappel-session", "rappel-session", "skipped", reason) in journal(project, ada)
    run(project, "2026-12-09T09:00")
    run(project, "2026-12-12T09:00")
    assert [m["step_id"] for m in mails(project, ada)] == ["confirmation-inscription", "enquete-satisfaction"]
    assert [m["step_id"] for m in mails(project, bob)][:2] == ["confirmation-inscription", "rappel-session"]


def test_a_reminder_about_a_mail_that_was_never_sent_is_not_sent_either(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(
        project,
        ada,
        "inscription_finalisee",
        "2026-12-01T10:00",
        **{k: v for k, v in SESSION.items() if k != "session_end"},
    )
    for moment in ("2026-12-01T10:00", "2026-12-09T09:00", "2026-12-12T09:00", "2026-12-31T09:00"):
        run(project, moment)
    assert [m["step_id"] for m in mails(project, ada)] == ["confirmation-inscription", "rappel-session"]
    assert journal(project, ada)[-2][1:] == (
        "relance-enquete",
        "skipped",
        "condition not met: not clicked enquete-satisfaction (enquete-satisfaction sent no mail in this journey)",
    )


def test_at_field_that_is_not_a_date_skips_with_the_value(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **{**SESSION, "session_start": "jeudi prochain"})
    run(project, "2026-12-01T10:00")
    assert (
        "rappel-session",
        "rappel-session",
        "skipped",
        "at: event.session_start - 24h: the trigger event's session_start: 'jeudi prochain' is not an ISO 8601 date"
        " (expected e.g. 2026-12-01T09:00 or 2026-12-01)",
    ) in journal(project, ada)


def test_local_time_stays_right_across_the_dst_change(project: Project) -> None:
    # Summer time ends in Paris on Sunday 2026-10-25: 09:00 is 07:00 UTC before, 08:00 UTC after.
    ada = add_contact(project, "ada@example.org")
    bob = add_contact(project, "bob@example.org")
    event(
        project,
        ada,
        "inscription_finalisee",
        "2026-10-01T10:00",
        **{**SESSION, "session_start": "2026-10-22T09:00", "session_end": "2026-10-23T17:00"},
    )
    event(
        project,
        bob,
        "inscription_finalisee",
        "2026-10-01T10:00",
        **{**SESSION, "session_start": "2026-10-23T09:00", "session_end": "2026-10-24T17:00"},
    )
    run(project, "2026-10-24T09:00")
    run(project, "2026-10-25T08:59")
    run(project, "2026-10-25T09:00")
    survey = {m["contact_id"]: m["not_before"] for m in mails(project) if m["step_id"] == "enquete-satisfaction"}
    assert survey == {
        ada: clock.from_db("2026-10-24T07:00:00.000000Z"),
        bob: clock.from_db("2026-10-25T08:00:00.000000Z"),
    }


def test_contact_timezone_is_used_for_local_times(project: Project) -> None:
    ada = add_contact(project, "ada@example.org", timezone="America/Martinique")
    event(
        project,
        ada,
        "inscription_finalisee",
        "2026-12-01T10:00",
        **{**SESSION, "session_end": "2026-12-11T17:00-04:00"},
    )
    run(project, "2026-12-13T00:00")
    survey = next(m for m in mails(project, ada) if m["step_id"] == "enquete-satisfaction")
    assert survey["not_before"] == clock.from_db("2026-12-12T13:00:00.000000Z")  # 09:00 in Martinique (UTC-4)


def test_service_mail_reaches_opted_out_contacts_but_never_bounced_ones(project: Project) -> None:
    out = add_contact(project, "out@example.org", consent="opted_out")
    bounced = add_contact(project, "bounced@example.org")
    contacts.mark_bounced(project.store(), bounced, "hard", T("2026-12-01T09:00"))
    for cid in (out, bounced):
        event(project, cid, "inscription_finalisee", "2026-12-01T10:00", **SESSION)
    run(project, "2026-12-01T10:00")
    assert [m["contact_id"] for m in mails(project)] == [out]
    assert journeys(project, bounced) == []


def test_bounce_during_a_journey_ends_it(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **SESSION)
    run(project, "2026-12-01T10:00")
    contacts.mark_bounced(project.store(), ada, "hard", T("2026-12-02T09:00"))
    assert journal(project, ada)[-1][1:] == ("", "exited", "bounced")  # at once, not at the next step
    run(project, "2026-12-09T09:00")
    assert len(mails(project, ada)) == 1


def test_cancellation_exits_the_journey(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **SESSION)
    run(project, "2026-12-01T10:00")
    event(project, ada, "inscription_annulee", "2026-12-03T10:00")
    run(project, "2026-12-03T10:01")  # ended at once, not only before the next step
    assert journeys(project, ada)[0]["state"] == "exited"
    assert journal(project, ada)[-1][1:] == ("rappel-session", "exited", "exit_on: inscription_annulee")
    run(project, "2026-12-20T09:00")
    assert len(mails(project, ada)) == 1


def test_two_enrolments_make_two_journeys(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:00", **SESSION)
    event(project, ada, "inscription_finalisee", "2026-12-01T11:00", **{**SESSION, "formation": "Word"})
    run(project, "2026-12-01T11:00")
    assert [context(m)["event"]["formation"] for m in mails(project, ada)] == ["Excel avancé", "Word"]


# --- relance-inscription (marketing) -------------------------------------------------------


def test_relance_inscription_walkthrough(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00", formation="Excel")
    run(project, "2026-12-01T10:00")
    assert mails(project, ada) == []
    run(project, "2026-12-02T09:59")
    assert mails(project, ada) == []
    run(project, "2026-12-02T10:00")
    assert sent(project, ada) == [("relance-1", "relance-inscription", "2026-12-02T10:00")]
    run(project, "2026-12-04T10:00")
    assert sent(project, ada)[-1] == ("relance-2", "relance-inscription", "2026-12-04T10:00")
    assert [m["purpose"] for m in mails(project, ada)] == ["marketing", "marketing"]
    assert journeys(project, ada)[0]["state"] == "completed"


def test_relance_inscription_stops_when_the_enrolment_is_finished(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    run(project, "2026-12-02T10:00")
    event(project, ada, "inscription_finalisee", "2026-12-03T15:00", **SESSION)
    run(project, "2026-12-04T10:00")
    assert [m["template"] for m in mails(project, ada)] == ["relance-inscription", "confirmation-inscription"]
    relance = [j for j in journeys(project, ada) if j["sequence"] == "relance-inscription"][0]
    assert (relance["state"], relance["end_reason"]) == ("exited", "exit_on: inscription_finalisee")
    assert (
        "relance-inscription",
        "",
        "goal",
        f"inscription_finalisee at {T('2026-12-03T15:00'):%Y-%m-%dT%H:%M:%S}.000000Z",
    ) in journal(project, ada)


def test_finishing_before_the_first_reminder_sends_nothing(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:20")
    run(project, "2026-12-02T10:00")
    assert [m["template"] for m in mails(project, ada)] == ["confirmation-inscription"]


def test_no_marketing_without_consent_and_the_reason_is_recorded(project: Project) -> None:
    ada = add_contact(project, "ada@example.org", consent="unknown")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    run(project, "2026-12-02T10:00")
    assert mails(project, ada) == []
    assert journal(project, ada)[-1] == ("relance-inscription", "relance-1", "skipped", "no marketing consent")


def test_opted_out_contacts_do_not_even_enter_marketing_sequences(project: Project) -> None:
    ada = add_contact(project, "ada@example.org", consent="opted_out")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    run(project, "2026-12-03T10:00")
    assert journeys(project, ada) == [] and mails(project, ada) == []


def test_unsubscribe_ends_marketing_journeys_only(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    event(project, ada, "inscription_finalisee", "2026-12-01T10:30", **SESSION)
    event(project, ada, "inscription_commencee", "2026-12-01T11:00")
    run(project, "2026-12-01T11:00")
    ended = journeys_module.end_all(project.store(), ada, reason="unsubscribed", now=T("2026-12-01T12:00"))
    assert ended == 0  # the first relance journey already ended on inscription_finalisee; the second: reenter: false
    event(project, ada, "demande_information", "2026-12-01T12:00")
    run(project, "2026-12-01T12:00")
    assert journeys_module.end_all(project.store(), ada, reason="unsubscribed", now=T("2026-12-01T13:00")) == 1
    states = {j["sequence"]: j["state"] for j in journeys(project, ada)}
    assert states == {"relance-inscription": "exited", "rappel-session": "active", "relance-sans-reponse": "exited"}


def test_an_unsubscribed_event_ends_marketing_journeys_at_the_next_run(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    run(project, "2026-12-01T10:00")
    contacts.set_consent(
        project.store(), ada, "opted_out", basis=None, now=T("2026-12-01T12:00"), source="unsubscribe link", proof={}
    )
    event(project, ada, "unsubscribed", "2026-12-01T12:00")
    run(project, "2026-12-01T12:01")
    assert journal(project, ada)[-1] == ("relance-inscription", "relance-1", "exited", "unsubscribed")
    run(project, "2026-12-05T10:00")
    assert mails(project, ada) == []


def test_send_window_defers_marketing_to_the_next_opening(project_dir: Path) -> None:
    install_library(project_dir)
    add_settings(project_dir, 'send_window:\n  days: [mon, tue, wed, thu, fri]\n  hours: "08:00-19:00"\n')
    project = open_project(project_dir)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    bob = add_contact(project, "bob@example.org")
    event(project, ada, "inscription_commencee", "2026-12-04T20:00")  # Friday evening
    event(project, bob, "inscription_finalisee", "2026-12-04T20:05", **SESSION)  # service: not deferred
    run(project, "2026-12-05T20:00")
    assert sent(project, bob) == [("confirmation-inscription", "confirmation-inscription", "2026-12-04T20:05")]
    assert mails(project, ada) == []
    run(project, "2026-12-07T07:59")
    assert mails(project, ada) == []
    run(project, "2026-12-07T08:00")  # Monday morning, not Saturday 20:00
    assert sent(project, ada) == [("relance-1", "relance-inscription", "2026-12-07T08:00")]


def test_weekly_marketing_limit_counts_across_sequences(project_dir: Path) -> None:
    install_library(project_dir)
    add_settings(project_dir, "limits:\n  marketing_per_week: 1\n")
    project = open_project(project_dir)
    run(project, "2026-12-01T08:00")
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    event(project, ada, "demande_information", "2026-12-01T11:00")
    run(project, "2026-12-02T10:00")
    run(project, "2026-12-04T10:00")
    run(project, "2026-12-08T11:00")
    assert [m["step_id"] for m in mails(project, ada)] == ["relance-1"]
    reason = "weekly marketing limit reached (1 in the last 7 days, limits.marketing_per_week 1)"
    steps = [(seq, step, outcome, why) for seq, step, outcome, why in journal(project, ada) if outcome == "skipped"]
    assert steps == [
        ("relance-inscription", "relance-2", "skipped", reason),
        ("relance-sans-reponse", "relance", "skipped", reason),
    ]


# --- relance-sans-reponse (marketing) -------------------------------------------------------


def test_relance_sans_reponse_after_seven_days_without_reply(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    bob = add_contact(project, "bob@example.org")
    event(project, ada, "demande_information", "2026-12-01T10:00", formation="Excel")
    event(project, bob, "demande_information", "2026-12-01T10:00", formation="Excel")
    run(project, "2026-12-03T10:00")
    event(project, bob, "replied", "2026-12-03T11:00")
    run(project, "2026-12-08T09:59")
    assert mails(project) == []
    run(project, "2026-12-08T10:00")
    assert sent(project) == [("relance", "relance-sans-reponse", "2026-12-08T10:00")]
    assert mails(project)[0]["contact_id"] == ada
    assert ("relance-sans-reponse", "relance", "exited", "exit_on: replied") in journal(project, bob)
    assert journal(project, bob)[-1][2] == "goal"  # replied is also the sequence's goal


def test_relance_sans_reponse_leaves_clients_alone(project: Project) -> None:
    ada = add_contact(project, "ada@example.org", tags=("client",))
    event(project, ada, "demande_information", "2026-12-01T10:00")
    run(project, "2026-12-09T10:00")
    assert journeys(project, ada) == []


def test_audience_is_checked_again_before_each_step(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "demande_information", "2026-12-01T10:00")
    run(project, "2026-12-01T10:00")
    contacts.add_tags(project.store(), ada, ["client"], T("2026-12-02T10:00"), "test")
    run(project, "2026-12-08T10:00")
    assert mails(project, ada) == []
    assert journal(project, ada)[-1] == (
        "relance-sans-reponse",
        "relance",
        "exited",
        "no longer in the audience (without client)",
    )


# --- double opt-in (service) -----------------------------------------------------------------


def test_double_optin_goes_to_a_new_subscriber_without_consent(project: Project) -> None:
    ada = add_contact(project, "ada@example.org", consent="unknown")
    event(project, ada, "subscribed", "2026-12-01T10:00", source="formulaire")
    run(project, "2026-12-01T10:01")
    assert [(m["template"], m["purpose"]) for m in mails(project, ada)] == [("double-optin", "service")]


# --- enrolment rules ----------------------------------------------------------------------------


def test_events_before_a_sequence_was_first_seen_do_not_enrol(project_dir: Path) -> None:
    install_library(project_dir)
    project = open_project(project_dir)
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_finalisee", "2026-11-30T10:00", **SESSION)
    run(project, "2026-12-01T08:00")
    assert journeys(project, ada) == []
    run(project, "2026-12-01T09:00", backfill=True)
    assert [j["sequence"] for j in journeys(project, ada)] == ["rappel-session"]
    assert sent(project, ada) == [("confirmation-inscription", "confirmation-inscription", "2026-11-30T10:00")]


def test_rerunning_never_enrols_twice(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    for _ in range(3):
        run(project, "2026-12-01T10:00")
    run(project, "2026-12-01T10:00", backfill=True)
    assert len(journeys(project, ada)) == 1


def test_reenter_false_keeps_one_journey_per_contact(project: Project) -> None:
    ada = add_contact(project, "ada@example.org")
    event(project, ada, "inscription_commencee", "2026-12-01T10:00")
    event(project, ada, "inscription_commencee", "2026-12-01T10:05")
    run(project, "2026-12-02T10:00")
    run(project, "2026-12-04T10:00")
    assert len(journeys(project, ada)) == 1
    assert [m["step_id"] for m in mails(project, ada)] == ["relance-1", "relance-2"]
