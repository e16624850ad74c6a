"""pyproject.toml's lower bounds leave out every release with a known security advisory (issue 13, point 19)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

# package: (first fixed release, why). Keep README's dependency list in step.
ADVISORIES = {
    "jinja2": ("3.1.6", "sandbox escapes: CVE-2024-56201, CVE-2024-56326, CVE-2025-27516"),
    "starlette": (
        "1.3.1",
        "multipart DoS CVE-2024-47874 (0.40), CVE-2025-54121, Range ReDoS CVE-2025-62727, "
        "Host header bypass CVE-2026-48710, form limits GHSA-82w8-qh3p-5jfq",
    ),
    "python-multipart": (
        "0.0.31",
        "ReDoS CVE-2024-24762, CVE-2024-53981, CVE-2026-24486, CVE-2026-42561, "
        "GHSA-5rvq-cxj2-64vf, GHSA-v9pg-7xvm-68hf",
    ),
    "pyyaml": ("6.0.1", "arbitrary code execution in full_load: CVE-2020-14343"),
    "babel": ("2.14", "locale path traversal: CVE-2021-42771"),
    "httpx": ("0.27", "URL parsing: CVE-2021-41945"),
    "cryptography": ("44.0.1", "PKCS12 NULL dereference CVE-2024-26130, bundled OpenSSL CVE-2024-12797"),
    "aiosmtpd": ("1.4.6", "SMTP smuggling CVE-2024-27305, STARTTLS injection CVE-2024-34083"),
}


def _key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def _lower_bounds() -> dict[str, str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    bounds: dict[str, str] = {}
    for spec in specs:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*(?:\[[^]]*\])?\s*>=\s*([0-9.]+)", spec)
        if match:
            name = match.group(1).lower().replace("_", "-")
            bounds[name] = max(bounds.get(name, "0"), match.group(2), key=_key)
    return bounds


@pytest.mark.parametrize("package", sorted(ADVISORIES))
def test_the_lower_bound_excludes_releases_with_known_advisories(package):
    fixed, why = ADVISORIES[package]
    bounds = _lower_bounds()
    assert package in bounds, f"{package} has no lower bound in pyproject.toml"
    assert _key(bounds[package]) >= _key(fixed), f"{package}>={bounds[package]} allows releases with {why}"


@pytest.mark.parametrize("package", sorted(ADVISORIES))
def test_the_installed_release_is_a_fixed_one(package):
    assert _key(version(package)) >= _key(ADVISORIES[package][0])
