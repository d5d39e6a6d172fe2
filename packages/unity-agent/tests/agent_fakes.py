"""Test helpers: a stand-in for the hub's agent API, and small real plugins.

These tests talk to :class:`FakeAgentHub`, the hub as one agent sees it: the
agent endpoints (join is not needed here: assignments, status, proposals) plus
the instances' metrics and health, answering with the SDK's own wire models (``MetricBatch``,
``AgentStatus``, ``HealthReport``...). In process it is an
``httpx.MockTransport``; for an agent in another process it is served on
loopback by a real HTTP server (:meth:`FakeAgentHub.serve`). The end-to-end
tests against a real ``unity serve`` live with the hub's tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from unity_sdk import (
    AGENT_API_PATH,
    AGENT_KEY_PREFIX,
    AgentStatus,
    Assignment,
    Assignments,
    DependencyMissingError,
    HealthReport,
    HealthStatus,
    HostFacts,
    MetricBatch,
    MetricField,
    PluginBase,
    PluginMetadata,
    Proposal,
    ProposalReport,
    batch_problems,
    error_details,
)

HOST_ID = "testhost"
API_KEY = AGENT_KEY_PREFIX + "k1_" + secrets.token_urlsafe(16)


@dataclass
class FakeAgentHub:
    """The hub as one agent sees it. Thread-safe: an HTTP server may call it."""

    poll_seconds: float = 0.2
    assignments: list[Assignment] = field(default_factory=list)
    revision: int = 1
    # instance id -> every sample stored, in arrival order (dicts of the wire form)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batch_ids: list[str] = field(default_factory=list)
    duplicates: int = 0
    health: dict[str, list[HealthReport]] = field(default_factory=dict)
    statuses: list[AgentStatus] = field(default_factory=list)
    proposal_reports: list[ProposalReport] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # Outages and refusals a test switches on.
    down: bool = False
    status_down: bool = False  # only the status calls cannot get through
    metrics_status: int | None = None  # answer every metrics request with this
    lose_answers: int = 0  # store the next n batches, then answer 503
    refuse_samples_with: str | None = None  # a data key that makes a batch 422
    revoked: bool = False
    api_key: str = API_KEY
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what tests set up -------------------------------------------------------------

    def assign(self, *assignments: Assignment) -> None:
        with self._lock:
            self.assignments = list(assignments)
            self.revision += 1

    def polls(self) -> int:
        """How many times the agent asked for its assignments."""
        with self._lock:
            return self.requests.count(("GET", f"{AGENT_API_PATH}/assignments"))

    def stored(self, instance_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s["data"] for s in self.samples.get(instance_id, [])]

    # -- the transport -----------------------------------------------------------------

    @property
    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            if self.down or (self.status_down and request.url.path == f"{AGENT_API_PATH}/status"):
                raise httpx.ConnectError("fake hub is down", request=request)
            status, body = self.handle(
                request.method,
                request.url.path,
                request.headers.get("Authorization", ""),
                request.content,
            )
            return httpx.Response(status, json=body)

        return httpx.MockTransport(handle)

    def handle(self, method: str, path: str, auth: str, body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, path))
            if auth != f"Bearer {self.api_key}" or self.revoked:
                return _error(401, "unknown or revoked agent key")
            if method == "GET" and path == f"{AGENT_API_PATH}/assignments":
                answer = Assignments(
                    host_id=HOST_ID,
                    revision=str(self.revision),
                    poll_seconds=self.poll_seconds,
                    instances=self.assignments,
                )
                return 200, answer.model_dump(mode="json")
            if method == "POST" and path == f"{AGENT_API_PATH}/status":
                status = _parse(AgentStatus, body)
                if isinstance(status, tuple):
                    return status
                self.statuses.append(status)
                return 200, {"host_id": HOST_ID, "received_at": _now()}
            if method == "PUT" and path == f"{AGENT_API_PATH}/proposals":
                report = _parse(ProposalReport, body)
                if isinstance(report, tuple):
                    return report
                keys = [p.key for p in report.proposals]
                if len(set(keys)) != len(keys):
                    return _error(422, "the report names a proposal key twice")
                self.proposal_reports.append(report)
                return 200, {"host_id": HOST_ID, "open": len(report.proposals)}
            parts = path.removeprefix("/api/plugins/v2/").split("/")
            if method == "POST" and len(parts) == 2 and parts[1] in ("metrics", "health"):
                if parts[0] not in {a.instance_id for a in self.assignments}:
                    return _error(403, f"{parts[0]} is not one of this agent's instances")
                if parts[1] == "health":
                    return self._health(parts[0], body)
                return self._metrics(parts[0], body)
            return _error(404, f"no route {method} {path}")

    def _metrics(self, instance_id: str, body: bytes) -> tuple[int, Any]:
        if self.metrics_status is not None:
            return _error(self.metrics_status, "metrics refused by the test")
        try:
            batch = MetricBatch.model_validate_json(body)
        except ValidationError as exc:
            message, details = batch_problems(exc)
            return _error(422, message, details)
        if self.refuse_samples_with and any(
            self.refuse_samples_with in s.data for s in batch.samples
        ):
            return _error(422, "sample 0 is invalid; nothing was stored")
        duplicate = batch.batch_id in self.batch_ids
        if duplicate:
            self.duplicates += 1
        else:
            self.batch_ids.append(batch.batch_id)
            stored = self.samples.setdefault(instance_id, [])
            stored.extend(s.model_dump(mode="json") for s in batch.samples)
        if self.lose_answers:
            self.lose_answers -= 1
            return _error(503, "stored, but the answer is lost")
        return 200, {"stored": 0 if duplicate else len(batch.samples), "duplicate": duplicate}

    def _health(self, instance_id: str, body: bytes) -> tuple[int, Any]:
        report = _parse(HealthReport, body)
        if isinstance(report, tuple):
            return report
        self.health.setdefault(instance_id, []).append(report)
        answer = {"plugin_id": instance_id, "status": report.status.value, "received_at": _now()}
        return 200, answer

    # -- on loopback, for an agent in another process ----------------------------------

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on 127.0.0.1 (a free port) while in the block; yields the URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if fake.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                path = unquote(urlsplit(self.path).path)  # as httpx's request.url.path
                status, answer = fake.handle(
                    self.command, path, self.headers.get("Authorization", ""), body
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test's output is the assertions, not an access log

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


def _parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        return _error(422, f"invalid {model.__name__}", error_details(exc))


def _error(status: int, message: str, details: Any = None) -> tuple[int, Any]:
    error: dict[str, Any] = {"code": str(status), "message": message}
    if details is not None:
        error["details"] = details
    return status, {"error": error}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def assignment(plugin: str, interval: float = 0.2, **config: Any) -> Assignment:
    return Assignment(
        instance_id=f"{plugin}@{HOST_ID}", plugin=plugin, config=config, interval=interval
    )


async def eventually(check: Any, timeout: float = 10.0, step: float = 0.05) -> None:
    """Wait until ``check()`` is true (``AssertionError`` after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        await asyncio.sleep(step)


# -- small real plugins -----------------------------------------------------------------

EVENTS: list[tuple[str, str]] = []


def _metadata(plugin_id: str, timeout: float = 5.0, **extra: Any) -> PluginMetadata:
    return PluginMetadata(
        id=plugin_id,
        name=plugin_id,
        version="1.0.0",
        metrics=[MetricField(name="value")],
        timeout=timeout,
        **extra,
    )


class CounterPlugin(PluginBase):
    """Counts its runs; its config ``step`` says by how much (a change must show)."""

    def get_metadata(self) -> PluginMetadata:
        return _metadata(
            "counter",
            config_schema={
                "type": "object",
                "properties": {"step": {"type": "integer", "minimum": 1, "default": 1}},
                "additionalProperties": False,
            },
        )

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.value = 0

    async def on_enable(self) -> None:
        EVENTS.append(("counter", f"enable step={self.config['step']}"))

    async def on_disable(self) -> None:
        EVENTS.append(("counter", f"disable step={self.config['step']}"))

    async def collect_data(self) -> dict[str, Any]:
        self.value += self.config["step"]
        return {"value": self.value, "step": self.config["step"]}


class TankPlugin(PluginBase):
    """A level read from ``LEVEL``; ``assess`` says degraded above 90 %."""

    level = 10.0

    def get_metadata(self) -> PluginMetadata:
        return _metadata("tank")

    async def collect_data(self) -> dict[str, Any]:
        return {"value": TankPlugin.level}

    def assess(self, document: dict[str, Any]) -> HealthStatus | None:
        level = document["value"]
        if level > 90:
            return HealthStatus.degraded(f"{level:g} % full")
        return HealthStatus.healthy(f"{level:g} % full")


class BlockingPlugin(PluginBase):
    """Blocks its thread (time.sleep inside async code) for ``seconds``."""

    seconds = 1.0

    def get_metadata(self) -> PluginMetadata:
        return _metadata("blocking", timeout=10.0)

    async def collect_data(self) -> dict[str, Any]:
        time.sleep(BlockingPlugin.seconds)  # noqa: ASYNC251 - the bug a real plugin may have
        return {"value": 1}


class SlowPlugin(PluginBase):
    """Never answers within its 0.2 s timeout (asyncio sleep: cancellable)."""

    def get_metadata(self) -> PluginMetadata:
        return _metadata("slow", timeout=0.2)

    async def collect_data(self) -> dict[str, Any]:
        await asyncio.sleep(30)
        return {"value": 1}


class FailingPlugin(PluginBase):
    """Always fails."""

    def get_metadata(self) -> PluginMetadata:
        return _metadata("failing")

    async def collect_data(self) -> dict[str, Any]:
        raise RuntimeError("the service is down")


class NeedsExtraPlugin(PluginBase):
    """Its client library is not installed."""

    def get_metadata(self) -> PluginMetadata:
        return _metadata("needs-extra")

    async def collect_data(self) -> dict[str, Any]:
        raise DependencyMissingError("install unity-catalogue[fake]: fakelib is missing")


class BrokenEnablePlugin(PluginBase):
    """``on_enable`` raises: it never runs."""

    def get_metadata(self) -> PluginMetadata:
        return _metadata("broken-enable")

    async def on_enable(self) -> None:
        raise ModuleNotFoundError("No module named 'fakelib'")

    async def collect_data(self) -> dict[str, Any]:
        return {"value": 1}


class PortPlugin(PluginBase):
    """Watches a TCP port; discovery proposes it for each socket listening on one
    of ``PORTS`` (a test sets them to ports it listens on)."""

    PORTS: tuple[int, ...] = ()

    def get_metadata(self) -> PluginMetadata:
        return _metadata(
            "port",
            config_schema={
                "type": "object",
                "properties": {"host": {"type": "string"}, "port": {"type": "integer"}},
                "required": ["host", "port"],
                "additionalProperties": False,
            },
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        return [
            Proposal(
                key=f"port:{listener.port}",
                plugin="port",
                title=f"something on port {listener.port}",
                reason=f"{listener.process or 'a process'} listens on {listener.endpoint}",
                config={"host": listener.host, "port": listener.port},
            )
            for listener in facts.listening(ports=cls.PORTS)
        ]

    async def collect_data(self) -> dict[str, Any]:
        _, writer = await asyncio.open_connection(self.config["host"], self.config["port"])
        writer.close()
        return {"value": 1}


ALL = [
    CounterPlugin,
    TankPlugin,
    BlockingPlugin,
    SlowPlugin,
    FailingPlugin,
    NeedsExtraPlugin,
    BrokenEnablePlugin,
    PortPlugin,
]
