"""`send --content FILE.md`: the monthly letter written in Markdown, rendered once to HTML.

The HTML becomes the template's `content` variable; the template and its
layout then go through the usual rendering (CSS inlined, text part derived).
Links must be web addresses (or mailto:/tel:) and images web addresses, since a
mail has no folder next to it; raw HTML is refused so the file stays Markdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from edumail.errors import InputError

MAX_BYTES = 1_000_000
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")
_IMAGE_SCHEMES = ("http://", "https://")


def read(path: Path) -> tuple[str, str]:
    """(the file's text, the name shown in errors); InputError when it cannot be read as UTF-8."""
    shown = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"--content {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"--content {path}: is a folder, expected a Markdown file") from None
    except OSError as exc:
        raise InputError(f"--content {path}: cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{shown}: {len(raw)} bytes; a letter's Markdown is at most {MAX_BYTES // 1000} kB")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{shown}:{line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8 (in most editors: Save as, "
            "encoding UTF-8)"
        ) from None
    if "\x00" in text:
        raise InputError(f"{shown}: not a text file (it contains NUL bytes)")
    if not text.strip():
        raise InputError(
            f"{shown}: empty; write the letter in Markdown (# Titre, paragraphs, - lists, [links](https://...))"
        )
    return text, shown


def render_file(path: Path) -> str:
    """The HTML of a Markdown file, or InputError naming the file and line."""
    text, shown = read(path)
    return render(text, shown)


def render(text: str, shown: str = "content.md") -> str:
    """Markdown -> HTML: headings, lists, links, images, bold; checked links, no raw HTML."""
    md = MarkdownIt("commonmark", {"html": True})
    md.validateLink = lambda url: True  # type: ignore[method-assign]  # we check every link, with a clear message
    tokens = md.parse(text)
    lines = text.splitlines()
    for block in tokens:
        _check_block(block, lines, shown)
    md.add_render_rule("image", _image)
    return str(md.renderer.render(tokens, md.options, {}))


def _check_block(block: Token, lines: list[str], shown: str) -> None:
    first = block.map[0] + 1 if block.map else 1
    if block.type == "html_block":
        raise InputError(f"{shown}:{first}: raw HTML is not allowed here; write Markdown (the template holds the HTML)")
    for child in block.children or []:
        if child.type == "html_inline":
            line = _line_of(child.content, block, lines)
            raise InputError(
                f"{shown}:{line}: raw HTML {child.content.strip()!r} is not allowed here; write Markdown "
                "(**bold**, [text](https://...))"
            )
        if child.type == "link_open":
            _check_url(str(child.attrs.get("href", "")), _LINK_SCHEMES, "link", block, lines, shown)
        if child.type == "image":
            _check_url(str(child.attrs.get("src", "")), _IMAGE_SCHEMES, "image", block, lines, shown)


def _check_url(url: str, schemes: tuple[str, ...], what: str, block: Token, lines: list[str], shown: str) -> None:
    if url.strip().lower().startswith(schemes):
        return
    line = _line_of(url, block, lines)
    allowed = "http:// or https://" + (", mailto: or tel:" if what == "link" else "")
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    if scheme in ("javascript", "vbscript", "data", "file"):
        raise InputError(f"{shown}:{line}: {what} to {scheme}: is not allowed in a mail; use {allowed}")
    raise InputError(
        f"{shown}:{line}: {what} {url!r} is not a full web address; a mail needs {allowed} (e.g. "
        "https://www.centre.example/catalogue)"
    )


def _line_of(needle: str, block: Token, lines: list[str]) -> int:
    start, end = block.map if block.map else (0, len(lines))
    for number in range(start, min(end, len(lines))):
        if needle and needle in lines[number]:
            return number + 1
    return start + 1


def _image(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    """Images never overflow a phone screen, and keep their alt text for the text part."""
    token = tokens[idx]
    token.attrSet("alt", self.renderInlineAsText(token.children or [], options, env))
    token.attrSet("style", "max-width:100%;height:auto;border:0")
    return str(self.renderToken(tokens, idx, options, env))
