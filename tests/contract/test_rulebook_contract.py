"""One rulebook, two receivers: the real hub and the SDK's FakeHub answer alike.

Every case runs against both sides, as httpx runs one suite over its mock and
its real transports: the real app (SQLite and PostgreSQL) over ASGI, and
``FakeHub`` over ``httpx.MockTransport``. Both call the SDK's rules
(``parse_metadata``, ``validate_config``, ``accept_batch``), so a plugin the
author tooling passes is a plugin the hub takes. Each case states what the
answer must be; ``test_both_sides_give_the_same_answers`` then requires the
two answers to be identical, body for body.

Covered: metadata (reserved config keys, unusable or non-self-contained
schemas, Prometheus collisions, malformed fields), config (the hub's keys
and their bounds, the plugin's schema, secrets, credential references) and
metric batches (non-numbers in declared gauges and counters, NaN, numbers
beyond a double or 64 bits, undeclared values, timestamps out of range or
ahead of the clock, batch size), plus health reports.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from unity.storage.models import BatchReceipt, PluginMetric
from unity_sdk import MASK, MAX_BATCH_SAMPLES
from unity_sdk.metadata import MAX_METRICS
from unity_sdk.testing import FakeHub

API = "/api/plugins/v2"
SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "description": "What to watch"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 5},
        "token": {"type": "string", "writeOnly": True},
    },
    "required": ["url"],
    "additionalProperties": False,
}
METADATA: dict[str, Any] = {
    "id": "nas-temp",
    "name": "NAS temperature",
    "version": "1.0.0",
    "metrics": [
        {"name": "cpu.temp", "unit": "C"},
        {"name": "fan.turns", "unit": "count", "kind": "counter"},
        {"name": "disks.*.used", "unit": "bytes"},
        {"name": "model", "kind": "info"},
    ],
    "config_schema": SCHEMA,
}


# -- the two sides ------------------------------------------------------------------


@dataclass
class Side:
    """One receiver: how to reach it, and how to read what it stored."""

    name: str
    transport: httpx.AsyncBaseTransport
    admin_token: str
    enroll: Callable[[], Awaitable[str]]
    stored: Callable[[], Awaitable[tuple[int, int]]]  # (samples, batches) stored
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = httpx.AsyncClient(transport=self.transport, base_url="http://hub", headers=headers)
        self.clients.append(http)
        return http

    async def register(self, metadata: dict[str, Any]) -> httpx.Response:
        return await self.client(await self.enroll()).post(
            f"{API}/register", json={"metadata": metadata, "hostname": "nas"}
        )

    async def plugin(self, metadata: dict[str, Any] = METADATA) -> httpx.AsyncClient:
        """A client holding the key of ``metadata``'s plugin, registered here."""
        answer = await self.register(metadata)
        assert answer.status_code == 201, (self.name, answer.text)
        return self.client(answer.json()["api_key"])

    async def close(self) -> None:
        for http in self.clients:
            await http.aclose()


def fake_side() -> Side:
    hub = FakeHub()

    async def enroll() -> str:
        return hub.create_enrollment_token()

    async def stored() -> tuple[int, int]:
        plugins = hub.plugins.values()
        return sum(len(p.samples) for p in plugins), sum(len(p.batches) for p in plugins)

    return Side("fake-hub", hub.transport, hub.admin_token, enroll, stored)


def hub_side(app: FastAPI, admin_token: str) -> Side:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def enroll() -> str:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://hub",
            headers={"Authorization": f"Bearer {admin_token}"},
        ) as admin:
            response = await admin.post("/api/enrollment-tokens", json={})
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    async def stored() -> tuple[int, int]:
        async with app.state.db.session() as session:
            samples = await session.scalar(select(func.count()).select_from(PluginMetric))
            batches = await session.scalar(select(func.count()).select_from(BatchReceipt))
        return int(samples or 0), int(batches or 0)

    return Side("hub", transport, admin_token, enroll, stored)


@pytest.fixture(params=["hub", "fake-hub"])
async def side(
    request: pytest.FixtureRequest, app: FastAPI, admin_token: str
) -> AsyncIterator[Side]:
    chosen = hub_side(app, admin_token) if request.param == "hub" else fake_side()
    yield chosen
    await chosen.close()


# -- the cases ----------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What an answer must be: its status and, for an error, where and what."""

    status: int
    locs: list[list[Any]] | None = None  # every detail's loc, in order (None: no details)
    words: str = ""  # in the message, or in the first detail's msg


