"""``GET /api/plugins/v2/{id}/metrics``: stored documents, and bucketed series of one field."""

from __future__ import annotations

import base64
import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import API, error_locs, error_of, insert_documents

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
Row = tuple[str, datetime, dict[str, Any]]


def iso(moment: datetime) -> str:
    return moment.isoformat()


def make_rows() -> list[Row]:
    rows: list[Row] = []
    for i in range(30):
        rows.append(("alpha", BASE + timedelta(seconds=17 * i), {"value": 1.5 * i, "runs": i}))
    for i in range(12):
        rows.append(("beta", BASE + timedelta(seconds=23 * i), {"value": 100.0 + i, "runs": i}))
    # Several documents at one instant, so paging must break ties by id.
    tie = BASE + timedelta(seconds=100)
    rows += [("alpha", tie, {"value": 7.25}), ("beta", tie, {"value": -3.0})]
    rows += [("gamma", tie, {"value": float(k)}) for k in range(5)]
    # Bucket edges: late in a minute, then the minute itself.
    rows.append(("alpha", BASE + timedelta(seconds=179, microseconds=990_000), {"value": 1000.0}))
    rows.append(("alpha", BASE + timedelta(seconds=180), {"value": 2000.0}))
    # A document without the field counts in no bucket.
    rows.append(("alpha", BASE + timedelta(seconds=5), {"runs": 99}))
    return rows


ROWS = make_rows()


@pytest.fixture
async def stored(app: FastAPI) -> list[Row]:
    await insert_documents(app, "counter", ROWS)
    await insert_documents(app, "failing", [("alpha", BASE, {"value": 1.0})])
    return ROWS


async def page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/counter/metrics", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["plugin_id"] == "counter"
    return body


def key(item: dict[str, Any]) -> tuple[datetime, int]:
    return datetime.fromisoformat(item["timestamp"]), item["id"]


def as_row(item: dict[str, Any]) -> Row:
    return item["host"], datetime.fromisoformat(item["timestamp"]), item["data"]


def sort_rows(rows: list[Row]) -> list[tuple[str, datetime, str]]:
    return sorted((h, t, json.dumps(d, sort_keys=True)) for h, t, d in rows)


