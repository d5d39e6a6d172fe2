"""The hub's loader accepts the plugins the docs show: the seed example and README's first one."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Any

from unity_sdk import HealthState, PluginBase, check_plugin_class

# The example from the original design summary, with only its import line changed.
SEED_EXAMPLE = """
from unity_sdk import PluginBase, PluginMetadata, PluginCategory

class MyPlugin(PluginBase):
    def get_metadata(self):
        return PluginMetadata(
            id="my-plugin",
            name="My Plugin",
            version="1.0.0",
            description="My awesome plugin",
            author="Me",
            category=PluginCategory.SYSTEM
        )

    async def collect_data(self):
        return {"metric": "value"}
"""


async def test_seed_example_runs_with_only_its_import_changed() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(SEED_EXAMPLE, "seed_example.py", "exec"), namespace)
    cls = namespace["MyPlugin"]
    metadata = check_plugin_class(cls)
    assert metadata.id == "my-plugin"
    assert metadata.category.value == "system"
    plugin = cls()
    assert await plugin.collect_data() == {"metric": "value"}
    assert (await plugin.health_check()).status is HealthState.HEALTHY


def test_readme_first_plugin_is_valid() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(block), "README.md", "exec"), namespace)
    plugins = [
        v
        for v in namespace.values()
        if inspect.isclass(v) and issubclass(v, PluginBase) and v is not PluginBase
    ]
    assert len(plugins) == 1
    assert check_plugin_class(plugins[0]).metrics
