"""The plugin docs keep up with the contract."""

from __future__ import annotations

import inspect
from pathlib import Path

from unity_sdk import PluginBase

DOCS = Path(__file__).parents[2] / "docs" / "plugins"


def test_every_contract_method_has_a_heading() -> None:
    headings = {
        line.removeprefix("## ").strip()
        for line in (DOCS / "contract.md").read_text().splitlines()
        if line.startswith("## ")
    }
    public = {
        name
        for name, member in inspect.getmembers(PluginBase, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public
    assert public <= headings, sorted(public - headings)


def test_plugin_docs_index_links_every_page() -> None:
    index = (DOCS / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        if page.name != "README.md":
            assert f"({page.name})" in index, page.name
