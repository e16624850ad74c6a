"""The files of templates/: which are templates, which are misnamed, which layouts exist.

Kept apart from render.py (Jinja, CSS inlining, babel) so that listing template
names, as `run` does to check the sequences, costs no heavy import.
"""

from __future__ import annotations

import re
from pathlib import Path

LAYOUTS_DIR = "layouts"
NAME = re.compile(r"^\w[\w.-]*$")  # any letters: "relancé" is a fine name


def files(folder: Path) -> list[Path]:
    """templates/*.html except partials (`_x.html`) and hidden files."""
    if not folder.is_dir():
        return []
    return [p for p in folder.glob("*.html") if p.is_file() and not p.name.startswith((".", "_"))]


def names(folder: Path) -> list[str]:
    """Template names (templates/NAME.html), layouts excluded."""
    return sorted(p.stem for p in files(folder) if NAME.match(p.stem))


def misnamed(folder: Path) -> list[Path]:
    """Template files whose name cannot be a template name (spaces, symbols)."""
    return sorted(p for p in files(folder) if not NAME.match(p.stem))


def layouts(folder: Path) -> list[str]:
    """Layout names (templates/layouts/NAME.html)."""
    inside = folder / LAYOUTS_DIR
    return sorted(p.stem for p in inside.glob("*.html") if p.is_file()) if inside.is_dir() else []
