"""YAML mistakes in words a non-programmer acts on, with file:line; bombs refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from edumail import yamlfile
from edumail.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

SEQUENCE = """\
name: relance
trigger: inscription
steps:
  - template: bienvenue
    wait: 1d
"""


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        yamlfile.loads(text, "sequences/relance.yaml")
    [found] = caught.value.problems
    return str(found)


def test_bad_indentation_says_so_at_its_line():
    text = SEQUENCE + "   template: rappel\n"
    message = problem(text)
    assert message.startswith("sequences/relance.yaml:6: ")
    assert "not indented like the lines above" in message
    assert "block end" not in message


def test_a_tab_says_use_spaces():
    message = problem("name: relance\nsteps:\n\t- template: bienvenue\n")
    assert message.startswith("sequences/relance.yaml:3: ")
    assert "tab" in message and "spaces" in message


def test_a_missing_colon_points_at_the_key_line():
    message = problem("name: relance\ntrigger inscription\nsteps:\n  - template: a\n")
    assert message.startswith("sequences/relance.yaml:2: ")
    assert "':' is missing" in message


@pytest.mark.parametrize("value", ["{{ contact.first_name }}, bienvenue", "{{ contact.first_name }}"])
def test_unquoted_double_braces_say_quote_it(value):
    message = problem(f"---\nlayout: base\nsubject: {value}\n")
    assert message.startswith("sequences/relance.yaml:3: ")
    assert 'write subject: "{{ ... }} ..."' in message


def test_a_colon_inside_a_value_says_quote_it():
    message = problem("layout: base\nsubject: Rappel: demain\n")
    assert message.startswith("sequences/relance.yaml:2: ")
    assert "in quotes" in message


def test_an_unclosed_quote_says_so():
    message = problem('subject: "Rappel\nlayout: base\n')
    assert message.startswith("sequences/relance.yaml:1: ")
    assert "never closed" in message


@pytest.mark.parametrize(
    "text",
    ["tags: " + "[" * 5000 + "]" * 5000, "".join("  " * i + "k:\n" for i in range(5000))],
)
def test_thousands_of_levels_are_a_clear_error(text):
    assert "nested thousands of levels deep" in problem(text)


def test_an_alias_bomb_is_refused():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    lines.append("audience:\n  tags: *i")
    message = problem("\n".join(lines) + "\n")
    assert "expand to more than 100,000 values" in message


def test_ordinary_aliases_still_work():
    loaded = yamlfile.loads("base: &b {x: 1}\nother: *b\nlist: [*b, *b]\n", "f.yaml")
    assert loaded["other"] == {"x": 1} and loaded["list"] == [{"x": 1}, {"x": 1}]


def test_an_alias_bomb_in_audience_tags_makes_check_fail_fast(cli, project_dir):
    bomb = ["name: bombe", "trigger: inscription", "x0: &x0 [t, t, t, t, t, t, t, t, t, t]"]
    for level in range(1, 9):
        bomb.append(f"x{level}: &x{level} [" + ", ".join([f"*x{level - 1}"] * 10) + "]")
    bomb += ["audience:", "  tags: *x8", "steps:", "  - template: bienvenue"]
    (project_dir / "sequences" / "bombe.yaml").write_text("\n".join(bomb) + "\n", encoding="utf-8")
    result = cli("check")
    assert result.exit_code == 1
    assert "sequences/bombe.yaml:" in result.output and "aliases" in result.output


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "edumail.yaml"
    folder.mkdir()  # reading a folder fails for every user, root included
    with pytest.raises(ConfigError, match="edumail.yaml: cannot read the file"):
        yamlfile.load(folder)


def _shape(value):
    """A loaded value with the lines it remembers, to compare two parsers exactly."""
    if isinstance(value, yamlfile.YDict):
        return ("map", value.line, [(k, value.key_lines[k], _shape(v)) for k, v in value.items()])
    if isinstance(value, yamlfile.YList):
        return ("seq", value.line, value.item_lines, [_shape(v) for v in value])
    return (type(value).__name__, value)


TRICKY = [
    "a: 1\nb: [x, {c: d}]\n",
    "steps:\n  - wait: 1d\n    send: x\n  -   if: {opened: x}\n      tag: y\n",
    'when: 2026-12-01T09:00:00\nday: 2026-12-01\ntext: "é à ü \\u00a0"\n',
    "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
    "multi: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
    "yes: yes\nno: no\nnull: ~\nfloat: 1.5e3\noct: 0o17\n",
    "# only a comment\n",
    "",
    "\ufeffkey: value\n",
    "list:\n- a\n- b\n\n\nend: true\n",
]


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.skipif(yamlfile._CParser is None, reason="PyYAML without libyaml")
def test_the_libyaml_reading_is_the_pure_python_one(text):
    fast = yamlfile._parse(yamlfile._FastLoader, text, "x.yaml")
    pure = yamlfile._parse(yamlfile._Loader, text, "x.yaml")
    assert _shape(fast) == _shape(pure)


@pytest.mark.skipif(yamlfile._CParser is None, reason="PyYAML without libyaml")
def test_the_library_files_read_the_same_with_both_parsers():
    files = sorted(ROOT.glob("sequences/*.yaml")) + sorted(ROOT.glob("forms/*.yaml"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8-sig")
        fast = yamlfile._parse(yamlfile._FastLoader, text, path.name)
        assert _shape(fast) == _shape(yamlfile._parse(yamlfile._Loader, text, path.name))


@pytest.mark.parametrize("text", ["a: 1\n\tb: 2\n", "a: [1, 2\n", "a: 1\na: 2\n", "a: \x07\n", "k: {{ x }}\n"])
def test_an_error_is_worded_by_the_pure_python_parser(text):
    with pytest.raises(ConfigError) as fast:
        yamlfile.loads(text, "x.yaml")
    with pytest.raises(ConfigError) as pure:
        yamlfile._parse(yamlfile._Loader, text, "x.yaml")
    assert str(fast.value) == str(pure.value)
