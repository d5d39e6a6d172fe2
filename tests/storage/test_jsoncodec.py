"""JSON columns through orjson: the same values stored and read back as with json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import pytest
from sqlalchemy import select, text

from unity.storage import jsoncodec
from unity.storage.db import Database
from unity.storage.models import Plugin, PluginMetric

DOCUMENTS: list[Any] = [
    {"cpu": {"percent": 12.5, "cores": [1.0, 0.25, 1e-7, 1e16]}, "ok": True, "none": None},
    {"name": "Température ☃ 温度 🌡", "quote": 'say "hi"\n\t\\', "control": "a\u0001b"},
    {"max": 2**63 - 1, "min": -(2**63), "unsigned": 2**64 - 1, "past": 2**64, "neg": -(2**63) - 1},
    {"deep": {"a": [{"b": [{"c": [1, [2, [3, {"d": "e"}]]]}]}]}, "empty": {}, "list": []},
    # PostgreSQL's jsonb reads these back as other numbers (-0.0 as 0, the
    # largest double as an integer), whatever writes them: checked without it.
    {"negative zero": -0.0, "tiny": 5e-324, "big": 1.7976931348623157e308},
    [1, "two", 3.0, None, False],
    "a string",
    42,
    {"nul": "a\u0000b"},  # PostgreSQL refuses it in jsonb; the codec keeps it
]


@pytest.mark.parametrize("value", DOCUMENTS)
def test_a_value_reads_back_equal_and_as_json_would_read_it(value: Any) -> None:
    text_ = jsoncodec.dumps(value)
    assert json.loads(text_) == value
    assert jsoncodec.loads(text_) == value
    assert jsoncodec.loads(text_.encode()) == value
    assert jsoncodec.loads(json.dumps(value)) == value
    # Exact types too: an integer stays an integer, a float a float.
    assert repr(jsoncodec.loads(text_)) == repr(value)


def test_what_orjson_writes_differently_is_written_by_json() -> None:
    class Level(IntEnum):
        HIGH = 3

    @dataclass
    class Point:
        x: int

    lone = {"text": "\ud800"}
    assert jsoncodec.dumps(lone) == json.dumps(lone)
    assert jsoncodec.dumps({1: "a"}) == json.dumps({1: "a"})
    assert json.loads(jsoncodec.dumps({"level": Level.HIGH})) == {"level": 3}
    for refused in (datetime(2026, 1, 1, tzinfo=UTC), Point(1)):
        with pytest.raises(TypeError):
            jsoncodec.dumps({"value": refused})


def test_text_only_json_reads_is_read_by_json() -> None:
    assert jsoncodec.loads('{"v": NaN}')["v"] != jsoncodec.loads('{"v": NaN}')["v"]
    assert jsoncodec.loads("[123456789012345678901234567890]") == [123456789012345678901234567890]
    assert jsoncodec.loads('{"a": 1, "a": 2}') == {"a": 2}
    with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
        jsoncodec.loads("{not json")


async def test_documents_round_trip_through_the_database(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade()
        async with db.session() as session:
            session.add(
                Plugin(
                    id="codec",
                    name="Codec",
                    version="1",
                    category="other",
                    plugin_metadata={"id": "codec", "note": DOCUMENTS[1]},
                    config={"big": 2**63 - 1},
                )
            )
            await session.flush()
            for document in DOCUMENTS[:4]:
                session.add(
                    PluginMetric(
                        plugin_id="codec", host="h", timestamp=datetime.now(UTC), data=document
                    )
                )
        async with db.session() as session:
            stored = list(
                await session.scalars(select(PluginMetric.data).order_by(PluginMetric.id))
            )
            plugin = await session.get(Plugin, "codec")
            # The database itself reads the text as JSON with the same values.
            cast = "CAST(data AS TEXT)" if db.is_sqlite else "data::text"
            raw = list(
                await session.scalars(text(f"SELECT {cast} FROM plugin_metrics ORDER BY id"))
            )
            path = (
                "json_extract(data, '$.cpu.percent')"
                if db.is_sqlite
                else "(data #>> '{cpu,percent}')::float"
            )
            percent = await session.scalar(text(f"SELECT {path} FROM plugin_metrics LIMIT 1"))
        assert stored == DOCUMENTS[:4]
        assert [json.loads(r) for r in raw] == DOCUMENTS[:4]
        assert percent == 12.5
        assert plugin is not None
        assert plugin.config == {"big": 2**63 - 1}
        assert plugin.plugin_metadata["note"] == DOCUMENTS[1]
    finally:
        await db.dispose()
