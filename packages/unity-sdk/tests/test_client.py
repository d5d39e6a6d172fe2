"""HubClient against FakeHub and against a real scripted HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pytest
from pydantic import BaseModel

from unity_sdk import (
    MAX_BATCH_SAMPLES,
    HealthReport,
    HealthState,
    HubAuthError,
    HubClient,
    HubError,
    HubRequestError,
    HubUnavailableError,
    MetricField,
    PluginMetadata,
    RegisterRequest,
    Sample,
    new_key_secret,
)
from unity_sdk.testing import FakeHub

ACCEPTED = {"stored": 1, "duplicate": False}


class UpsConfig(BaseModel):
    url: str = "http://ups.local"


METADATA = PluginMetadata(
    id="ups",
    name="UPS",
    version="1.0.0",
    config_schema=UpsConfig,
    metrics=[MetricField(name="load", unit="%")],
)


def sample(load: float = 12.5) -> Sample:
    return Sample(host="nas", timestamp=datetime.now(UTC), data={"load": load})


# -- a real HTTP server that answers from a script ----------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedServer:
    """HTTP/1.1 on 127.0.0.1: answers each request with the next scripted reply."""

    script: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.seen.append(Seen(method, path, headers, body, time.monotonic()))
        status, extra, payload = self.script.pop(0) if self.script else (200, {}, ACCEPTED)
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            "Content-Type: application/json",
            f"Content-Length: {len(content)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in extra.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + content)
        await writer.drain()
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer()
    listener = await asyncio.start_server(scripted._serve, "127.0.0.1", 0)
    scripted.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield scripted


def error(message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": "x", "message": message, "details": details}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def fast(url: str, **options: Any) -> HubClient:
    options.setdefault("backoff_base", 0.01)
    options.setdefault("backoff_max", 0.05)
    return HubClient(url, "unityk_secret-key", **options)


# -- the real server: retries and error mapping --------------------------------


async def test_retries_connection_refused_until_the_hub_listens() -> None:
    port = free_port()
    scripted = ScriptedServer()
    async with fast(f"http://127.0.0.1:{port}", max_retries=20, backoff_base=0.05) as hub:
        call = asyncio.create_task(hub.report_metrics("ups", [sample()]))
        await asyncio.sleep(0.3)
        assert not call.done()
        listener = await asyncio.start_server(scripted._serve, "127.0.0.1", port)
        async with listener:
            answer = await asyncio.wait_for(call, 10)
    assert answer.stored == 1
    assert len(scripted.seen) == 1


async def test_connection_refused_gives_up_as_unavailable() -> None:
    async with fast(f"http://127.0.0.1:{free_port()}", max_retries=2) as hub:
        with pytest.raises(HubUnavailableError) as caught:
            await hub.get_config("ups")
    assert caught.value.status is None
    assert "unreachable" in str(caught.value)


async def test_503_is_retried_with_the_same_batch_id(server: ScriptedServer) -> None:
    server.script = [
        (503, {}, error("starting")),
        (503, {}, error("starting")),
        (200, {}, ACCEPTED),
    ]
    async with fast(server.url) as hub:
        answer = await hub.report_metrics("ups", [sample(), sample()])
    assert answer.stored == 1
    assert [seen.path for seen in server.seen] == ["/api/plugins/v2/ups/metrics"] * 3
    batch_ids = {seen.json()["batch_id"] for seen in server.seen}
    assert len(batch_ids) == 1
    assert len(batch_ids.pop()) == 32  # a uuid4 hex
    assert server.seen[0].headers["authorization"] == "Bearer unityk_secret-key"


async def test_given_batch_id_is_sent(server: ScriptedServer) -> None:
    async with fast(server.url) as hub:
        await hub.report_metrics("ups", [sample()], batch_id="my-batch-0001")
    assert server.seen[0].json()["batch_id"] == "my-batch-0001"


async def test_429_honours_retry_after(server: ScriptedServer) -> None:
    server.script = [(429, {"Retry-After": "1"}, error("slow down")), (200, {}, ACCEPTED)]
    async with HubClient(server.url, "unityk_k", backoff_base=0.001, backoff_max=5) as hub:
        await hub.report_metrics("ups", [sample()])
    waited = server.seen[1].at - server.seen[0].at
    assert 0.9 <= waited < 3


async def test_retry_after_is_capped_by_backoff_max(server: ScriptedServer) -> None:
    server.script = [(429, {"Retry-After": "120"}, error("slow down")), (200, {}, ACCEPTED)]
    async with HubClient(server.url, "unityk_k", backoff_max=0.2) as hub:
        await hub.report_metrics("ups", [sample()])
    assert server.seen[1].at - server.seen[0].at < 1


async def test_5xx_after_the_last_retry_is_unavailable(server: ScriptedServer) -> None:
    server.script = [(500, {}, error("database is locked"))] * 4
    async with fast(server.url, max_retries=3) as hub:
        with pytest.raises(HubUnavailableError) as caught:
            await hub.get_config("ups")
    assert len(server.seen) == 4
    assert caught.value.status == 500
    assert caught.value.message == "database is locked"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, HubRequestError),
        (401, HubAuthError),
        (403, HubAuthError),
        (404, HubRequestError),
        (409, HubRequestError),
        (413, HubRequestError),
        (422, HubRequestError),
    ],
)
async def test_4xx_is_never_retried(
    server: ScriptedServer, status: int, kind: type[HubError]
) -> None:
    details = [{"loc": ["samples", 0, "host"], "msg": "too long"}]
    server.script = [(status, {}, error(f"refused with {status}", details))] * 3
    async with fast(server.url) as hub:
        with pytest.raises(kind) as caught:
            await hub.report_metrics("ups", [sample()])
    assert len(server.seen) == 1
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert caught.value.message == f"refused with {status}"
    assert f"refused with {status}" in str(caught.value)
    assert caught.value.details == details


async def test_a_proxy_error_page_still_gives_a_message(server: ScriptedServer) -> None:
    server.script = [(502, {}, b"Bad Gateway from nginx")] * 2
    async with fast(server.url, max_retries=1) as hub:
        with pytest.raises(HubUnavailableError, match="Bad Gateway from nginx"):
            await hub.get_config("ups")


async def test_an_unexpected_body_is_a_request_error(server: ScriptedServer) -> None:
    server.script = [(200, {}, {"unexpected": True})]
    async with fast(server.url) as hub:
        with pytest.raises(HubRequestError, match="unexpected body"):
            await hub.get_config("ups")


async def test_register_sends_json_metadata(server: ScriptedServer) -> None:
    server.script = [(201, {}, {"plugin_id": "ups", "api_key": "unityk_new", "key_id": "k1"})]
    async with HubClient(server.url) as hub:
        answer = await hub.register_plugin(
            METADATA, enrollment_token="unitye_token", hostname="nas"
        )
        assert hub.api_key == "unityk_new"
    assert answer.api_key == "unityk_new"
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("POST", "/api/plugins/v2/register")
    assert seen.headers["authorization"] == "Bearer unitye_token"
    body = seen.json()
    assert body["hostname"] == "nas"
    assert body["metadata"]["id"] == "ups"
    assert body["metadata"]["config_schema"] == UpsConfig.model_json_schema()


async def test_secrets_never_appear_in_errors_or_reprs(server: ScriptedServer) -> None:
    # A hub (or a proxy) echoing the credential back must not leak it either.
    server.script = [
        (401, {}, error("token unitye_enroll-secret is used up")),
        (403, {}, error("key unityk_secret-key is not for this plugin")),
    ]
    async with fast(server.url) as hub:
        with pytest.raises(HubAuthError) as enroll:
            await hub.register_plugin(METADATA, enrollment_token="unitye_enroll-secret")
        with pytest.raises(HubAuthError) as key:
            await hub.get_config("other")
        texts = [str(enroll.value), repr(enroll.value), str(key.value), repr(key.value), repr(hub)]
    assert enroll.value.status == 401
    assert key.value.status == 403
    for text in texts:
        assert "enroll-secret" not in text
        assert "secret-key" not in text


async def test_calls_without_a_key_fail_before_the_network(server: ScriptedServer) -> None:
    async with HubClient(server.url) as hub:
        with pytest.raises(HubAuthError, match="no API key"):
            await hub.get_config("ups")
    assert server.seen == []


# -- FakeHub: the endpoints end to end ------------------------------------------


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub(in_hub_plugins={"system-info"})


async def test_full_conversation_with_the_fake_hub(hub: FakeHub) -> None:
    hub.set_config("ups", {"url": "http://ups.lan"}, interval=15)
    async with HubClient("http://hub", transport=hub.transport) as client:
        registered = await client.register_plugin(
            METADATA, enrollment_token=hub.enrollment_token, hostname="nas"
        )
        assert registered.api_key.startswith("unityk_")
        config = await client.get_config("ups")
        accepted = await client.report_metrics("ups", [sample(1), sample(2)])
        health = await client.update_health(
            "ups", HealthReport(status=HealthState.DEGRADED, message="on battery", buffered=3)
        )
    assert config.config == {"url": "http://ups.lan"}
    assert config.interval == 15
    assert config.config_schema == UpsConfig.model_json_schema()
    assert accepted.stored == 2
    assert not accepted.duplicate
    assert [s.data["load"] for s in hub.samples("ups")] == [1, 2]
    assert health.status is HealthState.DEGRADED
    assert hub.health("ups")[0].buffered == 3


async def test_lost_answer_is_retried_and_stored_once(hub: FakeHub) -> None:
    async with fast("http://hub", transport=hub.transport) as client:
        await client.register_plugin(METADATA, enrollment_token=hub.enrollment_token)
        hub.fail_next(1, 503, after_handling=True)
        answer = await client.report_metrics("ups", [sample()])
    assert answer.duplicate
    assert hub.count("POST", "metrics") == 2
    assert len(hub.samples("ups")) == 1


async def test_fake_hub_outage_raises_connect_errors(hub: FakeHub) -> None:
    async with fast("http://hub", transport=hub.transport, max_retries=3) as client:
        await client.register_plugin(METADATA, enrollment_token=hub.enrollment_token)
        hub.down = True
        with pytest.raises(HubUnavailableError, match="ConnectError"):
            await client.get_config("ups")
    assert hub.count("GET", "config") == 4


async def test_fake_hub_enforces_enrollment_and_key_scope(hub: FakeHub) -> None:
    once = hub.create_enrollment_token(uses=1)
    other = METADATA.model_copy(update={"id": "other"})
    async with HubClient("http://hub", transport=hub.transport) as client:
        await client.register_plugin(METADATA, enrollment_token=once)
        with pytest.raises(HubAuthError, match="used up") as used:
            await client.register_plugin(other, enrollment_token=once)
        assert used.value.status == 401
        with pytest.raises(HubAuthError) as foreign:
            await client.get_config("other")
        assert foreign.value.status == 403
        with pytest.raises(HubRequestError, match="in-hub plugin") as taken:
            await client.register_plugin(
                METADATA.model_copy(update={"id": "system-info"}),
                enrollment_token=hub.enrollment_token,
            )
        assert taken.value.status == 409
        hub.revoke("ups")
        with pytest.raises(HubAuthError, match="revoked") as revoked:
            await client.report_metrics("ups", [sample()])
        assert revoked.value.status == 401


async def test_register_proposes_a_key_and_a_retry_returns_it(hub: FakeHub) -> None:
    once = hub.create_enrollment_token(uses=1)
    async with fast("http://hub", transport=hub.transport, max_retries=2) as client:
        hub.fail_next(1, 503, after_handling=True)
        answer = await client.register_plugin(METADATA, enrollment_token=once)
        assert hub.count("POST", "register") == 2
        assert client.api_key == answer.api_key
        secret = answer.api_key.removeprefix("unityk_").split("_", 1)[1]
        assert len(secret) == 43
        again = await client.register_plugin(METADATA, enrollment_token=once, key_secret=secret)
        assert again == answer
        with pytest.raises(HubAuthError, match="used up"):
            await client.register_plugin(METADATA, enrollment_token=once)
        other = hub.create_enrollment_token(uses=1)
        with pytest.raises(HubRequestError, match="already registered") as taken:
            await client.register_plugin(METADATA, enrollment_token=other)
        assert taken.value.status == 409
        with pytest.raises(ValueError, match="43 URL-safe") as malformed:
            await client.register_plugin(METADATA, enrollment_token=other, key_secret="sh0rt")
        assert "sh0rt" not in str(malformed.value)
    secret = new_key_secret()
    assert secret not in repr(RegisterRequest(metadata={}, hostname="h", key_secret=secret))


async def test_fake_hub_validates_metadata_and_batches(hub: FakeHub) -> None:
    async with HubClient("http://hub", transport=hub.transport) as client:
        with pytest.raises(HubRequestError) as invalid:
            await client.register_plugin(
                {"id": "Not Kebab", "name": "x", "version": "1"},
                enrollment_token=hub.enrollment_token,
            )
        assert invalid.value.status == 422
        assert {tuple(d["loc"][:2]) for d in invalid.value.details} == {
            ("metadata", "id"),
            ("metadata", "version"),
        }
        await client.register_plugin(METADATA, enrollment_token=hub.enrollment_token)
        with pytest.raises(HubRequestError) as too_many:
            await client.report_metrics("ups", [sample()] * (MAX_BATCH_SAMPLES + 1))
        assert too_many.value.status == 413
        with pytest.raises(HubRequestError) as bad_sample:
            await client.report_metrics(
                "ups",
                [
                    sample(),
                    sample(),
                    Sample(
                        **{"host": "nas", "timestamp": datetime.now(UTC), "data": {"load": "high"}}
                    ),
                ],
            )
        assert bad_sample.value.status == 422
        assert bad_sample.value.details[0]["loc"][:2] == ["samples", 2]
    assert hub.samples("ups") == []


async def test_fake_hub_retry_after_and_failures(hub: FakeHub) -> None:
    async with HubClient("http://hub", transport=hub.transport, backoff_max=5) as client:
        await client.register_plugin(METADATA, enrollment_token=hub.enrollment_token)
        hub.fail_next(1, 429, retry_after=0.3)
        started = time.monotonic()
        await client.get_config("ups")
        assert time.monotonic() - started >= 0.25
