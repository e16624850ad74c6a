"""`edumail check` and `edumail providers test` for a provider transport (SPEC 18).

`problems` and `warnings` read only settings and the environment (no call to
the provider); `test` makes one authenticated call that sends nothing (the
provider's account or sender endpoint) and says whether the key works.
"""

from __future__ import annotations

import os

from edumail.errors import Problem
from edumail.project import Project
from edumail.settings import PROVIDERS, SETTINGS_FILE

_NEEDS_SECRET = {"mailjet": "the Mailjet secret key", "ses": "the AWS secret access key"}


def problems(project: Project) -> list[Problem]:
    """What stops sending: an unset key variable (and secret for Mailjet, SES), boto3 missing for SES."""
    settings, config = project.settings, project.settings.provider
    if settings.transport not in PROVIDERS or config is None:
        return []
    found = []
    if not os.environ.get(config.key_env):
        found.append(f"provider.key_env: the environment variable {config.key_env} (the API key) is not set")
    needs = _NEEDS_SECRET.get(settings.transport)
    if needs and not config.secret_env:
        found.append(f"provider.secret_env: {settings.transport} needs it (the variable holding {needs})")
    elif needs and config.secret_env and not os.environ.get(config.secret_env):
        found.append(f"provider.secret_env: the environment variable {config.secret_env} ({needs}) is not set")
    if settings.transport == "ses":
        try:
            import boto3  # noqa: F401
        except ImportError:
            found.append("transport ses needs boto3: pip install 'edumail[ses]'")
    return [Problem(SETTINGS_FILE, 0, text) for text in found]


def warnings(project: Project) -> list[str]:
    """What works but leaves the provider's events unheard (webhooks)."""
    settings, config = project.settings, project.settings.provider
    if settings.transport not in PROVIDERS or config is None:
        return []
    found = []
    if not config.webhook_secret_env:
        found.append(
            "edumail.yaml: provider.webhook_secret_env is not set: bounces, complaints and deliveries from "
            f"{settings.transport} cannot reach edumail (set it, then paste the webhook URL in the provider's console)"
        )
    elif not os.environ.get(config.webhook_secret_env):
        found.append(f"edumail.yaml: the environment variable {config.webhook_secret_env} (webhook secret) is not set")
    if not settings.tracking.base_url:
        found.append(
            "edumail.yaml: tracking.base_url is needed for provider webhooks (the public address of `edumail serve`)"
        )
    return found


def webhook_url(project: Project) -> str | None:
    """The URL to paste in the provider's console, the secret shown as the variable's name."""
    settings, config = project.settings, project.settings.provider
    if config is None or not settings.tracking.base_url or not config.webhook_secret_env:
        return None
    return f"{settings.tracking.base_url}/webhooks/{settings.transport}/${config.webhook_secret_env}"


def test(project: Project) -> str:
    """One authenticated call that sends nothing; raises SendFailure when the key does not work."""
    from edumail import transport

    return transport.make_provider(project).test()
