"""Docs that cannot rot: every setting is documented."""

from __future__ import annotations

from pathlib import Path

from unity.settings import Settings

DOCS = Path(__file__).parents[2] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `UNITY_")}
    expected = {f"UNITY_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected
