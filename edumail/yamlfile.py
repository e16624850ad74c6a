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


_CParser: Any = getattr(yaml.cyaml, "CParser", None) if yaml.__with_libyaml__ else None  # libyaml's parser


class _FastLoader(*((_CParser,) if _CParser else ()), yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc]
    """The same constructors over libyaml's parser: about 8 times faster on a sequence file (start-up, issue 17).

    Used only for text it reads without a complaint; any error is re-read by the pure-Python `_Loader`,
    whose messages (and line numbers) `explain` knows.
    """

    def __init__(self, stream: str) -> None:
        _CParser.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


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


for _loader in (_Loader, _FastLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
    _loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_text)


MAX_NODES = 100_000  # values after expanding aliases (*name): far more than any real file, far less than a bomb


def loads(text: str, name: str) -> Any:
    """Parse YAML text; syntax errors become ConfigError at `name:line`, in words a non-programmer acts on."""
    if _CParser is not None and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        try:
            return _parse(_FastLoader, text, name)
        except (ConfigError, yaml.YAMLError, RecursionError):
            pass  # read again by the pure-Python parser, whose words and lines the errors below are in
    return _parse(_Loader, text, name)


def _parse(loader_class: type[Any], text: str, name: str) -> Any:
    loader = None
    try:
        loader = loader_class(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, name)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        line, what = explain(exc, text)
        raise ConfigError([Problem(name, line, what)]) from None
    except yaml.reader.ReaderError as exc:  # PyYAML gives only an offset into the text: make it a line
        line = text.count("\n", 0, exc.position) + 1
        what = f"character U+{exc.character:04X} is not allowed (a control or special character); remove it"
        raise ConfigError([Problem(name, line, f"not valid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(name, 0, f"not valid YAML: {exc}")]) from None
    except RecursionError:
        what = "nested thousands of levels deep; check the brackets and the indentation"
        raise ConfigError([Problem(name, 0, what)]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_size(root: yaml.Node, name: str) -> None:
    """Refuse aliases that expand past MAX_NODES (a "billion laughs" file would hang every command)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            sizes[id(node)] = 1 + sum(sizes.get(id(child), 0) for child in children)
            if sizes[id(node)] > MAX_NODES:
                line = node.start_mark.line + 1
                raise ConfigError(
                    [
                        Problem(
                            name,
                            line,
                            f"the aliases (*name) here expand to more than {MAX_NODES:,} values; "
                            "write the values out instead of repeating aliases",
                        )
                    ]
                )
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def explain(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, str]:
    """The line and plain words for the mistakes people make in YAML by hand; else PyYAML's words."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    problem = exc.problem or str(exc)
    lines = text.splitlines()
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    if "'\\t'" in problem and "cannot start any token" in problem:
        return line, "a tab is used to indent this line; YAML needs spaces: replace the tab with spaces"
    if "could not find expected ':'" in problem and exc.context_mark is not None:
        line = exc.context_mark.line + 1
        return line, "a ':' is missing after the key on this line (write `key: value`)"
    if _unquoted_braces(shown):
        key = shown.split(":", 1)[0].strip() if ":" in shown else "key"
        return line, f'a value that starts with {{{{ ... }}}} must be in quotes: write {key}: "{{{{ ... }}}} ..."'

    if "mapping values are not allowed here" in problem:
        return line, (
            "a ':' here is not expected: put the value in quotes if it contains ': ', "
            "or check that this line is indented like the lines above"
        )
    if problem.startswith(("expected <block end>", "did not find expected key", "did not find expected '-'")):
        return line, (
            "this line is not indented like the lines above it: keys at the same level start in the same "
            "column, and what belongs to a key is indented more (use spaces)"
        )
    if "found unexpected end of stream" in problem and exc.context and "quoted" in exc.context:
        line = exc.context_mark.line + 1 if exc.context_mark else line
        return line, "a quote opened on this line is never closed; add the closing quote"
    return line, f"not valid YAML: {problem}"


def _unquoted_braces(line: str) -> bool:
    value = line.split(":", 1)[1].strip() if ":" in line else line.strip().lstrip("- ")
    return value.startswith("{{") or (value.startswith("{") and "{{" in value)


def load(path: Path, name: str | None = None) -> Any:
    """Read and parse a YAML file (UTF-8)."""
    shown = name or path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem(shown, 0, "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(shown, 0, f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]) from None
    except OSError as exc:
        what = f"cannot read the file ({exc.strerror}); check its permissions"
        raise ConfigError([Problem(shown, 0, what)]) from None
    return loads(text, shown)


def did_you_mean(word: str, choices: list[str] | set[str] | tuple[str, ...]) -> str:
    """` (did you mean 'x'?)` when a close choice exists, else ''."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
