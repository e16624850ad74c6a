"""HTML mail -> its text/plain part: paragraphs, list items, links kept as `label (URL)`.

Regular expressions, not an HTML parser: a mail's text part is derived for
every mail sent, and this is several times faster; each pattern starts with a
literal so `re` can scan for it.
"""

from __future__ import annotations

import html as html_module
import re

_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_DROP = re.compile(r"<(head|style|script|title)\b.*?</\1\s*>", re.I | re.S)
_LINK = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')[^>]*>(.*?)</a\s*>""", re.I | re.S)
_IMG = re.compile(r"""<img\b[^>]*?\balt\s*=\s*(?:"([^"]*)"|'([^']*)')[^>]*>""", re.I)
_BR = re.compile(r"<br\s*/?>", re.I)
_LI = re.compile(r"<li\b[^>]*>", re.I)
_BLOCK = re.compile(r"<(?:/?(?:p|h[1-6]|div|table|tr|ul|ol|blockquote|center)|hr)\b[^>]*>", re.I)
_CELL = re.compile(r"</t[dh]\s*>", re.I)
_TAG = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"\n\n\n+")  # written so that re searches for the literal: 10x faster than \n{3,}
_DOUBLE_SPACE = re.compile(r"  +")


def _link(match: re.Match[str]) -> str:
    url = (match.group(1) if match.group(1) is not None else match.group(2) or "").strip()
    label = _TAG.sub("", match.group(3)).strip()
    if not url or url.startswith("#"):
        return label
    if url.lower().startswith("mailto:"):
        address = url[7:].split("?", 1)[0]
        return label if address in label or not address else f"{label} ({address})"
    if not label or label == url:
        return url
    return f"{label} ({url})"


def _alt(match: re.Match[str]) -> str:
    return match.group(1) if match.group(1) is not None else match.group(2) or ""


def html_to_text(page: str) -> str:
    """The text part of an HTML mail: paragraphs, list items, links kept as `label (URL)`."""
    opening = _BODY_OPEN.search(page)
    text = page[opening.end() :] if opening else page
    if "<!--" in text:
        text = _COMMENT.sub("", text)
    if "<style" in text or "<script" in text or "<title" in text or "<head" in text:
        text = _DROP.sub("", text)
    text = " ".join(text.split())
    if "<a" in text or "<A" in text:
        text = _LINK.sub(_link, text)
    if "<img" in text or "<IMG" in text:
        text = _IMG.sub(_alt, text)
    text = _BR.sub("\n", text)
    text = _LI.sub("\n- ", text)
    text = _BLOCK.sub("\n\n", text)
    text = _CELL.sub(" ", text)
    text = _TAG.sub("", text)
    if "&" in text:
        text = html_module.unescape(text)
    text = _DOUBLE_SPACE.sub(" ", text.replace("\xa0", " "))
    text = text.replace(" \n", "\n").replace("\n ", "\n")
    return _BLANKS.sub("\n\n", text).strip() + "\n"