def _metadata(**changes: Any) -> dict[str, Any]:
    return {**METADATA, "id": "other", **changes}


def _unique(index: int, metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` under an id of its own (an id belongs to its first registration)."""
    return {**metadata, "id": f"meta-{index}"} if metadata["id"] == "other" else metadata


def _schema(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


META = ["metadata", "config_schema"]
METADATA_CASES: list[tuple[str, dict[str, Any], Expected]] = [
    ("accepted", _metadata(), Expected(201)),
    (
        "config-field-named-targets",
        _metadata(config_schema=_schema(targets={"type": "array"})),
        Expected(422, [META], "declares targets: those keys belong to the hub"),
    ),
    (
        "config-fields-named-interval-and-retention",
        _metadata(config_schema=_schema(interval={"type": "number"}, retention_days={})),
        Expected(422, [META], "declares interval, retention_days"),
    ),
    (
        "schema-reference-leaving-the-schema",
        _metadata(config_schema=_schema(a={"$ref": "https://schemas.invalid/a.json"})),
        Expected(422, [META], "must be self-contained"),
    ),
    (
        "schema-reference-leading-nowhere",
        _metadata(config_schema=_schema(a={"$ref": "#/$defs/missing"})),
        Expected(422, [META], "does not resolve within the schema"),
    ),
    (
        "unusable-schema",
        _metadata(config_schema=_schema(a={"type": "nope"})),
        Expected(422, [META], "is invalid"),
    ),
    (
        "schema-not-an-object",
        _metadata(config_schema={"type": "array"}),
        Expected(422, [["metadata", "config_schema"]], "must describe an object"),
    ),
    (
        "prometheus-name-collision",
        _metadata(metrics=[{"name": "latency", "unit": "s"}, {"name": "latency_ms", "unit": "ms"}]),
        Expected(422, [["metadata", "metrics"]], "map to the same Prometheus name"),
    ),
    (
        "metric-declared-twice",
        _metadata(metrics=[{"name": "a"}, {"name": "a"}]),
        Expected(422, [["metadata"]], "metrics declared twice: a"),
    ),
    (
        "too-many-metrics",
        _metadata(metrics=[{"name": f"m{i}"} for i in range(MAX_METRICS + 1)]),
        Expected(422, [["metadata", "metrics"]], "at most 1000 items"),
    ),
    ("bad-id", _metadata(id="NAS_Temp"), Expected(422, [["metadata", "id"]], "pattern")),
    (
        "bad-version",
        _metadata(version="1.0"),
        Expected(422, [["metadata", "version"]], "semantic versioning"),
    ),
    (
        "interval-out-of-bounds",
        _metadata(default_interval=86401),
        Expected(422, [["metadata", "default_interval"]], "less than or equal to 86400"),
    ),
]

CONFIG_CASES: list[tuple[str, Any, Expected]] = [
    ("accepted", {"url": "http://nas"}, Expected(200)),
    ("bounds-are-inclusive-low", {"url": "u", "interval": 1, "retention_days": 1}, Expected(200)),
    (
        "bounds-are-inclusive-high",
        {"url": "u", "interval": 86400, "retention_days": 3650},
        Expected(200),
    ),
    *[
        (
            f"interval-{value!r}",
            {"url": "u", "interval": value},
            Expected(422, [["interval"]], "must be a number of seconds from 1 to 86400"),
        )
        for value in (0, 0.5, 86401, "60", True, [60])
    ],
    *[
        (
            f"retention-{value!r}",
            {"url": "u", "retention_days": value},
            Expected(422, [["retention_days"]], "must be a whole number of days from 1 to 3650"),
        )
        for value in (0, 3651, 1.5, "7", False)
    ],
    (
        "targets-on-a-plugin-that-does-not-collect-remotely",
        {"url": "u", "targets": ["local"]},
        Expected(422, [["targets"]], "does not collect remotely"),
    ),
    ("missing-required-field", {}, Expected(422, [[]], "'url' is a required property")),
    (
        "schema-bound",
        {"url": "u", "timeout": 0},
        Expected(422, [["timeout"]], "less than or equal to the minimum of 0"),
    ),
    (
        "unknown-field",
        {"url": "u", "colour": "red"},
        Expected(422, [[]], "'colour' was unexpected"),
    ),
    (
        "secret-never-quoted",
        {"url": "u", "token": 12345678},
        Expected(422, [["token"]], "(the value is secret)"),
    ),
    (
        "credential-in-a-plain-field",
        {"url": {"$credential": "nas"}},
        Expected(422, [["url"], ["url"]], "a credential can only stand in a secret field"),
    ),
    (
        "malformed-credential-reference",
        {"url": "u", "token": {"$credential": ""}},
        Expected(
            422, [["token"], ["token"]], 'a credential reference is {"$credential": "<name>"}'
        ),
    ),
    (
        "every-problem-at-once",
        {"interval": 0, "retention_days": 0, "timeout": -1},
        Expected(422, [["interval"], ["retention_days"], [], ["timeout"]], "seconds"),
    ),
    ("not-an-object", [1, 2], Expected(422, None, "the config must be a JSON object")),
]

GOOD = '{"host": "nas", "timestamp": "2026-11-01T00:00:00Z", "data": {"cpu": {"temp": 40}}}'
FUTURE = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
SOON = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()


def _sample(data: str, timestamp: str = "2026-11-01T00:00:00Z") -> str:
    return f'{{"host": "nas", "timestamp": "{timestamp}", "data": {data}}}'


def _batch(third: str, batch_id: str = "contract-1") -> str:
    """A batch whose sample 2 is ``third`` (raw JSON, so 1e309 stays 1e309)."""
    return f'{{"batch_id": "{batch_id}", "samples": [{GOOD}, {GOOD}, {third}]}}'


def _bad_sample(field: str, words: str) -> Expected:
    return Expected(422, [["samples", 2, field]], words)


BATCH_CASES: list[tuple[str, str, Expected]] = [
    ("accepted", _batch(GOOD), Expected(200)),
    (
        "undeclared-values-and-missing-metrics",
        _batch(_sample('{"note": "x", "extra": {"n": 3}, "big": ' + str(2**63 - 1) + "}")),
        Expected(200),
    ),
    ("info-holds-text", _batch(_sample('{"model": "DS920+"}')), Expected(200)),
    ("within-the-allowed-skew", _batch(_sample('{"cpu": {"temp": 41.5}}', SOON)), Expected(200)),
    (
        "text-in-a-gauge",
        _batch(_sample('{"cpu": {"temp": "hot"}}')),
        _bad_sample("data", "metric 'cpu.temp' is declared gauge but the value is 'hot'"),
    ),
    (
        "boolean-in-a-gauge",
        _batch(_sample('{"cpu": {"temp": true}}')),
        _bad_sample("data", "metric 'cpu.temp' is declared gauge but the value is True"),
    ),
    (
        "null-in-a-counter",
        _batch(_sample('{"fan": {"turns": null}}')),
        _bad_sample("data", "metric 'fan.turns' is declared counter but the value is None"),
    ),
    (
        "object-in-a-wildcard-gauge",
        _batch(_sample('{"disks": {"sda": {"used": {"b": 1}}}}')),
        _bad_sample("data", "metric 'disks.*.used[sda]' is declared gauge"),
    ),
    ("nan-in-a-gauge", _batch(_sample('{"cpu": {"temp": NaN}}')), _bad_sample("data", "nan")),
    ("nan-undeclared", _batch(_sample('{"note": NaN}')), _bad_sample("data", "data.note")),
    (
        "overflowing-float",
        _batch(_sample('{"cpu": {"temp": 1e309}}')),
        _bad_sample("data", "data.cpu.temp"),
    ),
    (
        "negative-overflow",
        _batch(_sample('{"cpu": {"temp": -1e309}}')),
        _bad_sample("data", "data.cpu.temp"),
    ),
    (
        "400-digit-integer",
        _batch(_sample('{"cpu": {"temp": ' + "9" * 400 + "}}")),
        _bad_sample("data", "beyond 64 bits"),
    ),
    (
        "beyond-bigint-in-a-list",
        _batch(_sample('{"disks": [1, ' + str(2**63) + "]}")),
        _bad_sample("data", "data.disks.1"),
    ),
    (
        "year-0",
        _batch(_sample("{}", "0001-01-01T00:30:00+01:00")),
        _bad_sample("timestamp", "outside years"),
    ),
    (
        "year-10000",
        _batch(_sample("{}", "9999-12-31T23:30:00-01:00")),
        _bad_sample("timestamp", "outside years"),
    ),
    ("future", _batch(_sample("{}", FUTURE)), _bad_sample("timestamp", "ahead")),
    (
        "naive-timestamp",
        _batch(_sample("{}", "2026-11-01T00:00:00")),
        _bad_sample("timestamp", "timezone"),
    ),
    (
        "no-samples",
        '{"batch_id": "contract-1", "samples": []}',
        Expected(422, [["samples"]], "at least 1 item"),
    ),
    ("bad-batch-id", _batch(GOOD, batch_id="no spaces"), Expected(422, [["batch_id"]], "pattern")),
    (
        "too-many-samples",
        '{"batch_id": "contract-1", "samples": ['
        + ",".join([GOOD] * (MAX_BATCH_SAMPLES + 1))
        + "]}",
        Expected(413, None, f"a batch holds at most {MAX_BATCH_SAMPLES} samples"),
    ),
]

HEALTH_CASES: list[tuple[str, str, Expected]] = [
    ("accepted", '{"status": "degraded", "message": "fan slow"}', Expected(200)),
    ("nan", '{"status": "healthy", "details": {"fan": NaN}}', Expected(422, [["details"]], "fan")),
    (
        "infinity",
        '{"status": "healthy", "details": {"fan": Infinity}}',
        Expected(422, [["details"]], "details.fan"),
    ),
    (
        "overflow",
        '{"status": "healthy", "details": {"fans": [1e309]}}',
        Expected(422, [["details"]], "details.fans.0"),
    ),
    (
        "huge-int",
        '{"status": "healthy", "details": {"n": ' + "1" * 400 + "}}",
        Expected(422, [["details"]], "details.n"),
    ),
    ("unknown-status", '{"status": "fine"}', Expected(422, [["status"]], "healthy")),
]


def _check(side: Side, case: str, response: httpx.Response, expected: Expected) -> None:
    where = (side.name, case, response.status_code, response.text[:2000])
    assert response.status_code == expected.status, where
    if expected.status < 400:
        return
    error = response.json()["error"]
    details = error.get("details")
    if expected.locs is None:
        assert details is None, where
    else:
        assert [d["loc"] for d in details] == expected.locs, where
    text = error["message"] if details is None else f"{error['message']} {details[0]['msg']}"
    assert expected.words in text, where


async def _answers(side: Side) -> dict[str, tuple[int, Any]]:
    """Every case's answer on ``side``, by case id (for the cross-side comparison)."""
    answers: dict[str, tuple[int, Any]] = {}
    for index, (case, metadata, _) in enumerate(METADATA_CASES):
        response = await side.register(_unique(index, metadata))
        answers[f"metadata:{case}"] = (response.status_code, _error_or_none(response))
    admin = side.client(side.admin_token)
    await side.plugin()
    for case, config, _ in CONFIG_CASES:
        response = await admin.put(f"{API}/nas-temp/config", json=config)
        answers[f"config:{case}"] = (response.status_code, response.json())
    plugin = await side.plugin(_metadata(id="batcher"))
    for case, body, _ in BATCH_CASES:
        response = await plugin.post(
            f"{API}/batcher/metrics", content=body, headers={"content-type": "application/json"}
        )
        answers[f"batch:{case}"] = (response.status_code, response.json())
    for case, body, _ in HEALTH_CASES:
        response = await plugin.post(
            f"{API}/batcher/health", content=body, headers={"content-type": "application/json"}
        )
        answers[f"health:{case}"] = (response.status_code, _error_or_none(response))
    answers["stored"] = (0, await side.stored())
    return answers


def _error_or_none(response: httpx.Response) -> Any:
    return response.json() if response.status_code >= 400 else None


# -- the contract, per side ---------------------------------------------------------


async def test_metadata_rules(side: Side) -> None:
    for index, (case, metadata, expected) in enumerate(METADATA_CASES):
        response = await side.register(_unique(index, metadata))
        _check(side, case, response, expected)


async def test_config_rules(side: Side) -> None:
    admin = side.client(side.admin_token)
    await side.plugin()
    for case, config, expected in CONFIG_CASES:
        response = await admin.put(f"{API}/nas-temp/config", json=config)
        _check(side, case, response, expected)


async def test_a_refused_config_changes_nothing(side: Side) -> None:
    admin = side.client(side.admin_token)
    plugin = await side.plugin()
    good = {"url": "http://nas", "interval": 30, "token": "s3cret-value"}
    assert (await admin.put(f"{API}/nas-temp/config", json=good)).status_code == 200
    refused = await admin.put(f"{API}/nas-temp/config", json={**good, "interval": 0})
    assert refused.status_code == 422
    assert "s3cret-value" not in refused.text
    answer = (await plugin.get(f"{API}/nas-temp/config")).json()
    assert answer["config"] == {"url": "http://nas", "timeout": 5, "token": "s3cret-value"}
    assert answer["interval"] == 30


async def test_a_valid_config_reads_back_masked_and_reaches_the_plugin(side: Side) -> None:
    admin = side.client(side.admin_token)
    plugin = await side.plugin()
    config = {"url": "http://nas", "interval": 30, "retention_days": 7, "token": "s3cret-value"}
    saved = await admin.put(f"{API}/nas-temp/config", json=config)
    assert saved.status_code == 200, saved.text
    assert saved.json()["config"] == {**config, "token": MASK}
    assert saved.json()["interval"] == 30
    assert saved.json()["config_schema"] == SCHEMA
    assert (await admin.get(f"{API}/nas-temp/config")).json()["config"]["token"] == MASK
    # The mask sent back keeps the stored secret.
    kept = await admin.put(f"{API}/nas-temp/config", json={**saved.json()["config"], "url": "u"})
    assert kept.status_code == 200, kept.text
    # The plugin's own key reads what it runs with: defaults filled, hub keys removed.
    answer = (await plugin.get(f"{API}/nas-temp/config")).json()
    assert answer["config"] == {"url": "u", "timeout": 5, "token": "s3cret-value"}
    assert (answer["interval"], answer["enabled"]) == (30, True)


async def test_batch_rules(side: Side) -> None:
    plugin = await side.plugin()
    samples = batches = 0
    for index, (case, body, expected) in enumerate(BATCH_CASES):
        body = body.replace('"contract-1"', f'"contract-{index}"')
        response = await plugin.post(
            f"{API}/nas-temp/metrics", content=body, headers={"content-type": "application/json"}
        )
        _check(side, case, response, expected)
        if expected.locs and expected.locs[0][:2] == ["samples", 2]:
            message = response.json()["error"]["message"]
            assert message == "sample 2 is invalid; nothing was stored", (side.name, case)
        if response.is_success:
            assert response.json() == {"stored": 3, "duplicate": False}, (side.name, case)
            samples, batches = samples + 3, batches + 1
        # A refused batch stores nothing, not even its good samples.
        assert await side.stored() == (samples, batches), (side.name, case)


async def test_a_batch_id_is_stored_once(side: Side) -> None:
    plugin = await side.plugin()
    for duplicate in (False, True):
        response = await plugin.post(
            f"{API}/nas-temp/metrics",
            content=_batch(GOOD),
            headers={"content-type": "application/json"},
        )
        assert response.json() == {"stored": 0 if duplicate else 3, "duplicate": duplicate}


async def test_health_rules(side: Side) -> None:
    plugin = await side.plugin()
    for case, body, expected in HEALTH_CASES:
        response = await plugin.post(
            f"{API}/nas-temp/health", content=body, headers={"content-type": "application/json"}
        )
        _check(side, case, response, expected)


# -- the contract, across sides -----------------------------------------------------


async def test_both_sides_give_the_same_answers(app: FastAPI, admin_token: str) -> None:
    sides = [hub_side(app, admin_token), fake_side()]
    try:
        hub, fake = [await _answers(s) for s in sides]
    finally:
        for s in sides:
            await s.close()
    assert hub.keys() == fake.keys()
    differing = {case: (hub[case], fake[case]) for case in hub if hub[case] != fake[case]}
    assert not differing, json.dumps(differing, indent=1, default=str)[:4000]


async def test_after_refused_batches_the_hub_reads_keep_working(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str
) -> None:
    """What an accepted 1e309 used to break: series queries, the plugin page, /metrics."""
    hub = hub_side(app, admin_token)
    try:
        plugin = await hub.plugin()
        for _, body, _ in BATCH_CASES:
            await plugin.post(
                f"{API}/nas-temp/metrics",
                content=body,
                headers={"content-type": "application/json"},
            )
        for _, body, _ in HEALTH_CASES:
            await plugin.post(
                f"{API}/nas-temp/health", content=body, headers={"content-type": "application/json"}
            )
    finally:
        await hub.close()
    series = await client.get(
        f"{API}/nas-temp/metrics",
        params={
            "field": "cpu.temp",
            "start": "2026-10-31T00:00:00Z",
            "end": "2026-11-02T00:00:00Z",
        },
    )
    assert series.status_code == 200, series.text
    assert (await client.get(f"{API}/nas-temp")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
