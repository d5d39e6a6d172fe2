"""``unity author new``: a working plugin package to start from.

The package has the ``unity.plugins`` entry point, the plugin class and a test
using the SDK's pytest fixtures; ``pip install -e .`` makes the hub list it.
"""

from __future__ import annotations

import re
from pathlib import Path

from unity_sdk.metadata import PLUGIN_ID_PATTERN

__all__ = ["ScaffoldError", "create_package"]


class ScaffoldError(Exception):
    """The package cannot be created (bad id, folder exists)."""


PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.1.0"
description = "{title}: a Unity plugin"
requires-python = ">=3.11"
dependencies = ["unity-sdk>=0.1.0"]

[project.optional-dependencies]
test = ["pytest>=8.2", "pytest-asyncio>=0.24"]

[project.entry-points."unity.plugins"]
{plugin_id} = "{module}:{cls}"

[tool.hatch.build.targets.wheel]
packages = ["src/{module}"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""

PLUGIN = '''\
"""{title}: a Unity plugin."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from unity_sdk import MetricField, PluginBase, PluginCategory, PluginMetadata


class {cls}Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scale: float = Field(default=1.0, gt=0, description="Multiplier applied to the load average")


class {cls}(PluginBase[{cls}Config]):
    """``self.config`` is the validated {cls}Config: the hub checks every config."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="{plugin_id}",
            name="{title}",
            version="0.1.0",
            description="Reports the load average (replace with what you collect)",
            author="",
            category=PluginCategory.CUSTOM,
            config_schema={cls}Config,
            metrics=[
                MetricField(name="load.one", unit="tasks", description="1-minute load"),
                MetricField(name="load.five", unit="tasks", description="5-minute load"),
            ],
            default_interval=30,
        )

    async def collect_data(self) -> dict[str, Any]:
        one, five, _ = os.getloadavg()
        scale = self.config.scale
        return {{"load": {{"one": one * scale, "five": five * scale}}}}
'''

TEST = '''\
"""Runs the plugin like the hub does and checks it against its declared metrics."""

from {module} import {cls}


async def test_collects_declared_metrics(unity_plugin_check):
    document = await unity_plugin_check({cls}, {{"scale": 2.0}})
    assert document["load"]["one"] >= 0
'''

README = """\
# {title}

A plugin for the Unity homelab hub. Install it into the hub's environment
(`pip install -e .` with the hub's virtual environment active, or
`/path/to/unity/.venv/bin/pip install -e .`); the hub lists it as `{plugin_id}`.

- Check it: `unity author check .`
- Run it once: `unity author run .`, or with a config:
  `echo '{{"scale": 2}}' > config.json && unity author run . --config config.json`
  (JSON or TOML; the keys are the fields of `{cls}Config`)
- Test it: `pip install -e '.[test]' && pytest`
"""


def create_package(parent: Path, plugin_id: str) -> Path:
    """Create ``parent/<plugin_id>/`` and return its path."""
    if not re.match(PLUGIN_ID_PATTERN, plugin_id):
        raise ScaffoldError(
            f"{plugin_id!r} is not a valid plugin id: use lower-case kebab-case, e.g. nas-temp"
        )
    root = parent / plugin_id
    if root.exists():
        raise ScaffoldError(f"{root} already exists")
    module = "unity_plugin_" + plugin_id.replace("-", "_")
    words = plugin_id.split("-")
    values = {
        "plugin_id": plugin_id,
        "dist": f"unity-plugin-{plugin_id}",
        "module": module,
        "cls": "".join(w.capitalize() for w in words) + "Plugin",
        "title": " ".join(w.capitalize() for w in words),
    }
    files = {
        root / "pyproject.toml": PYPROJECT,
        root / "README.md": README,
        root / "src" / module / "__init__.py": PLUGIN,
        root / "tests" / "test_plugin.py": TEST,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return root
