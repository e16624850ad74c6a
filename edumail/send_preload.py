"""Loaded once by the fork server of the sending workers (edumail.send_pool), never by a command.

What every worker would otherwise load for itself on its first mail is loaded
here, before the workers are forked from this process, so that they share its
pages: the modules that compose and send a mail, and babel's data for the
default locale (about 5 MB a worker). Then the objects so far are frozen out of
the garbage collector's sweeps, which would otherwise write to every page they
sit on and so give each worker its own copy.
"""

from __future__ import annotations

import gc

from babel import Locale, dates

import edumail.compose  # noqa: F401
import edumail.project  # noqa: F401
import edumail.render  # noqa: F401
import edumail.send_worker  # noqa: F401
import edumail.transport.smtp  # noqa: F401
from edumail.settings import Settings

dates.get_month_names(locale=Locale.parse(str(Settings.__dataclass_fields__["locale"].default)))
gc.freeze()
