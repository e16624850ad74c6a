from datetime import UTC, datetime, timedelta

import pytest

from edumail import clock
from edumail.errors import InputError


def test_now_reads_edumail_now(monkeypatch):
    monkeypatch.setenv("EDUMAIL_NOW", "2026-12-01T09:00:00+01:00")
    assert clock.now() == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_now_without_offset_is_utc_outside_a_project(monkeypatch):
    monkeypatch.setenv("EDUMAIL_NOW", "2026-12-01T09:00")
    assert clock.now().hour == 9


def test_now_without_offset_is_the_project_local_time(monkeypatch, project_dir):
    from edumail import project

    monkeypatch.setenv("EDUMAIL_NOW", "2026-10-12T07:40")
    project.load(project_dir)  # Europe/Paris: 07:40 local is 05:40 UTC in October
    assert clock.now() == datetime(2026, 10, 12, 5, 40, tzinfo=UTC)
    assert clock.now(clock.zone("America/New_York")) == datetime(2026, 10, 12, 11, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["0001-01-01", "0001-01-01T00:00+01:00", "9999-12-31T23:59:59-05:00", "9999-12-31", "1899-12-31T23:00"]
)
def test_dates_outside_1900_2199_are_refused(text):
    with pytest.raises(InputError, match="outside 1900-2199"):
        clock.parse_iso(text, clock.zone("Europe/Paris"))


def test_dates_at_the_edges_of_the_range_are_fine():
    assert clock.parse_iso("1900-01-01T12:00", UTC).year == 1900
    assert clock.parse_iso("2199-12-31T23:59+01:00", UTC).year == 2199


def test_edumail_now_out_of_range_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("EDUMAIL_NOW", "9999-12-31T23:59:59+14:00")
    with pytest.raises(InputError, match="EDUMAIL_NOW.*outside 1900-2199"):
        clock.now()


@pytest.mark.parametrize("text", ["9999999w", "99999999999999999999d", "40000d"])
def test_durations_beyond_a_century_are_refused(text):
    with pytest.raises(InputError, match="century"):
        clock.parse_duration(text)


def test_bad_edumail_now_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("EDUMAIL_NOW", "demain")
    with pytest.raises(InputError, match="EDUMAIL_NOW"):
        clock.now()


def test_naive_dates_are_taken_in_the_given_zone():
    paris = clock.zone("Europe/Paris")
    assert clock.parse_iso("2026-07-01T10:00", paris).hour == 8
    assert clock.parse_iso("2026-12-01", paris).hour == 23


def test_store_format_round_trips_and_sorts():
    a = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    b = a + timedelta(microseconds=1)
    assert clock.from_db(clock.to_db(a)) == a
    assert clock.to_db(a) < clock.to_db(b)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations(text, expected):
    assert clock.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "3", "3 days", "-1d", "1y"])
def test_bad_durations(text):
    with pytest.raises(InputError, match="not a duration"):
        clock.parse_duration(text)


def test_unknown_timezone():
    with pytest.raises(InputError, match="unknown timezone"):
        clock.zone("Europe/Lyon")
