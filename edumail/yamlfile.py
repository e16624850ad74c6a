"""YAML loading that keeps line numbers, for `file:line: message` errors.

Mappings load as `YDict` and sequences as `YList`: ordinary dicts and lists
that also know the line they start on and the line of each key or item.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from edumail.errors import ConfigError, Problem


class YDict(dict):
    """A dict that remembers where it and each of its keys stand."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class YList(list):
    """A list that remembers where it and each of its items stand."""

    line: int = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> YDict:
    loader.flatten_mapping(node)
    result = YDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            what = "a key cannot be a list or a mapping (quote a value that starts with { or [)"
            raise yaml.constructor.ConstructorError(None, None, what, key_node.start_mark) from None
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> YList:
    result = YList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_timestamp_as_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    # Dates stay text: we parse them ourselves, with the project's timezone.
    return str(loader.construct_scalar(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_text)


def loads(text: str, name: str) -> Any:
    """Parse YAML text; syntax errors become ConfigError at `name:line`."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        what = exc.problem or str(exc)
        raise ConfigError([Problem(name, line, f"not valid YAML: {what}")]) from None
    except yaml.reader.ReaderError as exc:  # PyYAML gives only an offset into the text: make it a line
        line = text.count("\n", 0, exc.position) + 1
        what = f"character U+{exc.character:04X} is not allowed (a control or special character); remove it"
        raise ConfigError([Problem(name, line, f"not valid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(name, 0, f"not valid YAML: {exc}")]) from None


def load(path: Path, name: str | None = None) -> Any:
    """Read and parse a YAML file (UTF-8)."""
    shown = name or path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem(shown, 0, "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(shown, 0, f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]) from None
    return loads(text, shown)


def did_you_mean(word: str, choices: list[str] | set[str] | tuple[str, ...]) -> str:
    """` (did you mean 'x'?)` when a close choice exists, else ''."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
