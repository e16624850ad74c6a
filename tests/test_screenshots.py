"""Every library template and page fits a 375 px and a 600 px screen, with and without its <style> block.

Measured in headless Chromium (one run for all pages); skipped where Chromium
is not installed. The PNGs themselves come from `python bench/screenshots.py`.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edumail import form_pages, tracking_pages
from edumail.preferences import View
from edumail.render import TemplateLibrary, render
from edumail.render_check import sample_contact, sample_event, sample_session
from edumail.settings import Sender, Settings

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("screenshots", ROOT / "bench" / "screenshots.py")
assert _spec and _spec.loader
screenshots = importlib.util.module_from_spec(_spec)
sys.modules["screenshots"] = screenshots  # dataclasses look their module up there
_spec.loader.exec_module(screenshots)

BROWSER = screenshots.chromium()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="needs chromium (apt-get install chromium)")
STYLE = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.S | re.I)
CENTRE = "Centre de formation Exemple"


def _pages(folder: Path) -> list:
    library = TemplateLibrary(ROOT / "templates", Settings(sender=Sender(CENTRE, "contact@centre.example")))
    pages = []
    for name in library.names():
        for who, suffix in ((sample_contact(), ""), ({"email": "sans.prenom@example.org"}, "-sans-prenom")):
            html = render(
                library,
                name,
                contact=who,
                event=sample_event(name),
                now=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
                unsubscribe_url="https://mail.centre.example/u/T",
                preferences_url="https://mail.centre.example/p/T",
                extra={"confirm_url": "https://mail.centre.example/k/T", "session": sample_session()},
            ).html
            for variant, text in ((suffix, html), (suffix + "-sans-style", STYLE.sub("", html))):
                path = folder / f"{name}{variant}.html"
                path.write_text(text, encoding="utf-8")
                pages.append(screenshots.Page(path.stem, path))
    labels = {"newsletter": "La lettre mensuelle", "offres": "Offres et promotions"}
    view = View("camille.martin@example.org", True, "newsletter", {"newsletter": True, "offres": True})
    for name, text in {
        "page-desinscription": form_pages.unsubscribe_page(CENTRE, view, labels, "#p"),
        "page-preferences": form_pages.preferences_page(CENTRE, view, labels, False),
        "page-confirmation": tracking_pages.confirm_form(CENTRE, "c•••@example.org"),
    }.items():
        path = folder / f"{name}.html"
        path.write_text(text, encoding="utf-8")
        pages.append(screenshots.Page(name, path))
    return pages


def test_nothing_is_cut_at_375_or_600_px(tmp_path: Path) -> None:
    pages = _pages(tmp_path)
    sizes = screenshots.measure(pages, [375, 600], BROWSER, tmp_path)
    cut = {key: size[0] for key, size in sizes.items() if size[0] > key[1]}
    assert len(sizes) == 2 * len(pages) and cut == {}


def test_the_measure_sees_a_fixed_600_px_card_cut_on_a_phone(tmp_path: Path) -> None:
    path = tmp_path / "fixed.html"
    path.write_text('<html><body><table width="600" style="width:600px"><tr><td>x</td></tr></table></body></html>')
    sizes = screenshots.measure([screenshots.Page("fixed", path)], [375], BROWSER, tmp_path)
    assert sizes[("fixed", 375)][0] > 375
