"""The one exception family: every user-facing failure is an EdumailError.

The CLI turns it into a red message and exit status 1, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class EdumailError(Exception):
    """A failure the user can act on; the message says where and what to do."""


class ConfigError(EdumailError):
    """Settings, sequences or templates that do not validate."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("", 0, problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class InputError(EdumailError):
    """A file, argument or value given by the user that cannot be used."""


class NotFound(EdumailError):
    """A contact, template, sequence or campaign that does not exist."""


@dataclass(frozen=True)
class Problem:
    """One validation problem, printed as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.message}"
        if self.file:
            return f"{self.file}: {self.message}"
        return self.message


class RenderError(EdumailError):
    """A template that cannot be rendered: syntax, undefined variable, sandbox refusal."""

    def __init__(self, file: str, line: int, message: str):
        self.problem = Problem(file, line, message)
        super().__init__(str(self.problem))


class RenderLimitError(RenderError):
    """A render stopped at a bound (time, size): a render bomb, whatever data it is given."""
