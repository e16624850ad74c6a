"""Touches on a page after its CSS is inlined."""

from __future__ import annotations

import re

_STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style\s*>\s*", re.S | re.I)
_CHARSET = re.compile(r"<meta\s+charset\s*=[^>]*>\s*", re.I)


def style_after_charset(page: str) -> str:
    """Move the <style> blocks the inliner put first in <head> after `<meta charset>`.

    A browser or mail client looks for the charset in the first 1024 bytes only;
    the @media rules kept for phones would push it out.
    """
    charset = _CHARSET.search(page)
    if charset is None:
        return page
    before = page[: charset.start()]
    blocks = [found.group(0).strip() for found in _STYLE_BLOCK.finditer(before)]
    if not blocks:
        return page
    kept = _STYLE_BLOCK.sub("", before)
    return kept + charset.group(0).rstrip() + "\n" + "\n".join(blocks) + "\n" + page[charset.end() :]
