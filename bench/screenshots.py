"""Screenshots of every library template and of the tracking pages, as a person sees them, in Chromium.

    python bench/screenshots.py [--out DIR] [--template NAME ...] [--widths 600,375] [--no-png]

Renders each template of a fresh `edumail init` project with `edumail preview
--out`, for the sample contact and for a contact without a first name, then
takes a PNG per width with and without the <style> block (Gmail apps with a
non-Google account and the SFR and La Poste webmails drop it; the inlined
styles stay). The unsubscribe, preferences and confirmation pages are shot
too. Last, one Chromium pass measures each page's width in a frame of each
width: a page wider than its frame is cut on that screen, and is listed as
such. Needs `chromium` (or CHROMIUM=/path) on PATH; open the PNGs in DIR/png.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--hide-scrollbars",
]
NO_FIRST_NAME = "sans.prenom@example.org"
_STYLE = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.S | re.I)


@dataclass(frozen=True)
class Page:
    """One HTML file to look at: a template variant or a tracking page."""

    name: str
    path: Path
    styled: bool = True


def chromium() -> str | None:
    """The Chromium binary, or None when it is not installed."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def edumail(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "edumail", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"edumail {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def make_project(root: Path, centre: str) -> Path:
    """A project made by `edumail init`, with one contact who has no first name."""
    project = root / "project"
    edumail("init", str(project), "--name", centre, cwd=root)
    (project / "sans-prenom.csv").write_text(f"email,stage\n{NO_FIRST_NAME},prospect\n", encoding="utf-8")
    edumail("contacts", "import", "sans-prenom.csv", cwd=project)
    return project


def template_names(project: Path) -> list[str]:
    return sorted(p.stem for p in (project / "templates").glob("*.html") if not p.name.startswith("_"))


def render_templates(project: Path, names: list[str], out: Path) -> list[Page]:
    """Each template for the sample contact (with and without <style>) and for a contact without a first name."""
    pages = []
    for name in names:
        styled = out / f"{name}.html"
        edumail("preview", name, "--out", str(styled), cwd=project)
        bare = out / f"{name}-sans-style.html"
        bare.write_text(_STYLE.sub("", styled.read_text(encoding="utf-8")), encoding="utf-8")
        anonymous = out / f"{name}-sans-prenom.html"
        edumail("preview", name, "--contact", NO_FIRST_NAME, "--out", str(anonymous), cwd=project)
        pages += [
            Page(name, styled),
            Page(f"{name}-sans-style", bare, styled=False),
            Page(f"{name}-sans-prenom", anonymous),
        ]
    return pages


def render_pages(project: Path, centre: str, out: Path) -> list[Page]:
    """The pages `edumail serve` shows a person: unsubscribe, preferences, double opt-in, the signup form."""
    from edumail import form_pages, forms, tracking_pages
    from edumail import project as project_module
    from edumail.preferences import View

    loaded = project_module.load(project)
    labels = dict(loaded.settings.topics)
    email = "camille.martin@example.org"
    masked = tracking_pages.mask(email)
    topic = next(iter(labels), None)
    in_topic = View(email, True, topic, {name: True for name in labels})
    no_topic = View(email, True, None, {name: True for name in labels})
    makers = {
        "page-desinscription-theme": lambda: form_pages.unsubscribe_page(centre, in_topic, labels, "#preferences"),
        "page-desinscription": lambda: form_pages.unsubscribe_page(centre, no_topic, labels, "#preferences"),
        "page-desinscrit": lambda: form_pages.unsubscribed_page(centre, no_topic, labels, "all"),
        "page-preferences": lambda: form_pages.preferences_page(centre, no_topic, labels, False),
        "page-confirmation": lambda: tracking_pages.confirm_form(centre, masked),
        "page-formulaire": lambda: form_pages.form_page(centre, forms.load_one(loaded, "newsletter"), "/f/newsletter"),
    }
    pages = []
    for name, make in makers.items():
        try:
            text = make()
        except Exception as exc:  # noqa: BLE001 - a page whose code moved is reported, the others still shot
            print(f"{name}: not rendered ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        path = out / f"{name}.html"
        path.write_text(text, encoding="utf-8")
        pages.append(Page(name, path))
    return pages


def measure(pages: list[Page], widths: list[int], browser: str, work: Path) -> dict[tuple[str, int], tuple[int, int]]:
    """(page, width) -> (scrollWidth, scrollHeight) of the page in a frame that wide: one Chromium run."""
    frames = []
    for page in pages:
        source = html.escape(page.path.read_text(encoding="utf-8"), quote=True)
        for width in widths:
            frames.append(
                f'<iframe data-key="{html.escape(page.name)}|{width}" width="{width}" height="800" '
                f'style="border:0;display:block" srcdoc="{source}"></iframe>'
            )
    harness = work / "measure.html"
    harness.write_text(
        "<!doctype html><html><body>"
        + "".join(frames)
        + "<pre id='out'></pre><script>window.addEventListener('load',function(){var r={};"
        "document.querySelectorAll('iframe').forEach(function(f){var d=f.contentDocument.documentElement;"
        "r[f.dataset.key]=[d.scrollWidth,d.scrollHeight];});"
        "document.getElementById('out').textContent=JSON.stringify(r);});</script></body></html>",
        encoding="utf-8",
    )
    done = subprocess.run(
        [browser, *CHROMIUM_FLAGS, "--virtual-time-budget=10000", "--dump-dom", harness.as_uri()],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    found = re.search(r"<pre id=\"out\">(.*?)</pre>", done.stdout, re.S)
    if found is None:
        raise SystemExit(f"chromium did not measure the pages:\n{done.stderr[-2000:]}")
    result = json.loads(html.unescape(found.group(1)))
    return {(key.split("|")[0], int(key.split("|")[1])): tuple(value) for key, value in result.items()}


def shoot(page: Page, width: int, height: int, browser: str, out: Path) -> Path:
    png = out / f"{page.name}-{width}.png"
    subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--screenshot={png}", f"--window-size={width},{height}", page.path.as_uri()],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return png


def collect(out: Path, names: list[str] | None, centre: str) -> list[Page]:
    """Render every page to look at into OUT/html."""
    html_dir = out / "html"
    html_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        project = make_project(Path(work), centre)
        chosen = names or template_names(project)
        pages = render_templates(project, chosen, html_dir)
        return pages + ([] if names else render_pages(project, centre, html_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--template", action="append", help="only this template (repeatable)")
    parser.add_argument("--widths", default="600,375")
    parser.add_argument("--centre", default="Centre de formation Exemple")
    parser.add_argument("--no-png", action="store_true", help="measure only")
    args = parser.parse_args(argv)
    browser = chromium()
    if browser is None:
        print("chromium is not installed (apt-get install chromium, or set CHROMIUM=/path)", file=sys.stderr)
        return 1
    widths = [int(w) for w in args.widths.split(",")]
    pages = collect(args.out, args.template, args.centre)
    sizes = measure(pages, widths, browser, args.out / "html")
    png_dir = args.out / "png"
    png_dir.mkdir(parents=True, exist_ok=True)
    cut = 0
    for page in pages:
        for width in widths:
            scroll_width, scroll_height = sizes[(page.name, width)]
            verdict = "ok" if scroll_width <= width else f"CUT: {scroll_width} px wide"
            cut += scroll_width > width
            shown = "" if args.no_png else f"  {shoot(page, width, scroll_height + 40, browser, png_dir)}"
            print(f"{page.name:42} {width:4} px  {verdict}{shown}")
    print(f"{len(pages)} pages x {len(widths)} widths; {cut} cut" + ("" if args.no_png else f"; PNGs in {png_dir}"))
    return 1 if cut else 0


if __name__ == "__main__":
    raise SystemExit(main())
