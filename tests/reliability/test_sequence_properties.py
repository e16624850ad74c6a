"""Property-based: random YAML in sequences/ gives `file:line: message` problems, never a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edumail import project as project_module
from edumail import sequences
from edumail.cli import app

SETTINGS = "sender:\n  name: Centre\n  email: contact@centre.example\n"
TEMPLATE = '---\nsubject: "Bonjour"\n---\n<p>Bonjour</p>\n'
KEYS = ["name", "description", "purpose", "enabled", "trigger", "audience", "exit_on", "reenter", "goal", "steps"]
STEP_KEYS = ["id", "wait", "at", "time", "if", "else", "send", "tag", "untag", "stage", "set", "webhook", "notify"]
WORDS = [
    "bienvenue",
    "3d",
    "24h",
    "09:00",
    "25:99",
    "event.session_start - 24h",
    "0 9 * * mon",
    "marketing",
    "service",
    "opened",
    "inscription",
    "2026-12-01T09:00",
    "exit",
    "-1d",
    "",
    "~",
    "https://crm.example/hook",
]

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(STEP_KEYS + KEYS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=12,
)
step = st.dictionaries(st.sampled_from(STEP_KEYS), value, max_size=4)
document = st.fixed_dictionaries(
    {},
    optional={
        "name": value,
        "purpose": st.one_of(st.sampled_from(["marketing", "service"]), value),
        "trigger": st.one_of(
            value,
            st.dictionaries(
                st.sampled_from(["event", "segment", "inactive", "schedule", "at", "where"]), value, max_size=2
            ),
        ),
        "audience": value,
        "exit_on": value,
        "reenter": value,
        "goal": value,
        "enabled": value,
        "steps": st.one_of(value, st.lists(step, max_size=4)),
    },
)


def _project(root: Path) -> Path:
    if not (root / "edumail.yaml").exists():
        (root / "sequences").mkdir(parents=True)
        (root / "templates").mkdir()
        (root / "edumail.yaml").write_text(SETTINGS, encoding="utf-8")
        (root / "templates" / "bienvenue.html").write_text(TEMPLATE, encoding="utf-8")
    return root


def _load(root: Path, text: str | bytes) -> None:
    path = root / "sequences" / "fuzz.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    loaded, problems = sequences.load(project_module.load(root))
    assert len(loaded) <= 1 and not (loaded and problems)
    for problem in problems:
        # At a place in the file (line 0 only for the file as a whole: not UTF-8), in our words.
        assert problem.file == "sequences/fuzz.yaml" and problem.message, problem
        assert "<unicode string>" not in problem.message and "Traceback" not in problem.message, problem
        assert problem.line >= 1 or "not UTF-8" in problem.message, problem


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=document)
def test_random_sequence_documents_load_or_give_located_problems(tmp_path, data):
    _load(_project(tmp_path / "centre"), yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(text="name: ok\nsteps:\x00\n")  # a control character: YAML says only "position 15"
@given(text=st.one_of(st.text(alphabet="abc:-[]{}&*!|>'\"%@`#,? \n\t0123456789", max_size=80), st.binary(max_size=80)))
def test_random_text_in_a_sequence_file_never_raises(tmp_path, text):
    _load(_project(tmp_path / "centre"), text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=document)
def test_edumail_check_reports_random_sequences_with_exit_status_not_a_traceback(tmp_path, data):
    root = _project(tmp_path / "centre")
    (root / "sequences" / "fuzz.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["--project", str(root), "check"])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        assert "sequences/fuzz.yaml:" in result.output
