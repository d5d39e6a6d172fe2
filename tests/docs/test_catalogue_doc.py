"""docs/plugins/catalogue.md is generated from the built-ins' metadata and stays in sync."""

from __future__ import annotations

from pathlib import Path

from unity.authoring.catalogue import builtin_metadata, render_catalogue
from unity_sdk import prometheus_series

PAGE = Path(__file__).parents[2] / "docs" / "plugins" / "catalogue.md"


def test_catalogue_page_matches_the_metadata() -> None:
    expected = render_catalogue(builtin_metadata())
    assert PAGE.read_text() == expected, (
        "docs/plugins/catalogue.md is stale: run "
        "`python -m unity.authoring.catalogue > docs/plugins/catalogue.md`"
    )


def test_every_builtin_has_a_section_with_its_metrics() -> None:
    text = PAGE.read_text()
    for metadata in builtin_metadata():
        assert f"## {metadata.id}\n" in text
        for field in metadata.metrics:
            assert f"`{field.name}`" in text
            assert f"`{prometheus_series(metadata.id, field).describe()}`" in text
