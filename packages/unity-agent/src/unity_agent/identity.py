"""The agent's identity: how to reach its hub and the key it joined with.

Kept in ``agent.json`` in the agent's data directory, readable by its owner
only (mode 0600, the directory 0700), written whole or not at all (a temporary
file renamed over the old one). When the hub's URL is https the certificate
the hub showed at join is pinned: the agent trusts that certificate and no
other, so a hub whose certificate changes is refused until the agent joins
again.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "IDENTITY_FILE",
    "AgentIdentity",
    "IdentityError",
    "default_data_dir",
    "load_identity",
    "pinned_context",
    "save_identity",
    "ssl_context",
]

IDENTITY_FILE = "agent.json"


class IdentityError(RuntimeError):
    """The identity file is missing, unreadable or not the agent's format."""


@dataclass(frozen=True)
class AgentIdentity:
    hub_url: str
    host_id: str
    key_id: str
    api_key: str
    # PEM of the hub's certificate, pinned at join (https only).
    pinned_certificate: str | None = None
    # "sha256:..." of the pinned certificate, for messages.
    fingerprint: str | None = None
    # The hostname given at join (--hostname), when it is not the machine's own.
    hostname: str | None = None

    def __repr__(self) -> str:
        return f"<AgentIdentity {self.host_id} at {self.hub_url}>"


def default_data_dir() -> Path:
    """``$UNITY_AGENT_DIR``; else /var/lib/unity-agent for root; else the user's
    XDG state directory (``~/.local/state/unity-agent``)."""
    configured = os.environ.get("UNITY_AGENT_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/lib/unity-agent")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "unity-agent"


def load_identity(data_dir: Path) -> AgentIdentity:
    path = data_dir / IDENTITY_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return AgentIdentity(**raw)
    except FileNotFoundError:
        raise IdentityError(
            f"{path} does not exist: join the hub first (unity-agent join URL TOKEN)"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise IdentityError(f"{path} is not a valid agent identity: {exc}") from None


def save_identity(data_dir: Path, identity: AgentIdentity) -> Path:
    """Write ``agent.json`` atomically, mode 0600, in a 0700 directory.

    A directory that already exists keeps its mode (``--data-dir`` may name a
    shared one); the file itself is never readable by anyone else."""
    if not data_dir.is_dir():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / IDENTITY_FILE
    temporary = data_dir / f".{IDENTITY_FILE}.{os.getpid()}.tmp"
    # A leftover of a crashed write may have another mode: start from a new file.
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(identity), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _sync_directory(data_dir)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return path


def _sync_directory(directory: Path) -> None:
    """Make the rename durable: a crash right after it must not bring the old file back."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ssl_context(identity: AgentIdentity) -> ssl.SSLContext | bool:
    """What ``HubClient(verify=...)`` gets: the pinned certificate as the only
    trust anchor, else the system's CAs."""
    if identity.pinned_certificate is None:
        return True
    return pinned_context(identity.pinned_certificate)


def pinned_context(certificate_pem: str) -> ssl.SSLContext:
    """A client context that trusts exactly ``certificate_pem`` (self-signed or
    not). The pin is the exact certificate, so the name in it is not checked;
    its validity dates still are."""
    context = ssl.create_default_context(cadata=certificate_pem)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context
