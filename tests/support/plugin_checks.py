"""Checks every built-in plugin's tests share: collect once, and check the document."""

from __future__ import annotations

from typing import Any

from unity_sdk import PluginBase, check_document, undeclared_numbers

__all__ = ["collect_checked"]


async def collect_checked(plugin: PluginBase) -> dict[str, Any]:
    """Collect once; the document must match the declarations and declare every number."""
    metadata = plugin.get_metadata()
    document = await plugin.collect_data()
    assert check_document(metadata, document) == []
    assert undeclared_numbers(metadata, document) == []
    return document
