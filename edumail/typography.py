"""French typography for rendered mail: no-break spaces, and `de`/`à` before a centre's name.

A French line must not break before `: ; ! ? »`, after `«`, inside a date
("1 décembre 2026 à 9h00") or an amount ("1 200 €"). The spaces are made
no-break (U+00A0) in the text of a rendered mail, never in its markup. The
plain U+00A0 is used before `; ! ?` too, not the narrow U+202F that the
Imprimerie nationale prefers: Arial and Outlook for Windows fonts of some
versions lack U+202F and would show a box.
"""

from __future__ import annotations

import re
from typing import Any

NBSP = "\u00a0"

# Markup that is not text: comments (Outlook's conditional ones included), style and script blocks, tags.
_MARKUP = re.compile(r"(<!--.*?-->|<style\b.*?</style\s*>|<script\b.*?</script\s*>|<[^>]*>)", re.S | re.I)
_BEFORE_PUNCTUATION = re.compile(r"[ \t]+(?=[:;!?»])")
_AFTER_GUILLEMET = re.compile(r"«[ \t]+")
# "à 9h00": an `à` that starts a word (after a space, a parenthesis or nothing: see _starts_word).
_AT_HOUR = re.compile(r"à[ \t]+(?=\d)")
# "1 200", "15 €", "5 minutes", "12 rue", "1 décembre": a number (one that starts a word, after a space, a
# parenthesis, a « or nothing) holds on to what follows it.
_AFTER_NUMBER = re.compile(r"(\d+(?:[.,]\d+)*)[ \t]+(?=[\w€%$£])")
_DIGIT_SPACE = re.compile(r"\d[ \t]")
_SEPARATOR = "\n\x1f\n"  # between the text pieces of a page (\x1f, the unit separator, is never text)


def french_spacing(text: str) -> str:
    """Plain text with no-break spaces where French typography wants them."""
    if not text:
        return text
    # Each rule runs only where its text can be (a few substring tests): scanning a mail's text with the
    # four patterns, character by character, cost more than all of them ever replace.
    if "\t" in text or any(f" {mark}" in text for mark in ":;!?»"):
        text = _BEFORE_PUNCTUATION.sub(NBSP, text)
    if "«" in text:
        text = _AFTER_GUILLEMET.sub("«" + NBSP, text)
    if "à" in text:
        text = _AT_HOUR.sub(lambda m: "à" + NBSP if _starts_word(m, "(") else m.group(0), text)
    if _DIGIT_SPACE.search(text):
        text = _AFTER_NUMBER.sub(lambda m: m.group(1) + NBSP if _starts_word(m, "(«") else m.group(0), text)
    return text


def _starts_word(match: re.Match[str], openers: str) -> bool:
    """Does the match start the text, or follow whitespace or one of `openers`? (A lookbehind in the
    pattern would make `re` try it at every character; the patterns start with what they look for.)"""
    at = match.start()
    return at == 0 or match.string[at - 1].isspace() or match.string[at - 1] in openers


def french_spacing_html(page: str) -> str:
    """The same, applied to the text of an HTML page only (tags, comments, style and script untouched)."""
    parts = _MARKUP.split(page)
    # re.split with one group: even indexes are text, odd ones the markup that separated them. Most text
    # between tags is indentation; the rest goes through the rules as one string, its pieces kept apart by
    # a separator that no rule reads across (whitespace, as a piece's own start and end are to the rules).
    texts = [i for i in range(0, len(parts), 2) if not parts[i].isspace()]
    if not texts:
        return page
    if _SEPARATOR[1] in page:
        for i in texts:
            parts[i] = french_spacing(parts[i])
        return "".join(parts)
    spaced = french_spacing(_SEPARATOR.join([parts[i] for i in texts]))
    for i, text in zip(texts, spaced.split(_SEPARATOR), strict=True):
        parts[i] = text
    return "".join(parts)


def tie_date(text: str) -> str:
    """A formatted date that breaks after its weekday at most: "mardi" / "1 décembre 2026 à 9h00"."""
    words = text.split(" ")
    if len(words) > 2 and words[0].isalpha() and words[1][:1].isdigit():
        return words[0] + " " + NBSP.join(words[1:])
    return NBSP.join(words)


# --- de / du / d' ------------------------------------------------------------

_VOWELS = set("aeiouyàâäéèêëîïôöùûüœæ")
# A name that starts with one of these common nouns takes an article: "du Centre", "de la Maison", "de l'Institut".
_MASCULINE = {
    "atelier", "bureau", "cabinet", "campus", "centre", "cfa", "club", "cnam", "collège", "conservatoire",
    "espace", "greta", "groupe", "institut", "laboratoire", "lycée", "organisme", "pôle", "réseau", "service",
    "studio",
}  # fmt: skip
_FEMININE = {
    "académie", "afpa", "agence", "association", "chambre", "cité", "coopérative", "école", "fabrique",
    "fédération", "fondation", "maison", "mission", "plateforme", "société", "université",
}  # fmt: skip
_CONTRACTED = {
    ("de", "le"): "du ",
    ("de", "la"): "de la ",
    ("de", "les"): "des ",
    ("de", "l"): "de l'",
    ("à", "le"): "au ",
    ("à", "la"): "à la ",
    ("à", "les"): "aux ",
    ("à", "l"): "à l'",
}
PREPOSITIONS = ("de", "à")


def elide(name: str, preposition: str = "de") -> str:
    """`de` or `à` joined to a name as French writes it: d'Alpes Compétences, du Centre, à l'École, au Groupe."""
    if preposition not in PREPOSITIONS:
        raise ValueError(f"elide: preposition must be 'de' or 'à', got {preposition!r}")
    text = " ".join(str(name).split())
    if not text:
        return preposition
    article, rest = _article(text)
    if article is not None:
        return _CONTRACTED[(preposition, article)] + rest
    first = text.split(" ", 1)[0].split("-", 1)[0].lower()
    starts_with_vowel = first[:1] in _VOWELS
    if first in _MASCULINE or first in _FEMININE:
        if starts_with_vowel:
            return _CONTRACTED[(preposition, "l")] + text
        return _CONTRACTED[(preposition, "le" if first in _MASCULINE else "la")] + text
    if preposition == "de" and starts_with_vowel:
        return "d'" + text
    return f"{preposition} {text}"


def _article(text: str) -> tuple[str | None, str]:
    """("le", "Centre X") for "Le Centre X"; ("l", "Atelier") for "L'Atelier"; (None, text) without article."""
    lowered = text.lower()
    for apostrophe in ("'", "’"):
        if lowered.startswith("l" + apostrophe) and len(text) > 2:
            return "l", text[2:]
    word, _, rest = text.partition(" ")
    if word.lower() in ("le", "la", "les") and rest:
        return word.lower(), rest
    return None, text


def elide_filter(value: Any, preposition: str = "de") -> str:
    """The `de` and `elide` template filters: `{{ sender.name | de }}`, `{{ sender.name | elide("à") }}`."""
    import jinja2  # only a template calls this filter: the alerts' French spacing does not load Jinja

    from edumail.render_sandbox import FilterError

    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    try:
        return elide(str(value), preposition)
    except ValueError as exc:
        raise FilterError(str(exc)) from None
