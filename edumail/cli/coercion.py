"""Plain coercion of the CLI's simple options, without pydantic (start-up, issue 17).

typer (0.2x) converts every option's text through a pydantic TypeAdapter: the
first command-line value a process converts imports pydantic and builds its
schemas, about 0.1 s that every cron line paid. edumail's options are only
`str`, `int`, `bool`, `Path` and `list[str]`: their conversion is one Python
call. `install()` hands those to `Plain`; anything else (and any value the
plain path does not recognise, e.g. `--limit abc`) goes on through typer's own
adapter, so an error reads exactly as typer words it. On a typer without
pydantic coercion, `install()` changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_INT = re.compile(r"[+-]?[0-9]+")
_SIMPLE = (str, int, bool, Path, list[str])


class _Refer(Exception):
    """The plain path does not decide this value: typer's adapter does."""


def _plain(annotation: Any, value: Any, param: Any, ctx: Any, parameter_info: Any) -> Any:
    if annotation is str and isinstance(value, str):
        return value
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is int and type(value) is int:
        return value
    if annotation is int and isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    if annotation is Path and (isinstance(value, Path) or (isinstance(value, str) and value)):
        from typer._param_types import coerce_cli_path  # already loaded by typer; no pydantic for a Path

        return coerce_cli_path(Path(value), parameter_info, path_type=Path, param=param, ctx=ctx)
    if annotation == list[str] and isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _Refer


def install() -> None:
    """Route typer's coercion of the simple annotations through `Plain` (idempotent)."""
    try:
        from typer import _coercion, core
    except ImportError:  # a typer without the adapter layer converts without pydantic already
        return
    parameter_class = getattr(core, "_TyperParameter", None)
    runtime_base = getattr(_coercion, "RuntimeParam", None)
    original = getattr(parameter_class, "get_runtime_param", None)
    if parameter_class is None or runtime_base is None or original is None or getattr(original, "_plain", False):
        return

    @dataclass(frozen=True)
    class Plain(runtime_base):  # type: ignore[misc,valid-type]
        """The simple annotations, converted in Python; the rest referred to typer's adapter."""

        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return _plain(self.annotation, value, param, ctx, self.parameter_info)
            except _Refer:
                return _coercion.build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        descriptor = self.type_descriptor
        if self._runtime_param is None and descriptor.file_annotation is None and _simple(descriptor):
            self._runtime_param = Plain(descriptor.parameter_info, descriptor.annotation, descriptor)
        return original(self)

    get_runtime_param._plain = True  # type: ignore[attr-defined]
    parameter_class.get_runtime_param = get_runtime_param


def _simple(descriptor: Any) -> bool:
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return False
    if descriptor.annotation is int and (info.min is not None or info.max is not None):
        return False
    if descriptor.annotation is Path and getattr(info, "path_type", None) is not None:
        return False
    return any(descriptor.annotation == kind for kind in _SIMPLE)
