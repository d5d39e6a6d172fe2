"""Where an external plugin keeps its API key between runs.

The hub shows a plugin's key once, at registration; the run loop saves it in
``<state dir>/<plugin id>.json`` (mode 0600, written atomically) and reuses
it on every later start. The state dir is ``$UNITY_PLUGIN_STATE_DIR``, else
``$XDG_STATE_HOME/unity-plugins``, else ``~/.local/state/unity-plugins``.

Before registering, the plugin generates the secret of the key it proposes and
saves it in ``<plugin id>.pending.json`` (mode 0600) *before* the request
leaves: when the answer is lost, the next attempt (even after a restart)
proposes the same secret, and the hub answers with the same key instead of
spending the enrollment token again.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from unity_sdk._wire import KEY_SECRET_PATTERN, new_key_secret
from unity_sdk.errors import UnityError

__all__ = ["KeyStore", "PendingRegistration", "SavedKey", "default_state_dir"]


def default_state_dir() -> Path:
    if configured := os.environ.get("UNITY_PLUGIN_STATE_DIR"):
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "unity-plugins"


class SavedKey(BaseModel):
    """The saved answer of a registration."""

    plugin_id: str
    api_key: str
    key_id: str
    hub_url: str

    def __repr__(self) -> str:
        return f"SavedKey(plugin_id={self.plugin_id!r}, key_id={self.key_id!r})"

    __str__ = __repr__


class PendingRegistration(BaseModel):
    """The key secret proposed to a hub whose answer has not arrived yet."""

    plugin_id: str
    hub_url: str
    key_secret: str = Field(pattern=KEY_SECRET_PATTERN, repr=False)


class KeyStore:
    """The key file of one plugin, and its pending registration."""

    def __init__(self, plugin_id: str, state_dir: str | os.PathLike[str] | None = None) -> None:
        self.plugin_id = plugin_id
        self.path = Path(state_dir or default_state_dir()) / f"{plugin_id}.json"
        self.pending_path = self.path.with_name(f"{plugin_id}.pending.json")

    def proposed_secret(self, hub_url: str) -> str:
        """The key secret to propose to ``hub_url``: the one saved by an earlier
        attempt, else a new one, saved (mode 0600) before it is returned."""
        try:
            pending = PendingRegistration.model_validate_json(self.pending_path.read_bytes())
        except (FileNotFoundError, ValidationError):
            pending = None
        if pending is not None and pending.hub_url == hub_url:
            return pending.key_secret
        pending = PendingRegistration(
            plugin_id=self.plugin_id, hub_url=hub_url, key_secret=new_key_secret()
        )
        self._write(self.pending_path, pending.model_dump())
        return pending.key_secret

    def load(self) -> SavedKey | None:
        """The saved key, or None when there is none."""
        try:
            return SavedKey.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except ValidationError:
            # Not re-raised as is: pydantic's message would quote the key.
            raise UnityError(
                f"key file {self.path} is not valid; delete it to register again"
            ) from None

    def save(self, key: SavedKey) -> None:
        """Write the key atomically, readable by its owner only; the pending
        registration it answers is done."""
        self._write(self.path, key.model_dump())
        self.pending_path.unlink(missing_ok=True)

    @staticmethod
    def _write(path: Path, document: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            # mkstemp creates the file 0600, so the secret is never readable by others.
            with os.fdopen(fd, "w") as file:
                json.dump(document, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
