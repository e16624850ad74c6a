"""Amazon SNS message signatures (SignatureVersion 1: SHA1, 2: SHA256, RSA PKCS#1 v1.5).

https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html :
the signed string is "Key\\nvalue\\n" for a fixed list of keys per message type;
the certificate is fetched over https only from a host of the AWS SNS pattern
(sns.REGION.amazonaws.com), and cached. A subscription is confirmed by a GET
of its SubscribeURL, held to the same host pattern.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HOST = re.compile(r"^sns\.[a-z0-9-]{1,30}\.amazonaws\.com(\.cn)?$")
TIMEOUT = 10.0
_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
TYPES = frozenset({"Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"})

Fetch = Callable[[str], bytes]


class BadSignature(ValueError):
    """The message is not signed by SNS (bad signature, certificate host, type...)."""


def aws_url(url: Any) -> str:
    """`url` if it is https on an AWS SNS host, else BadSignature."""
    if not isinstance(url, str):
        raise BadSignature("missing URL")
    parts = urlsplit(url)
    if parts.scheme != "https" or not HOST.match(parts.hostname or "") or parts.port not in (None, 443):
        raise BadSignature(f"URL not on an AWS SNS host: {url[:100]}")
    return url


def fetch(url: str) -> bytes:
    """GET an SNS URL (certificate, SubscribeURL), TLS verified."""
    response = httpx.get(aws_url(url), timeout=TIMEOUT)
    response.raise_for_status()
    return response.content


class Verifier:
    """Checks SNS signatures; `fetch` gets a certificate's PEM (tests give one that serves a test certificate)."""

    def __init__(self, fetch_certificate: Fetch = fetch):
        self.fetch_certificate = fetch_certificate
        self.cache: dict[str, x509.Certificate] = {}
        self.lock = threading.Lock()

    def certificate(self, url: str) -> x509.Certificate:
        with self.lock:
            cert = self.cache.get(url)
        if cert is None:
            try:
                cert = x509.load_pem_x509_certificate(self.fetch_certificate(aws_url(url)))
            except (httpx.HTTPError, ValueError) as exc:
                if isinstance(exc, BadSignature):
                    raise
                raise BadSignature(f"cannot get the signing certificate: {type(exc).__name__}") from None
            with self.lock:
                self.cache[url] = cert
        return cert

    def verify(self, message: dict[str, Any]) -> None:
        kind = message.get("Type")
        if kind not in TYPES:
            raise BadSignature(f"unknown SNS message type {kind!r}")
        version = str(message.get("SignatureVersion", ""))
        algorithm: hashes.HashAlgorithm
        if version == "1":
            algorithm = hashes.SHA1()  # noqa: S303 - SNS SignatureVersion 1 is defined with SHA1
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            raise BadSignature(f"unsupported SignatureVersion {version!r}")
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError):
            raise BadSignature("signature is not base64") from None
        key = self.certificate(message.get("SigningCertURL", "")).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise BadSignature("the signing certificate has no RSA key")
        try:
            key.verify(signature, signed_string(message), padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise BadSignature("signature does not match") from None


def signed_string(message: dict[str, Any]) -> bytes:
    keys = _NOTIFICATION if message.get("Type") == "Notification" else _SUBSCRIPTION
    lines = []
    for key in keys:
        value = message.get(key)
        if value is None:
            if key == "Subject":
                continue
            raise BadSignature(f"missing {key}")
        lines.append(f"{key}\n{value}\n")
    return "".join(lines).encode("utf-8")
