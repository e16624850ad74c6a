"""The page around a rendered body: a bare document when there is no layout, the hidden preheader."""

from __future__ import annotations

import html as html_module
import re

_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)
_PREHEADER_FILL = "&#847;&zwnj;&nbsp;" * 40


def one_line(text: str) -> str:
    """Header-safe text: every run of whitespace (CR and LF included) becomes one space."""
    return " ".join(text.split())


def document(body: str, subject: str) -> str:
    """A minimal HTML document around a body written without a layout."""
    return (
        '<!DOCTYPE html>\n<html lang="fr">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html_module.escape(subject)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def insert_preheader(page: str, preheader: str) -> str:
    """The preheader as hidden preview text, first thing in <body>."""
    if not preheader:
        return page
    hidden = (
        '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;'
        'overflow:hidden;mso-hide:all;" aria-hidden="true">'
        f"{html_module.escape(preheader)}{_PREHEADER_FILL}</div>"
    )
    found = _BODY_OPEN.search(page)
    if found is None:
        return hidden + page
    return page[: found.end()] + hidden + page[found.end() :]
