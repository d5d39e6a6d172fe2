"""Error hygiene: bad input of any kind is a JSON 4xx with a message, never a 500.

These tests use a client that turns an unhandled exception into the 500 a user
would see, so a crash fails an assertion instead of surfacing as a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.api.helpers import API, ENDPOINTS, error_of, plugin_row, send


def assert_client_error(response: httpx.Response, where: str) -> None:
    assert 400 <= response.status_code < 500, (where, response.status_code, response.text)
    error_of(response, response.status_code)


def assert_no_crash(response: httpx.Response, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), where


async def test_an_unknown_plugin_is_404_on_every_route(lenient: httpx.AsyncClient) -> None:
    checked = 0
    for method, _, path, body in ENDPOINTS:
        if "/counter" not in path:
            continue
        missing = path.replace("/counter", "/no-such-plugin")
        error = error_of(await send(lenient, method, missing, body), 404)
        assert error["code"] == "not_found"
        assert "no-such-plugin" in error["message"], missing
        checked += 1
    assert checked == 11


@pytest.mark.parametrize(
    "plugin_id",
    [
        "Counter",
        "counter ",
        "counter-",
        "..",
        "%2e%2e",
        "ünïcødé",
        "x" * 5000,
        "a%20b",
        "1",
        "%F0%9F%92%A5",
        "counter;drop table plugins",
    ],
)
async def test_odd_plugin_ids_are_404(lenient: httpx.AsyncClient, plugin_id: str) -> None:
    for suffix in ("", "/config", "/metrics", "/executions", "/events", "/health"):
        response = await lenient.get(f"{API}/{plugin_id}{suffix}")
        assert_client_error(response, f"{plugin_id[:20]}{suffix}")
    assert_client_error(await lenient.post(f"{API}/{plugin_id}/execute"), plugin_id[:20])


async def test_a_nul_byte_is_not_a_500(
    request: pytest.FixtureRequest, app: FastAPI, lenient: httpx.AsyncClient
) -> None:
    for path in (
        f"{API}/a%00b",
        f"{API}/counter%00/config",
        f"{API}/counter/metrics?host=a%00b",
        f"{API}?category=a%00b",
    ):
        assert_no_crash(await lenient.get(path), path)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (API, {"limit": "1e3"}),
        (API, {"limit": "99999999999999999999999999"}),
        (API, {"limit": "-0"}),
        (API, {"enabled": "yes please"}),
        (API, {"cursor": "\u00e9"}),
        (API, {"cursor": "x" * 10_000 + "_"}),
        (f"{API}/counter/metrics", {"limit": "99999999999999999999999999"}),
        (f"{API}/counter/metrics", {"start": "1e10"}),
        (f"{API}/counter/metrics", {"start": "2024-05-01T12:00:00+25:00"}),
        (f"{API}/counter/metrics", {"end": ""}),
        (f"{API}/counter/metrics", {"step": "60", "field": "value", "start": "nope"}),
        (f"{API}/counter/metrics", {"step": "99999999999999999999999", "field": "value"}),
        (f"{API}/counter/metrics", {"field": "x" * 5000}),
        (f"{API}/counter/metrics", {"cursor": "=" * 7}),
        (f"{API}/counter/executions", {"status": "x" * 5000}),
        (f"{API}/counter/executions", {"limit": "NaN"}),
        (f"{API}/counter/executions", {"cursor": "eyJ9"}),
        (f"{API}/counter/health", {"cached": "2"}),
    ],
)
async def test_bad_query_parameters_are_4xx(
    lenient: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    assert_client_error(await lenient.get(path, params=params), f"{path} {params}")


async def test_unknown_routes_and_methods_are_json(lenient: httpx.AsyncClient) -> None:
    assert error_of(await lenient.get("/api/nope"), 404)["code"] == "not_found"
    assert error_of(await lenient.get(f"{API}/counter/nope"), 404)["code"] == "not_found"
    for method, path in [
        # DELETE is a route (plugin instances of agents' hosts); PATCH is none.
        ("PATCH", f"{API}/counter"),
        ("POST", f"{API}/counter/config"),
        ("GET", f"{API}/counter/enable"),
        ("PUT", f"{API}/counter/execute"),
        ("POST", "/metrics"),
    ]:
        error = error_of(await lenient.request(method, path), 405)
        assert error["code"] == "method_not_allowed", (method, path)


async def test_bodies_that_cannot_be_parsed_are_4xx(
    app: FastAPI, lenient: httpx.AsyncClient
) -> None:
    for raw in (b"[" * 100_000, b"{" * 50_000, b'{"a": 1}{"b": 2}', b'{"a": 1,}', b"\x00"):
        response = await lenient.put(
            f"{API}/counter/config", content=raw, headers={"content-type": "application/json"}
        )
        assert_client_error(response, repr(raw[:10]))
    assert (await plugin_row(app, "counter")).config == {}


# PostgreSQL refuses NaN/Infinity, NUL and lone surrogates in JSONB (500); SQLite turns
# NaN/Infinity into null, and stores a lone surrogate that no JSON answer can encode,
# so the plugin's config and detail answer 500 from then on.
UNSTORABLE_CONFIG_BUG = (
    "unity_sdk.validate_config accepts any JSON value for plugins without a schema "
    "(and strings in any schema); it should refuse values the hub cannot store and "
    "serve the same on both databases (json.dumps(allow_nan=False) and a strict UTF-8 "
    "encode, no NUL) with a 422"
)


async def test_a_non_finite_number_in_a_config_is_422(
    app: FastAPI, lenient: httpx.AsyncClient
) -> None:
    """Python's JSON parser accepts NaN, Infinity and 1e400; a config cannot hold them."""
    for raw in (b'{"note": NaN}', b'{"note": Infinity}', b'{"note": 1e400}'):
        response = await lenient.put(
            f"{API}/counter/config", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (raw, response.status_code, response.text)
    assert (await plugin_row(app, "counter")).config == {}


async def test_a_lone_surrogate_in_a_config_is_422_and_reads_keep_working(
    app: FastAPI, lenient: httpx.AsyncClient
) -> None:
    raw = b'{"note": "\\ud800"}'
    response = await lenient.put(
        f"{API}/counter/config", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, (response.status_code, response.text)
    assert (await lenient.get(f"{API}/counter/config")).status_code == 200
    assert (await lenient.get(f"{API}/counter")).status_code == 200


async def test_a_nul_in_a_config_is_stored_or_refused_never_a_500(
    request: pytest.FixtureRequest, app: FastAPI, lenient: httpx.AsyncClient
) -> None:
    for raw, stored in ((b'{"note": "a\\u0000b"}', {"note": "a\x00b"}), (b'{"\\u0000": 1}', None)):
        response = await lenient.put(
            f"{API}/counter/config", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code in {200, 422}, (raw, response.status_code)
        if response.status_code == 200 and stored is not None:
            assert (await lenient.get(f"{API}/counter/config")).json()["config"] == stored


async def test_an_unhandled_error_is_a_500_in_the_json_envelope(
    app: FastAPI, lenient: httpx.AsyncClient
) -> None:
    """A genuine bug (here: a table gone from under the hub) still answers JSON,
    and the message gives nothing of the internals away."""
    async with app.state.db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE plugin_executions"))
    error = error_of(await lenient.get(f"{API}/counter/executions"), 500)
    assert error["code"] == "internal_error"
    assert "plugin_executions" not in error["message"]


async def test_a_missing_body_after_a_disconnect_leaves_no_traceback(
    app: FastAPI, admin_token: str, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The client hangs up half-way through its body: nothing is stored and
    nothing is logged at ERROR (there is nobody to answer, and no bug)."""
    messages = iter(
        [
            {"type": "http.request", "body": b'{"note": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []
    before = (await client.get(f"{API}/counter/config")).json()

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"{API}/counter/config",
        "raw_path": f"{API}/counter/config".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"hub"),
            (b"authorization", f"Bearer {admin_token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8765),
    }
    with caplog.at_level(logging.DEBUG):
        await app(scope, receive, send)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert sent[0]["status"] < 500
    assert (await client.get(f"{API}/counter/config")).json() == before
