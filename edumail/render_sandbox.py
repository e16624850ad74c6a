"""The Jinja sandbox templates run in: named template data, strict undefined, and failures as file:line.

Template data (`contact`, `event`, `sender`) is a `Vars` mapping that knows its
own name, so a missing key reads `undefined variable 'event.lieu' (event has:
...)`; `contact.items` on template data means the key `items`, never a dict
method. Every failure of a render becomes one RenderError at the template line.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from edumail.errors import RenderError


class Vars(dict):
    """A dict of template data that knows its own name, for `undefined variable 'event.x'`."""

    __slots__ = ("path",)

    def __init__(self, path: str, *args: Any) -> None:
        super().__init__(*args)
        self.path = path


class Undefined(jinja2.StrictUndefined):
    """StrictUndefined whose message names the variable as written in the template."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        obj, name = self._undefined_obj, self._undefined_name
        if isinstance(obj, Vars):
            keys = sorted(str(k) for k in obj)
            shown = ", ".join(keys[:15]) + (", ..." if len(keys) > 15 else "") if keys else "nothing"
            return (
                f"undefined variable '{obj.path}.{name}' ({obj.path} has: {shown}; "
                "write `| default(...)` if it is optional)"
            )
        if obj is jinja2.utils.missing:
            return f"undefined variable {name!r}"
        return f"undefined: {type(obj).__name__} value has no attribute or key {name!r}"


class FilterError(Exception):
    """A filter given a value it cannot use; mapped to file:line by the renderer."""


class Environment(ImmutableSandboxedEnvironment):
    """The sandbox, where `contact.x` on template data means the key `x`, never a dict method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Vars:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if type(obj) is Vars and isinstance(argument, str):
            return self.getattr(obj, argument)
        return super().getitem(obj, argument)


def default_filter(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """`default`: for an undefined, None or empty value (and any false one with boolean=true)."""
    if isinstance(value, jinja2.Undefined) or value is None:
        return default_value
    if isinstance(value, str) and not value.strip():
        return default_value
    if boolean and not value:
        return default_value
    return value


def run(env: jinja2.Environment, compiled: jinja2.Template, context: dict[str, Any], shown: str, prefix: str) -> str:
    """Render one compiled template; any failure becomes RenderError at the template line."""
    try:
        # Template.render() would copy the context (and the globals) for every part of every mail.
        return "".join(compiled.root_render_func(compiled.new_context(context, shared=True)))
    except RenderError:
        raise
    except Exception:  # noqa: BLE001 - a template can fail in many ways; all are the author's to fix
        try:
            env.handle_exception()  # re-raises with template file names and lines in the traceback
        except Exception as exc:  # noqa: BLE001
            raise render_error(exc, shown, prefix) from None
        raise


def render_error(exc: Exception, shown: str, prefix: str) -> RenderError:
    """A template failure as RenderError at the template's file and line (`prefix`: `templates/`)."""
    file, line = _where(exc.__traceback__, shown, prefix)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return RenderError(exc.filename or file, exc.lineno, f"syntax error: {exc.message}")
    if isinstance(exc, SecurityError):
        return RenderError(file, line, f"refused by the sandbox: {exc}")
    if isinstance(exc, jinja2.TemplateNotFound):
        return RenderError(file, line, f"no file {prefix}{exc.name}")
    if isinstance(exc, (jinja2.UndefinedError, FilterError)):
        return RenderError(file, line, str(exc))
    return RenderError(file, line, f"{type(exc).__name__}: {exc}")


def _where(tb: TracebackType | None, shown: str, prefix: str) -> tuple[str, int]:
    """The template file and line of a failure, from the (Jinja-rewritten) traceback."""
    innermost, own = (shown, 0), None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.startswith(prefix):
            innermost = (name, tb.tb_lineno)
            if name == shown:
                own = innermost
        tb = tb.tb_next
    # A value passed to a macro fails inside the macro's file: the caller's line is the useful one.
    return own or innermost
