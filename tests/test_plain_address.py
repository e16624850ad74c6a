"""edumail.plain_address judges plain addresses as email_validator does, without importing it."""

from __future__ import annotations

import random

import email_validator
import pytest
from email_validator import EmailNotValidError, validate_email

from edumail import plain_address


def test_the_special_use_names_are_email_validators():
    assert set(plain_address.SPECIAL_USE) == set(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def _label(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.05:
        return rng.choice(["xn--bcher-kva", "ab--cd", "-ab", "ab-", "", "a" * 63, "a" * 64, "Éole", "a_b"])
    if kind < 0.10:
        return rng.choice(plain_address.SPECIAL_USE + ("example", "com", "fr", "123", "c0m"))
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-") for _ in range(rng.randint(1, 12)))


def _address(rng: random.Random) -> str:
    local = "".join(rng.choice("abcdefXYZ0189._%+'-") for _ in range(rng.randint(1, 12)))
    if rng.random() < 0.05:
        local = rng.choice(['"quoted"', "a b", "é", "a..b", ".a", "a.", "x" * 65, "a@b"])
    labels = [_label(rng) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.02:
        labels = ["a" * 60] * 5
    return f"{local}@{'.'.join(labels)}"


def test_a_plain_address_gets_email_validators_verdict_and_form():
    rng = random.Random(20261128)
    plain = 0
    for _ in range(20_000):
        text = _address(rng)
        found = plain_address.address(text)
        if found is None:
            continue  # not plain: email_validator judges it
        plain += 1
        try:
            normalized = validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            pytest.fail(f"{text!r}: plain here, refused by email_validator ({exc})")
        assert found == normalized, text
    assert plain > 2_000  # the test saw plenty of plain addresses


def test_a_plain_domain_gets_email_validators_form():
    rng = random.Random(28112026)
    for _ in range(20_000):
        name = ".".join(_label(rng) for _ in range(rng.randint(1, 4)))
        found = plain_address.domain(name)
        if found is not None:
            assert found == validate_email(f"a@{name}", check_deliverability=False).domain.lower(), name


@pytest.mark.parametrize(
    "text", ["jean@localhost", "jean@centre.test", "jean@xn--bcher-kva.example", "jean@centre.c0m", "j ean@x.fr"]
)
def test_what_is_not_plain_goes_to_email_validator(text):
    assert plain_address.address(text) is None
