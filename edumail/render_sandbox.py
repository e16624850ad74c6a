"""The Jinja sandbox templates run in: named template data, strict undefined, and failures as file:line.

Template data (`contact`, `event`, `sender`) is a `Vars` mapping that knows its
own name, so a missing key reads `undefined variable 'event.lieu' (event has:
...)`; `contact.items` on template data means the key `items`, never a dict
method. Every failure of a render becomes one RenderError at the template line.

A render is bounded (render bombs, issue 12): MAX_SECONDS of work (checked at
every loop turn and every call, so nested loops and recursive macros stop),
MAX_OUTPUT characters of text, and `*` / `**` that would build a huge value
are refused before they do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from edumail.errors import RenderError, RenderLimitError

MAX_SECONDS = 5.0  # of rendering per template part (a mail's body, its layout, its text part...)
MAX_OUTPUT = 2_000_000  # characters per rendered part: far past what any mailbox shows (Gmail clips at 102 kB)
MAX_POWER = 1000  # the largest exponent `**` may take
_DEADLINE: ContextVar[float] = ContextVar("edumail_render_deadline", default=float("inf"))
_CHECK_EVERY = 256  # loop turns between two looks at the clock


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


class LimitError(Exception):
    """A render past one of the bounds above; mapped to file:line by the renderer."""


def _too_long() -> LimitError:
    return LimitError(
        f"rendering took longer than {MAX_SECONDS:g} s: a loop or a macro that repeats too much? Simplify the template"
    )


def _check_clock() -> None:
    if time.monotonic() > _DEADLINE.get():
        raise _too_long()


class Environment(ImmutableSandboxedEnvironment):
    """The sandbox, where `contact.x` on template data means the key `x`, never a dict method."""

    intercepted_binops = frozenset({"*", "**"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every `{% for %}` iterates through loop_guard, which keeps an eye on the clock."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("loop_guard"), [loop.iter], [], None, None)
        return tree

    def loop_guard(self, iterable: Iterable[Any]) -> Iterator[Any]:
        deadline = _DEADLINE.get()
        for turn, item in enumerate(iterable):
            if turn % _CHECK_EVERY == 0 and time.monotonic() > deadline:
                raise _too_long()
            yield item

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_clock()  # a recursive macro makes calls, not loop turns
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and isinstance(right, int) and isinstance(left, (str, list, tuple)):
            size = len(left) * right
        elif operator == "*" and isinstance(left, int) and isinstance(right, (str, list, tuple)):
            size = len(right) * left
        else:
            size = 0
        if size > MAX_OUTPUT:
            raise LimitError(f"'*' would make a value of {size:,} items, more than the {MAX_OUTPUT:,} a mail may hold")
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_POWER:
            raise LimitError(f"'**' with an exponent of {right:,}: at most {MAX_POWER}")
        return super().call_binop(context, operator, left, right)

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
    token = _DEADLINE.set(time.monotonic() + MAX_SECONDS)
    try:
        # Template.render() would copy the context (and the globals) for every part of every mail.
        return _bounded(compiled.root_render_func(compiled.new_context(context, shared=True)))
    except RenderError:
        raise
    except Exception:  # noqa: BLE001 - a template can fail in many ways; all are the author's to fix
        try:
            env.handle_exception()  # re-raises with template file names and lines in the traceback
        except Exception as exc:  # noqa: BLE001
            raise render_error(exc, shown, prefix) from None
        raise
    finally:
        _DEADLINE.reset(token)


def _bounded(chunks: Iterator[str]) -> str:
    """The rendered text, stopped at MAX_OUTPUT characters and at the deadline."""
    parts: list[str] = []
    size, deadline = 0, _DEADLINE.get()
    for count, chunk in enumerate(chunks):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise LimitError(
                f"the rendered text passes {MAX_OUTPUT:,} characters: a loop that repeats too much? "
                "A mail that large would be clipped or refused"
            )
        if count % _CHECK_EVERY == 0 and time.monotonic() > deadline:
            raise _too_long()
        parts.append(chunk)
    return "".join(parts)


def render_error(exc: Exception, shown: str, prefix: str) -> RenderError:
    """A template failure as RenderError at the template's file and line (`prefix`: `templates/`)."""
    file, line = _where(exc.__traceback__, shown, prefix)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return RenderError(exc.filename or file, exc.lineno, f"syntax error: {exc.message}")
    if isinstance(exc, SecurityError):
        return RenderError(file, line, f"refused by the sandbox: {exc}")
    if isinstance(exc, jinja2.TemplateNotFound):
        return RenderError(file, line, f"no file {prefix}{exc.name}")
    if isinstance(exc, LimitError):
        return RenderLimitError(file, line, str(exc))
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
