from datetime import timedelta
from pathlib import Path

import pytest

from edumail import settings
from edumail.errors import ConfigError


def write(root: Path, text: str) -> Path:
    (root / "edumail.yaml").write_text(text, encoding="utf-8")
    return root


def problems_of(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings.load(root)
    return [str(p) for p in info.value.problems]


def test_only_sender_is_required_and_defaults_apply(tmp_path):
    loaded = settings.load(write(tmp_path, "sender: {name: Centre, email: c@centre.example}\n"))
    assert loaded.transport == "file"
    assert loaded.database == "edumail.db"
    assert loaded.timezone == "Europe/Paris"
    assert loaded.locale == "fr_FR"
    assert loaded.smtp.port == 587 and loaded.smtp.security == "starttls" and loaded.smtp.concurrency == 4
    assert loaded.smtp.rate_per_minute == 0
    assert loaded.limits.marketing_per_week == 3 and loaded.limits.max_late == timedelta(days=1)
    assert loaded.send_window is None
    assert not loaded.tracking.enabled


def test_full_spec_example_loads(tmp_path):
    text = (Path(__file__).parent / "data" / "spec-settings.yaml").read_text(encoding="utf-8")
    loaded = settings.load(write(tmp_path, text))
    assert loaded.sender.reply_to == "inscriptions@centre.example"
    assert loaded.smtp.rate_per_minute == 600
    assert loaded.send_window is not None and loaded.send_window.start_end == (8 * 60, 19 * 60)
    assert loaded.tracking.base_url == "https://mail.centre.example"


def test_missing_file_says_how_to_create_one(tmp_path):
    assert "edumail init" in problems_of(tmp_path)[0]


def test_missing_sender_is_reported(tmp_path):
    assert any("missing required section 'sender'" in p for p in problems_of(write(tmp_path, "transport: file\n")))


def test_unknown_key_has_line_and_suggestion(tmp_path):
    found = problems_of(write(tmp_path, "sender: {name: A, email: a@b.fr}\ntimezon: Europe/Paris\n"))
    assert found == ["edumail.yaml:2: unknown setting 'timezon' (did you mean 'timezone'?)"]


def test_wrong_type_reports_line_and_expectation(tmp_path):
    found = problems_of(write(tmp_path, "sender:\n  name: A\n  email: a@b.fr\nsmtp:\n  port: many\n"))
    assert found == ["edumail.yaml:5: smtp.port: expected a whole number, got 'many'"]


def test_every_problem_is_listed(tmp_path):
    text = "sender:\n  name: A\n  email: not-an-address\nlimits:\n  max_late: soon\nlocale: xx_YY\n"
    found = problems_of(write(tmp_path, text))
    assert [p.split(":")[1] for p in found] == ["3", "5", "6"]


def test_malformed_yaml_reports_line(tmp_path):
    found = problems_of(write(tmp_path, "sender:\n  name: A\n  email: [oops\n"))
    assert found[0].startswith("edumail.yaml:") and "not valid YAML" in found[0]


def test_duplicate_key_is_an_error(tmp_path):
    found = problems_of(write(tmp_path, "sender: {name: A, email: a@b.fr}\ntransport: file\ntransport: smtp\n"))
    assert "duplicate key 'transport'" in found[0] and found[0].startswith("edumail.yaml:3:")


def test_bad_send_window_hours(tmp_path):
    found = problems_of(write(tmp_path, "sender: {name: A, email: a@b.fr}\nsend_window: {hours: '19:00-08:00'}\n"))
    assert "send_window.hours" in found[0]


def test_environment_overrides_a_key(tmp_path, monkeypatch):
    monkeypatch.setenv("EDUMAIL_SMTP_HOST", "smtp.prod.example")
    monkeypatch.setenv("EDUMAIL_SMTP_PORT", "2525")
    monkeypatch.setenv("EDUMAIL_TRANSPORT", "smtp")
    loaded = settings.load(write(tmp_path, "sender: {name: A, email: a@b.fr}\nsmtp: {host: smtp.test}\n"))
    assert (loaded.transport, loaded.smtp.host, loaded.smtp.port) == ("smtp", "smtp.prod.example", 2525)


def test_bad_environment_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("EDUMAIL_SMTP_PORT", "lots")
    found = problems_of(write(tmp_path, "sender: {name: A, email: a@b.fr}\n"))
    assert found == ["EDUMAIL_SMTP_PORT: smtp.port: expected a whole number, got 'lots'"]


def test_password_variable_is_not_a_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("EDUMAIL_SMTP_PASSWORD", "hunter2")
    loaded = settings.load(write(tmp_path, "sender: {name: A, email: a@b.fr}\n"))
    assert loaded.smtp.password() == "hunter2"


def test_smtp_transport_without_smtp_section_is_an_error(tmp_path):
    found = problems_of(write(tmp_path, "sender: {name: A, email: a@b.fr}\ntransport: smtp\n"))
    assert "no smtp: section" in found[0]


def test_unquoted_jinja_braces_are_a_clear_error(tmp_path):
    found = problems_of(write(tmp_path, "sender: {name: A, email: a@b.fr}\ndatabase: {{ x }}\n"))
    assert found[0].startswith("edumail.yaml:2:") and "must be in quotes" in found[0]
