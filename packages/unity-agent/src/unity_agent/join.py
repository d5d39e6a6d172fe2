"""``unity-agent join``: enroll this host with a hub, once.

The order is what makes a failed join leave nothing behind: every check that
needs no network (URL, fingerprint, host id, an existing identity, a data
directory we can write), then the hub's certificate, then the join itself,
and only when the hub has answered with a key is ``agent.json`` written.
The key's secret is proposed by the agent and kept in memory, so the
client's retries of a join whose answer was lost get the same key back and
spend the enrollment token once.

Joining again (``--force``: a new hub certificate, a lost key) asks for the
host id the agent had on that hub; the hub replaces that host's key and keeps
its plugins, their settings and history.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from unity_agent import __version__
from unity_agent.errors import CommandError
from unity_agent.identity import (
    IDENTITY_FILE,
    AgentIdentity,
    IdentityError,
    load_identity,
    pinned_context,
    save_identity,
)
from unity_agent.tls import hub_url, normalize_fingerprint, probe_hub
from unity_catalogue.platform import host_platform
from unity_sdk import (
    HOST_ID_PATTERN,
    HubAuthError,
    HubClient,
    HubError,
    HubRequestError,
    HubUnavailableError,
    new_key_secret,
)

__all__ = ["JoinRequestOptions", "join"]

# A join is one request a person waits for: a few quick retries, not the
# patient backoff of a running agent.
_RETRIES = 3
_TIMEOUT = 15.0


@dataclass(frozen=True)
class JoinRequestOptions:
    url: str
    token: str
    data_dir: Path
    hostname: str | None = None
    host_id: str | None = None
    fingerprint: str | None = None
    force: bool = False
    pin: bool = True


def _writable(directory: Path) -> bool:
    """Whether ``directory`` can be made and written, asked without writing:
    the nearest part of it that exists decides."""
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


def _check_locally(options: JoinRequestOptions) -> tuple[str, str | None]:
    """Everything that needs no network: the URL and the expected fingerprint."""
    url = hub_url(options.url)
    expected = None
    if options.fingerprint is not None:
        if not url.startswith("https://"):
            raise CommandError("--fingerprint needs an https:// hub URL")
        expected = normalize_fingerprint(options.fingerprint)
        if expected is None:
            raise CommandError(
                f"--fingerprint must be a SHA-256 fingerprint (sha256:<64 hex digits>), "
                f"got {options.fingerprint!r}"
            )
    if options.host_id is not None and not re.fullmatch(HOST_ID_PATTERN, options.host_id):
        raise CommandError(
            f"--host-id {options.host_id!r} is not a host id: lower-case letters, digits "
            "and inner hyphens, at most 24 characters"
        )
    if options.hostname is not None and not options.hostname.strip():
        raise CommandError("--hostname must not be empty")
    identity_file = options.data_dir / IDENTITY_FILE
    if identity_file.exists() and not options.force:
        raise CommandError(
            f"this host already joined a hub ({identity_file}); "
            "to join again (a new hub, a new certificate) add --force"
        )
    if not _writable(options.data_dir):
        raise CommandError(
            f"cannot write the data directory {options.data_dir} "
            "(run as root, or choose another with --data-dir)"
        )
    return url, expected


def _previous_host_id(options: JoinRequestOptions, url: str) -> str | None:
    """With ``--force`` and no ``--host-id``: the host id this agent had on the same
    hub, so that joining again replaces its key there instead of adding a host."""
    if options.host_id is not None or not options.force:
        return options.host_id
    try:
        previous = load_identity(options.data_dir)
    except IdentityError:
        return None
    return previous.host_id if previous.hub_url == url else None


def _refusal(url: str, exc: HubError, host_id: str | None) -> CommandError:
    if isinstance(exc, HubAuthError):
        return CommandError(
            f"the hub refused the enrollment token (wrong, expired or used up): {exc}; "
            "make a new one on the hub (unity token create --enroll)"
        )
    if isinstance(exc, HubUnavailableError):
        message = str(exc)
        _, untrusted, reason = message.partition("certificate verify failed: ")
        if untrusted:
            return CommandError(
                f"the hub's certificate is not trusted by this system "
                f"({reason.split(' (_ssl')[0]}); without --no-pin the agent pins it instead"
            )
        return CommandError(f"the hub at {url} did not answer the join: {message}")
    if isinstance(exc, HubRequestError) and exc.status == 409:
        taken = f"host id {host_id!r}" if host_id else "this host's id"
        return CommandError(
            f"{taken} cannot be joined on the hub ({exc}); choose another with --host-id"
        )
    return CommandError(f"the hub refused the join: {exc}")


async def join(options: JoinRequestOptions, out: TextIO | None = None) -> AgentIdentity:
    """Join the hub and save the identity; raises :class:`CommandError` with
    nothing written when anything goes wrong. Progress goes to ``out`` (stdout)."""
    out = out or sys.stdout
    url, expected = _check_locally(options)
    certificate = probe_hub(url)
    if certificate is not None:
        print(f"The hub's certificate: {certificate.fingerprint}", file=out)
        if expected is not None and certificate.fingerprint != expected:
            raise CommandError(
                f"the hub's certificate does not match --fingerprint: expected {expected}, "
                f"the hub showed {certificate.fingerprint}; nothing was sent to it"
            )
        if expected is None and options.pin:
            print(
                "  Compare it with the hub's (or pass it as --fingerprint): from now on the "
                "agent trusts this certificate and no other.",
                file=out,
            )
    else:
        print(
            "warning: http:// sends the agent's key unencrypted; use https:// outside a "
            "trusted network",
            file=sys.stderr,
        )
    pinned = certificate is not None and options.pin
    verify = pinned_context(certificate.pem) if pinned and certificate else True
    host = host_platform(options.hostname, agent_version=__version__)
    key_secret = new_key_secret()
    host_id = _previous_host_id(options, url)
    try:
        async with HubClient(url, max_retries=_RETRIES, timeout=_TIMEOUT, verify=verify) as hub:
            answer = await hub.join_agent(
                host,
                enrollment_token=options.token,
                host_id=host_id,
                key_secret=key_secret,
            )
    except HubError as exc:
        raise _refusal(url, exc, host_id) from None
    identity = AgentIdentity(
        hub_url=url,
        host_id=answer.host_id,
        key_id=answer.key_id,
        api_key=answer.api_key,
        pinned_certificate=certificate.pem if pinned and certificate else None,
        fingerprint=certificate.fingerprint if pinned and certificate else None,
        hostname=options.hostname,
    )
    path = save_identity(options.data_dir, identity)
    print(f"Joined {url} as host {answer.host_id!r} (key {answer.key_id}).", file=out)
    print(f"The agent's identity is in {path} (readable by its owner only).", file=out)
    return identity
