"""Reaching the hub before trusting it: the certificate it shows, and its pin.

At join the agent connects once without verifying, takes the certificate the
hub shows (``getpeercert(binary_form=True)``), prints its SHA-256 fingerprint
and, when the operator gave one, refuses a mismatch. From then on that exact
certificate is the only one trusted (:func:`unity_agent.identity.pinned_context`).
Before every start the pin is checked again, so a changed certificate is a clear
message rather than a hub that seems to be down forever.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from unity_agent.errors import CommandError
from unity_agent.identity import AgentIdentity, pinned_context

__all__ = [
    "HubCertificate",
    "certificate_fingerprint",
    "check_pin",
    "hub_url",
    "normalize_fingerprint",
    "probe_hub",
]

_TIMEOUT = 10.0
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class HubCertificate:
    """The certificate a hub showed, as it came off the wire (DER)."""

    der: bytes

    @property
    def pem(self) -> str:
        return ssl.DER_cert_to_PEM_cert(self.der)

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.der)


def certificate_fingerprint(der: bytes) -> str:
    """``sha256:`` and the lower-case hex SHA-256 of the DER certificate: the
    digest ``openssl x509 -noout -fingerprint -sha256`` prints, without colons."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str | None:
    """A fingerprint as the agent writes it, from what a person may paste:
    ``sha256:ab12...``, ``SHA256:AB:12:...`` or openssl's
    ``sha256 Fingerprint=AB:12:...``. ``None`` when it is not a SHA-256 digest."""
    value = text.strip().lower()
    for prefix in ("sha256 fingerprint=", "sha256:", "sha256="):
        value = value.removeprefix(prefix)
    value = value.replace(":", "")
    return f"sha256:{value}" if _HEX_SHA256.fullmatch(value) else None


def hub_url(url: str) -> str:
    """The hub's URL, checked: http or https, with a host. No trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise CommandError(f"the hub URL must start with http:// or https:// (got {url!r})")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise CommandError(f"the hub URL has an invalid port (got {url!r})") from None
    if not parts.hostname:
        raise CommandError(f"the hub URL has no host (got {url!r})")
    if parts.query or parts.fragment:
        raise CommandError(f"the hub URL must not have a query or fragment (got {url!r})")
    # geturl() writes the scheme as urlsplit read it: lower case.
    return parts.geturl().rstrip("/")


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None  # hub_url checked it
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _unreachable(url: str, exc: OSError) -> CommandError:
    if isinstance(exc, ConnectionRefusedError):
        reason = "connection refused (is the hub running, and is this its port?)"
    elif isinstance(exc, socket.gaierror):
        reason = f"unknown host ({exc.strerror})"
    elif isinstance(exc, TimeoutError):
        reason = f"no answer within {_TIMEOUT:g} s"
    elif isinstance(exc, ssl.SSLError):
        reason = f"the TLS handshake failed ({exc.reason or exc}); is the URL http:// instead?"
    else:
        reason = exc.strerror or str(exc) or type(exc).__name__
    return CommandError(f"cannot reach the hub at {url}: {reason}")


def _handshake(url: str, context: ssl.SSLContext, timeout: float) -> bytes:
    host, port = _address(url)
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:  # pragma: no cover - a TLS server always shows a certificate
        raise ssl.SSLError("the hub showed no certificate")
    return der


def probe_hub(url: str, *, timeout: float = _TIMEOUT) -> HubCertificate | None:
    """Connect once to the hub: its certificate for https (not verified: this is
    how the agent learns it), ``None`` for http. Raises :class:`CommandError`
    when nothing answers, before anything is sent or written."""
    url = hub_url(url)
    try:
        if urlsplit(url).scheme == "http":
            socket.create_connection(_address(url), timeout=timeout).close()
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return HubCertificate(_handshake(url, context, timeout))
    except OSError as exc:
        raise _unreachable(url, exc) from None


def check_pin(identity: AgentIdentity, *, timeout: float = _TIMEOUT) -> str | None:
    """Why the pinned hub cannot be trusted now, or ``None``.

    ``None`` too when the hub does not answer at all: the agent buffers until
    it returns. A handshake the pinned context refuses is either a new
    certificate (fingerprints differ: join again) or the pinned one gone bad
    (expired, say)."""
    if identity.pinned_certificate is None:
        return None
    try:
        _handshake(identity.hub_url, pinned_context(identity.pinned_certificate), timeout)
    except ssl.SSLCertVerificationError as exc:
        try:
            current = probe_hub(identity.hub_url, timeout=timeout)
        except CommandError:
            return None
        now = current.fingerprint if current else "no TLS"
        if now != identity.fingerprint:
            return (
                f"the hub's certificate changed: pinned {identity.fingerprint}, now {now}; "
                "if this is expected, join again with --force"
            )
        return (
            f"the hub's pinned certificate {identity.fingerprint} is no longer accepted "
            f"({exc.verify_message}); give the hub a new one and join again with --force"
        )
    except OSError:
        return None
    return None