async def walk(client: httpx.AsyncClient, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        body = await page(client, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit
    pytest.fail("pagination did not end")


# -- listing --------------------------------------------------------------------------


async def test_lists_every_document_newest_first(
    client: httpx.AsyncClient, stored: list[Row]
) -> None:
    body = await page(client, limit=1000)
    items = body["items"]
    assert body["next_cursor"] is None
    assert sort_rows([as_row(i) for i in items]) == sort_rows(stored)
    keys = [key(i) for i in items]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)


async def test_default_limit_is_100(app: FastAPI, client: httpx.AsyncClient) -> None:
    rows = [("h", BASE + timedelta(seconds=i), {"value": float(i)}) for i in range(105)]
    await insert_documents(app, "counter", rows)
    body = await page(client)
    assert len(body["items"]) == 100
    assert body["items"][0]["data"] == {"value": 104.0}
    assert body["next_cursor"] is not None


async def test_time_range_includes_start_and_excludes_end(
    client: httpx.AsyncClient, stored: list[Row]
) -> None:
    start, end = BASE + timedelta(seconds=34), BASE + timedelta(seconds=100)
    items = (await page(client, start=iso(start), end=iso(end), limit=1000))["items"]
    expected = [r for r in stored if start <= r[1] < end]
    assert sort_rows([as_row(i) for i in items]) == sort_rows(expected)
    stamps = {as_row(i)[1] for i in items}
    assert start in stamps
    assert end not in stamps


async def test_only_start_or_only_end(client: httpx.AsyncClient, stored: list[Row]) -> None:
    cut = BASE + timedelta(seconds=200)
    after = (await page(client, start=iso(cut), limit=1000))["items"]
    before = (await page(client, end=iso(cut), limit=1000))["items"]
    assert len(after) == len([r for r in stored if r[1] >= cut])
    assert len(before) == len([r for r in stored if r[1] < cut])
    assert len(after) + len(before) == len(stored)


async def test_a_naive_time_is_read_as_utc(client: httpx.AsyncClient, stored: list[Row]) -> None:
    cut = BASE + timedelta(seconds=200)
    naive = (await page(client, start=cut.replace(tzinfo=None).isoformat(), limit=1000))["items"]
    shifted = cut.astimezone(ZoneInfo("Europe/Berlin")).isoformat()
    zoned = (await page(client, start=shifted, limit=1000))["items"]
    assert len(naive) == len(zoned) == len([r for r in stored if r[1] >= cut])


async def test_host_filter(client: httpx.AsyncClient, stored: list[Row]) -> None:
    for host in ("alpha", "beta", "gamma"):
        items = (await page(client, host=host, limit=1000))["items"]
        assert sort_rows([as_row(i) for i in items]) == sort_rows(
            [r for r in stored if r[0] == host]
        )
    assert (await page(client, host="delta"))["items"] == []


async def test_other_plugins_documents_are_not_listed(
    client: httpx.AsyncClient, stored: list[Row]
) -> None:
    items = (await page(client, limit=1000))["items"]
    assert len(items) == len(stored)
    failing = (await client.get(f"{API}/failing/metrics")).json()
    assert [i["data"] for i in failing["items"]] == [{"value": 1.0}]


@pytest.mark.parametrize("limit", [1, 3, 7, 50])
async def test_cursor_walks_every_document_once(
    client: httpx.AsyncClient, stored: list[Row], limit: int
) -> None:
    everything = (await page(client, limit=1000))["items"]
    walked = await walk(client, limit)
    assert [i["id"] for i in walked] == [i["id"] for i in everything]
    assert len({i["id"] for i in walked}) == len(stored)


async def test_cursor_walks_within_filters(client: httpx.AsyncClient, stored: list[Row]) -> None:
    start, end = BASE + timedelta(seconds=50), BASE + timedelta(seconds=300)
    walked = await walk(client, 4, host="alpha", start=iso(start), end=iso(end))
    expected = [r for r in stored if r[0] == "alpha" and start <= r[1] < end]
    assert sort_rows([as_row(i) for i in walked]) == sort_rows(expected)
    assert len({i["id"] for i in walked}) == len(expected)


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b'["yesterday", 5]').decode(),
        base64.urlsafe_b64encode(b'["2024-01-01T00:00:00+00:00"]').decode(),
        base64.urlsafe_b64encode(b'["2024-01-01T00:00:00+00:00", "x"]').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    ],
)
async def test_a_bad_cursor_is_400(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get(f"{API}/counter/metrics", params={"cursor": cursor})
    assert error_of(response, 400)["code"] == "bad_request"


def forged_cursor(stamp: str, row_id: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([stamp, row_id]).encode()).decode().rstrip("=")


async def test_a_cursor_with_a_naive_time_is_400(lenient: httpx.AsyncClient) -> None:
    cursor = forged_cursor("2024-01-01T00:00:00", 5)
    for route in ("metrics", "executions"):
        response = await lenient.get(f"{API}/counter/{route}", params={"cursor": cursor})
        error_of(response, 400)


async def test_a_cursor_with_an_out_of_range_id_is_400(lenient: httpx.AsyncClient) -> None:
    for row_id in (10**30, 1e400):
        cursor = forged_cursor("2024-01-01T00:00:00+00:00", row_id)
        response = await lenient.get(f"{API}/counter/metrics", params={"cursor": cursor})
        error_of(response, 400)


# -- parameter errors -----------------------------------------------------------------


async def test_start_must_be_before_end(client: httpx.AsyncClient) -> None:
    moment = iso(BASE)
    later = iso(BASE + timedelta(seconds=1))
    for params in (
        {"start": moment, "end": moment},
        {"start": later, "end": moment},
        {"start": moment, "end": moment, "field": "value"},
        {"start": later, "end": moment, "field": "value", "step": 60},
    ):
        error = error_of(await client.get(f"{API}/counter/metrics", params=params), 422)
        assert "start" in error["message"], params


async def test_limit_is_capped(app: FastAPI, client: httpx.AsyncClient) -> None:
    cap = app.state.settings.max_page_size
    assert (await client.get(f"{API}/counter/metrics", params={"limit": cap})).status_code == 200
    error_of(await client.get(f"{API}/counter/metrics", params={"limit": cap + 1}), 422)
    for bad in (0, -1, "lots", 1.5):
        locs = error_locs(await client.get(f"{API}/counter/metrics", params={"limit": bad}))
        assert locs == {("query", "limit")}


async def test_bad_times_are_422(client: httpx.AsyncClient) -> None:
    for name in ("start", "end"):
        for bad in ("yesterday", "2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z"):
            response = await client.get(f"{API}/counter/metrics", params={name: bad})
            assert error_locs(response) == {("query", name)}, bad


async def test_times_at_the_edge_of_the_calendar_are_not_a_500(
    lenient: httpx.AsyncClient,
) -> None:
    for params in (
        {"start": "0001-01-01T00:00:00+01:00"},
        {"end": "9999-12-31T23:59:59-01:00"},
        {"field": "value", "end": "0001-01-01T00:00:00Z"},
    ):
        response = await lenient.get(f"{API}/counter/metrics", params=params)
        assert response.status_code in {200, 422}, (params, response.status_code)


async def test_unknown_plugin_is_404(client: httpx.AsyncClient) -> None:
    error_of(await client.get(f"{API}/nope/metrics"), 404)
    error_of(await client.get(f"{API}/nope/metrics", params={"field": "value"}), 404)


# -- series ---------------------------------------------------------------------------


def expected_series(
    rows: list[Row], field: str, start: datetime, end: datetime, step: int, host: str | None
) -> list[dict[str, Any]]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for row_host, stamp, data in rows:
        if start <= stamp < end and host in (None, row_host) and field in data:
            buckets[math.floor(stamp.timestamp() / step) * step].append(float(data[field]))
    first = math.floor(start.timestamp() / step) * step
    every = range(first, math.ceil(end.timestamp()), step)
    return [
        {
            "t": datetime.fromtimestamp(bucket, UTC),
            "avg": sum(buckets[bucket]) / len(buckets[bucket]) if buckets[bucket] else None,
            "min": min(buckets[bucket], default=None),
            "max": max(buckets[bucket], default=None),
            "count": len(buckets[bucket]),
        }
        for bucket in every
    ]


async def series(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/counter/metrics", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    for point in body["points"]:
        point["t"] = datetime.fromisoformat(point["t"])
    return body


@pytest.mark.parametrize("host", [None, "alpha", "beta"])
@pytest.mark.parametrize("step", [60, 45])
async def test_series_buckets_avg_min_max_count(
    client: httpx.AsyncClient, stored: list[Row], step: int, host: str | None
) -> None:
    start, end = BASE, BASE + timedelta(minutes=10)
    params: dict[str, Any] = {"field": "value", "step": step, "start": iso(start), "end": iso(end)}
    if host:
        params["host"] = host
    body = await series(client, **params)
    assert body["field"] == "value"
    assert body["unit"] == "%"
    assert body["kind"] == "gauge"
    assert body["step"] == step
    assert body["host"] == host
    assert datetime.fromisoformat(body["start"]) == start
    assert datetime.fromisoformat(body["end"]) == end
    expected = expected_series(stored, "value", start, end, step, host)
    assert len(body["points"]) == len(expected)
    assert any(p["count"] == 0 for p in expected), "the range has buckets without samples"
    for got, want in zip(body["points"], expected, strict=True):
        assert got["t"] == want["t"]
        assert got["count"] == want["count"]
        assert got["avg"] == pytest.approx(want["avg"])
        assert got["min"] == pytest.approx(want["min"])
        assert got["max"] == pytest.approx(want["max"])


async def test_series_respects_the_range(client: httpx.AsyncClient, stored: list[Row]) -> None:
    start, end = BASE + timedelta(seconds=120), BASE + timedelta(seconds=180)
    body = await series(client, field="value", step=60, start=iso(start), end=iso(end))
    # 12:02:59.99 is in, 12:03:00 is the (excluded) end.
    [point] = body["points"]
    want = expected_series(ROWS, "value", start, end, 60, None)[0]
    assert point["max"] == 1000.0
    assert point["count"] == want["count"]


async def test_a_counter_field_makes_a_series_too(
    client: httpx.AsyncClient, stored: list[Row]
) -> None:
    start, end = BASE, BASE + timedelta(minutes=10)
    body = await series(client, field="runs", step=300, start=iso(start), end=iso(end))
    assert body["kind"] == "counter"
    expected = expected_series(stored, "runs", start, end, 300, None)
    assert [(p["count"], p["max"]) for p in body["points"]] == [
        (e["count"], e["max"]) for e in expected
    ]


async def test_series_defaults_to_the_last_day(app: FastAPI, client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    await insert_documents(
        app,
        "counter",
        [
            ("h", now - timedelta(hours=1), {"value": 5.0}),
            ("h", now - timedelta(hours=2), {"value": 7.0}),
            ("h", now - timedelta(days=2), {"value": 1000.0}),
        ],
    )
    body = await series(client, field="value")
    # About 300 points, in whole minutes so the rollup tiers can answer: 288 s -> 5 min.
    assert body["step"] == 300
    span = datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"])
    assert span == timedelta(hours=24)
    assert sum(p["count"] for p in body["points"]) == 2
    assert max(p["max"] for p in body["points"] if p["count"]) == 7.0
    assert len(body["points"]) in (288, 289), "every bucket of the day, with or without samples"


async def test_series_of_fields_that_are_not_one_numeric_series_is_422(
    client: httpx.AsyncClient,
) -> None:
    for field in ("nope", "disks.sda.used", "label", "*", "value.extra", ""):
        response = await client.get(f"{API}/counter/metrics", params={"field": field})
        error = error_of(response, 422)
        assert error["code"] == "invalid", field


async def test_series_with_too_many_points_is_422(client: httpx.AsyncClient) -> None:
    params = {"field": "value", "step": 1, "start": iso(BASE), "end": iso(BASE + timedelta(days=1))}
    error = error_of(await client.get(f"{API}/counter/metrics", params=params), 422)
    assert "points" in error["message"]
    far = {"field": "value", "start": "1970-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
    # 130 years at the largest step is about 1,500 points: allowed, and empty.
    wide = await client.get(f"{API}/counter/metrics", params={**far, "step": 86400 * 31})
    assert wide.status_code == 200
    points = wide.json()["points"]
    assert 1500 <= len(points) <= 1600
    assert {(p["count"], p["avg"]) for p in points} == {(0, None)}
    params["step"] = 10
    assert (await client.get(f"{API}/counter/metrics", params=params)).status_code == 200


async def test_bad_steps_are_422(client: httpx.AsyncClient) -> None:
    for step in (0, -60, 86400 * 31 + 1, "minute", 1.5):
        response = await client.get(
            f"{API}/counter/metrics", params={"field": "value", "step": step}
        )
        assert error_locs(response) == {("query", "step")}, step


async def test_a_sample_in_the_last_millisecond_of_a_bucket_stays_in_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    late = BASE + timedelta(seconds=59, microseconds=999_900)
    await insert_documents(app, "counter", [("h", late, {"value": 1.0})])
    end = BASE + timedelta(seconds=60)
    body = await series(client, field="value", step=60, start=iso(BASE), end=iso(end))
    assert [p["t"] for p in body["points"]] == [BASE]


async def test_series_ignores_values_that_are_not_numbers(
    app: FastAPI, lenient: httpx.AsyncClient
) -> None:
    await insert_documents(
        app,
        "counter",
        [
            ("h", BASE, {"value": 10.0}),
            ("h", BASE + timedelta(seconds=1), {"value": "n/a"}),
            ("h", BASE + timedelta(seconds=2), {"value": 20.0}),
        ],
    )
    params = {"field": "value", "step": 60, "start": iso(BASE), "end": iso(BASE + timedelta(1))}
    response = await lenient.get(f"{API}/counter/metrics", params=params)
    assert response.status_code == 200, response.text
    [point] = [p for p in response.json()["points"] if p["count"]]
    assert (point["avg"], point["min"], point["max"], point["count"]) == (15.0, 10.0, 20.0, 2)


# -- gaps, per-item series, states ----------------------------------------------------


async def test_buckets_without_samples_come_back_as_nulls(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Samples at minutes 0, 1, then nothing until minute 5: minutes 2-4 are a gap.
    await insert_documents(
        app,
        "counter",
        [("h", BASE + timedelta(minutes=m), {"value": float(m)}) for m in (0, 1, 5)],
    )
    end = BASE + timedelta(minutes=6)
    body = await series(client, field="value", step=60, start=iso(BASE), end=iso(end))
    got = [(p["t"] - BASE, p["avg"], p["count"]) for p in body["points"]]
    assert got == [
        (timedelta(minutes=0), 0.0, 1),
        (timedelta(minutes=1), 1.0, 1),
        (timedelta(minutes=2), None, 0),
        (timedelta(minutes=3), None, 0),
        (timedelta(minutes=4), None, 0),
        (timedelta(minutes=5), 5.0, 1),
    ]
    assert body["display"] == "chart"


def disk_rows() -> list[Row]:
    rows: list[Row] = []
    for minute in range(4):
        used = {"sda": 100.0 + minute, "nvme0n1": 50.0 * minute}
        if minute == 2:
            del used["nvme0n1"]  # the disk missed one run: a gap in its series only
        disks = {name: {"used": value} for name, value in used.items()}
        disks["sdb"] = {"used": "n/a"}  # not a number: never an item
        rows.append(("alpha", BASE + timedelta(minutes=minute), {"disks": disks}))
    rows.append(("beta", BASE, {"disks": {"sdz": {"used": 9.0}}}))
    return rows


async def test_a_per_item_metric_answers_one_series_per_item(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await insert_documents(app, "counter", disk_rows())
    end = BASE + timedelta(minutes=4)
    params = {"field": "disks.*.used", "step": 60, "start": iso(BASE), "end": iso(end)}
    body = await series(client, **params, host="alpha")
    assert body["points"] == []
    assert body["unit"] == "bytes"
    items = {s["item"]: s["points"] for s in body["items"]}
    assert list(items) == ["nvme0n1", "sda"]
    assert [p["avg"] for p in items["sda"]] == [100.0, 101.0, 102.0, 103.0]
    assert [p["avg"] for p in items["nvme0n1"]] == [0.0, 50.0, None, 150.0]
    assert [p["count"] for p in items["nvme0n1"]] == [1, 1, 0, 1]
    assert body["items_omitted"] == 0

    every_host = await series(client, **params)
    assert [s["item"] for s in every_host["items"]] == ["nvme0n1", "sda", "sdz"]
    picked = await series(client, **params, item=["sda", "nope"])
    assert [s["item"] for s in picked["items"]] == ["sda"]


async def test_wildcards_match_list_items_and_nested_keys(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # cpu.per_cpu.* is a list in system-info; disks.*.*.bytes has two wildcards.
    await insert_documents(
        app, "counter", [("h", BASE, {"disks": {"sda": {"used": 1.0}, "sdb": {"used": 2}}})]
    )
    from unity.storage import series as series_store
    from unity.storage.buckets import numbers

    async with app.state.db.session() as session:
        found = await series_store.item_series(
            session,
            plugin_id="counter",
            path=["disks", "*", "used"],
            start=BASE,
            end=BASE + timedelta(minutes=1),
            step=60,
        )
    assert {k: [p.avg for p in v] for k, v in found.items()} == {"sda": [1.0], "sdb": [2.0]}
    document = {"cpu": [10.0, 20.0], "io": {"sda": {"read": {"n": 1}, "write": {"n": 2}}}}
    assert list(numbers(document, ["cpu", "*"], booleans=False)) == [
        ("0", 10.0),
        ("1", 20.0),
    ]
    assert list(numbers(document, ["io", "*", "*", "n"], booleans=False)) == [
        ("sda.read", 1.0),
        ("sda.write", 2.0),
    ]


async def test_picking_items_of_a_single_series_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/counter/metrics", params={"field": "value", "item": "x"})
    assert "no items" in error_of(response, 422)["message"]
