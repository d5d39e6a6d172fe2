"""Where an external plugin keeps its API key between runs.

The hub shows a plugin's key once, at registration; the run loop saves it in
``<state dir>/<plugin id>.json`` (mode 0600, written atomically) and reuses
it on every later start. The state dir is ``$UNITY_PLUGIN_STATE_DIR``, else
``$XDG_STATE_HOME/unity-plugins``, else ``~/.local/state/unity-plugins``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ValidationError

from unity_sdk.errors import UnityError

__all__ = ["KeyStore", "SavedKey", "default_state_dir"]


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


class KeyStore:
    """The key file of one plugin."""

    def __init__(self, plugin_id: str, state_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(state_dir or default_state_dir()) / f"{plugin_id}.json"

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
        """Write the key atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            # mkstemp creates the file 0600, so the key is never readable by others.
            with os.fdopen(fd, "w") as file:
                json.dump(key.model_dump(), file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
