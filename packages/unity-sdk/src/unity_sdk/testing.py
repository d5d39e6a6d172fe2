"""Test helpers for plugin authors: an in-memory hub and one-shot collection.

``FakeHub`` answers the four external-plugin endpoints (and ``PUT /{id}/config``
for an admin) with the real wire models on an ``httpx.MockTransport``, so
``HubClient`` and ``ExternalPluginBase.run`` are tested without a hub or a
network. It accepts and refuses exactly what the hub does: both call the
rulebook (:mod:`unity_sdk._rules`, :mod:`unity_sdk._config`)::

    hub = FakeHub()
    async with HubClient("http://hub", transport=hub.transport) as client:
        await client.register_plugin(metadata, enrollment_token=hub.enrollment_token)

``collect_once`` runs a plugin once the way the hub would (config validated
by :func:`unity_sdk.validate_config`, ``on_enable`` / ``collect_data`` /
``on_disable``); ``assert_valid_document`` checks the result against the
declared metrics; ``check_plugin`` first checks the class as the hub's loader
does (:func:`unity_sdk.check_plugin_class`). The pytest plugin
(:mod:`unity_sdk.pytest_plugin`) offers all of them as fixtures.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from unity_sdk._client import API_PATH
from unity_sdk._config import mask_secrets, plugin_view, validate_config
from unity_sdk._metrics import check_document, encode_document
from unity_sdk._rules import accept_batch, check_plugin_class, parse_metadata
from unity_sdk._wire import (
    API_KEY_PREFIX,
    DEFAULT_MAX_FUTURE_SKEW,
    ENROLLMENT_PREFIX,
    ERROR_CODES,
    BatchAccepted,
    HealthAccepted,
    HealthReport,
    MetricBatch,
    PluginConfig,
    RegisterRequest,
    RegisterResponse,
    Sample,
)
from unity_sdk.errors import BatchRefusedError, ConfigError, MetadataError, error_details
from unity_sdk.metadata import PluginMetadata
from unity_sdk.plugin import PluginBase

__all__ = [
    "FakeHub",
    "FakePlugin",
    "assert_valid_document",
    "check_plugin",
    "collect_once",
]

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass
class FakePlugin:
    """What the fake hub knows about one registered external plugin."""

    metadata: PluginMetadata
    config: dict[str, Any] = field(default_factory=dict)
    interval: float | None = None
    enabled: bool = True
    batches: list[MetricBatch] = field(default_factory=list)
    health: list[HealthReport] = field(default_factory=list)

    @property
    def samples(self) -> list[Sample]:
        """Every stored sample, in the order the batches arrived."""
        return [sample for batch in self.batches for sample in batch.samples]


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    after_handling: bool


class _Reply(Exception):
    """Raised inside a handler to answer with a JSON error."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


class FakeHub:
    """An in-memory hub for tests, reached through ``transport``.

    ``down = True`` makes every request fail with ``httpx.ConnectError``;
    ``fail_next(n, status)`` answers the next ``n`` requests with an error.
    ``requests`` lists ``(method, path)`` of every request received.
    Registrations, batches and configs are accepted or refused by the hub's
    own rules (:func:`~unity_sdk.parse_metadata`, :func:`~unity_sdk.accept_batch`,
    :func:`~unity_sdk.validate_config`), with the same status, message and
    details. ``admin_token`` stands for a person's token: it may
    ``PUT /{id}/config`` and reads configs with secrets masked.
    ``set_config`` sets a config without checking it.
    """

    def __init__(
        self,
        *,
        in_hub_plugins: set[str] | None = None,
        max_body_bytes: int = 4 << 20,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    ):
        self.transport = httpx.MockTransport(self._handle)
        self.plugins: dict[str, FakePlugin] = {}
        self.in_hub_plugins = set(in_hub_plugins or ())
        self.max_body_bytes = max_body_bytes
        self.max_future_skew = max_future_skew
        self.down = False
        self.requests: list[tuple[str, str]] = []
        self._enrollment: dict[str, int | None] = {}
        self._keys: dict[str, str] = {}
        self._owners: dict[str, str] = {}
        self._registered: dict[tuple[str, str, str], RegisterResponse] = {}
        self._revoked: set[str] = set()
        self._failures: list[_Failure] = []
        self._preset: dict[str, tuple[dict[str, Any], float | None, bool]] = {}
        self.enrollment_token = self.create_enrollment_token(uses=None)
        self.admin_token = "unity_" + secrets.token_urlsafe(16)

    # -- what a test sets up ---------------------------------------------

    def create_enrollment_token(self, uses: int | None = 1) -> str:
        """A new enrollment token, good for ``uses`` registrations (None: unlimited)."""
        token = ENROLLMENT_PREFIX + secrets.token_urlsafe(16)
        self._enrollment[token] = uses
        return token

    def set_config(
        self,
        plugin_id: str,
        config: Mapping[str, Any],
        *,
        interval: float | None = None,
        enabled: bool = True,
    ) -> None:
        """Set what ``GET /{plugin_id}/config`` answers (before or after registration)."""
        plugin = self.plugins.get(plugin_id)
        if plugin is None:
            self._preset[plugin_id] = (dict(config), interval, enabled)
        else:
            plugin.config, plugin.interval, plugin.enabled = dict(config), interval, enabled

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        retry_after: float | None = None,
        after_handling: bool = False,
    ) -> None:
        """Answer the next ``n`` requests with ``status``.

        With ``after_handling`` the request is handled first (a batch is
        stored) and only the answer fails: a lost response.
        """
        self._failures.extend(_Failure(status, retry_after, after_handling) for _ in range(n))

    def revoke(self, plugin_id: str) -> None:
        """Revoke every key of ``plugin_id``: its requests answer 401 from now on."""
        self._revoked.update(key for key, owner in self._keys.items() if owner == plugin_id)

    def samples(self, plugin_id: str) -> list[Sample]:
        return self.plugins[plugin_id].samples if plugin_id in self.plugins else []

    def health(self, plugin_id: str) -> list[HealthReport]:
        return self.plugins[plugin_id].health if plugin_id in self.plugins else []

    def count(self, method: str, endpoint: str) -> int:
        """How many requests ended in ``endpoint`` (``register``, ``metrics``...)."""
        return sum(1 for m, path in self.requests if m == method and path.endswith(endpoint))

    # -- the transport ---------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if self.down:
            raise httpx.ConnectError("fake hub is down", request=request)
        failure = self._failures.pop(0) if self._failures else None
        if failure and not failure.after_handling:
            return self._failure(failure)
        try:
            status, body = self._route(request)
        except _Reply as reply:
            error = {"code": ERROR_CODES.get(reply.status, "error"), "message": reply.message}
            if reply.details is not None:
                error["details"] = reply.details
            status, body = reply.status, {"error": error}
        if failure:
            return self._failure(failure)
        return httpx.Response(status, json=body)

    @staticmethod
    def _failure(failure: _Failure) -> httpx.Response:
        headers = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = str(failure.retry_after)
        code = ERROR_CODES.get(failure.status, "error")
        body = {"error": {"code": code, "message": "fake hub failure"}}
        return httpx.Response(failure.status, json=body, headers=headers)

    def _route(self, request: httpx.Request) -> tuple[int, Any]:
        path = request.url.path.removeprefix(API_PATH).strip("/").split("/")
        if len(request.content) > self.max_body_bytes:
            raise _Reply(413, "request body is too large")
        if request.method == "POST" and path == ["register"]:
            return 201, self._register(request)
        if len(path) != 2:
            raise _Reply(404, "not found")
        plugin_id, endpoint = path
        if _bearer(request) == self.admin_token:
            return self._admin(request, plugin_id, endpoint)
        plugin = self._authorize(request, plugin_id)
        if request.method == "GET" and endpoint == "config":
            return 200, self._config(plugin_id, plugin, plugin_view(plugin.metadata, plugin.config))
        if request.method == "POST" and endpoint == "metrics":
            return 200, self._metrics(request, plugin, self.max_future_skew)
        if request.method == "POST" and endpoint == "health":
            report = _parse(HealthReport, request.content)
            plugin.health.append(report)
            answer = HealthAccepted(
                plugin_id=plugin_id, status=report.status, received_at=datetime.now(UTC)
            )
            return 200, answer.model_dump(mode="json")
        raise _Reply(404, "not found")

    def _register(self, request: httpx.Request) -> dict[str, Any]:
        """As the hub: an id belongs to the token of its first registration, and a
        repeat with the same token, id and ``key_secret`` gets the same key back."""
        token = _bearer(request)
        if token not in self._enrollment:
            raise _Reply(401, "enrollment token is invalid, expired or used up")
        body = _parse(RegisterRequest, request.content)
        try:
            metadata = parse_metadata(body.metadata)
        except MetadataError as exc:
            raise _Reply(422, str(exc), exc.errors or None) from None
        if metadata.id in self.in_hub_plugins:
            raise _Reply(409, f"plugin id {metadata.id!r} belongs to an in-hub plugin")
        if self._owners.get(metadata.id, token) != token:
            raise _Reply(
                409, f"plugin id {metadata.id!r} is already registered by another enrollment token"
            )
        repeat = (token, metadata.id, body.key_secret) if body.key_secret else None
        if repeat in self._registered and repeat is not None:
            answer = self._registered[repeat]
            if answer.api_key not in self._revoked:
                return answer.model_dump(mode="json")
        uses = self._enrollment[token]
        if uses is not None and uses <= 0:
            raise _Reply(401, "enrollment token is invalid, expired or used up")
        if uses is not None:
            self._enrollment[token] = uses - 1
        self._owners[metadata.id] = token
        if metadata.id in self.plugins:
            self.plugins[metadata.id].metadata = metadata
        else:
            config, interval, enabled = self._preset.pop(metadata.id, ({}, None, True))
            self.plugins[metadata.id] = FakePlugin(metadata, config, interval, enabled)
        key_id = secrets.token_hex(6)
        key = f"{API_KEY_PREFIX}{key_id}_{body.key_secret or secrets.token_urlsafe(32)}"
        self._keys[key] = metadata.id
        answer = RegisterResponse(plugin_id=metadata.id, api_key=key, key_id=key_id)
        if repeat is not None:
            self._registered[repeat] = answer
        return answer.model_dump(mode="json")

    def _authorize(self, request: httpx.Request, plugin_id: str) -> FakePlugin:
        key = _bearer(request)
        owner = self._keys.get(key)
        if owner is None or key in self._revoked:
            raise _Reply(401, "API key is invalid or revoked")
        if owner != plugin_id or plugin_id not in self.plugins:
            raise _Reply(403, f"this key does not belong to plugin {plugin_id!r}")
        return self.plugins[plugin_id]

    def _admin(self, request: httpx.Request, plugin_id: str, endpoint: str) -> tuple[int, Any]:
        """What a person's token may do here: read and replace a config."""
        plugin = self.plugins.get(plugin_id)
        if plugin is None:
            raise _Reply(404, f"no plugin with id {plugin_id!r}")
        if request.method == "PUT" and endpoint == "config":
            raw = _json(request.content)
            if not isinstance(raw, dict):
                raise _Reply(422, "the config must be a JSON object")
            try:
                validated = validate_config(plugin.metadata, raw, previous=plugin.config)
            except ConfigError as exc:
                raise _Reply(422, str(exc), exc.errors) from None
            plugin.config, plugin.interval = validated.stored, validated.interval
        elif not (request.method == "GET" and endpoint == "config"):
            raise _Reply(404, "not found")
        return 200, self._config(plugin_id, plugin, mask_secrets(plugin.metadata, plugin.config))

    @staticmethod
    def _config(plugin_id: str, plugin: FakePlugin, config: dict[str, Any]) -> dict[str, Any]:
        answer = PluginConfig(
            plugin_id=plugin_id,
            config=config,
            interval=plugin.interval or plugin.metadata.default_interval,
            enabled=plugin.enabled,
            config_schema=plugin.metadata.config_json_schema(),
        )
        return answer.model_dump(mode="json")

    @staticmethod
    def _metrics(
        request: httpx.Request, plugin: FakePlugin, max_future_skew: timedelta
    ) -> dict[str, Any]:
        try:
            batch = accept_batch(
                plugin.metadata, _json(request.content), max_future_skew=max_future_skew
            )
        except BatchRefusedError as exc:
            raise _Reply(exc.status, str(exc), exc.errors or None) from None
        if any(stored.batch_id == batch.batch_id for stored in plugin.batches):
            return BatchAccepted(stored=0, duplicate=True).model_dump(mode="json")
        plugin.batches.append(batch)
        return BatchAccepted(stored=len(batch.samples)).model_dump(mode="json")


def _bearer(request: httpx.Request) -> str:
    header: str = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise _Reply(401, "missing bearer credential")
    return credential


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        raise _Reply(400, "request body is not JSON") from None


def _parse(model: type[_Model], content: bytes) -> _Model:
    try:
        return model.model_validate(_json(content))
    except ValidationError as exc:
        raise _Reply(422, "request body is not valid", error_details(exc)) from None


# -- running a plugin once ------------------------------------------------


async def collect_once(
    plugin: type[PluginBase[Any]] | PluginBase[Any], config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Run a plugin once like the hub does and return its document.

    The config is validated by :func:`unity_sdk.validate_config` (``ConfigError``
    when it does not fit, as the hub would answer 422); then ``on_enable``,
    ``collect_data``, ``on_disable``. A document larger than the hub's default
    limit raises ``DocumentTooLargeError``.
    """
    if isinstance(plugin, type):
        # As the hub does: metadata from a bare instance, then one with the config.
        metadata = plugin().get_metadata()
        instance = plugin(config=validate_config(metadata, config or {}).plugin)
    else:
        instance = plugin
        given = instance.config if config is None else config
        if isinstance(given, BaseModel):
            # Already a config model (secrets and all): checked against that model.
            try:
                instance.config = type(given).model_validate(given.model_dump())
            except ValidationError as exc:
                raise ConfigError("config is not valid", error_details(exc)) from None
        else:
            instance.config = validate_config(instance.get_metadata(), given).plugin
    await instance.on_enable()
    try:
        document = await instance.collect_data()
    finally:
        await instance.on_disable()
    if not isinstance(document, dict):
        raise AssertionError(f"collect_data returned {type(document).__name__}, expected a dict")
    # The hub refuses documents past its default size limit; fail here first.
    encode_document(document)
    return document


def assert_valid_document(metadata: PluginMetadata, document: Any) -> None:
    """Fail with every problem of ``document`` against the declared metrics."""
    problems = check_document(metadata, document)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise AssertionError(f"document of plugin {metadata.id!r} is not valid:\n{listing}")


async def check_plugin(
    plugin: type[PluginBase[Any]] | PluginBase[Any], config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``collect_once`` then ``assert_valid_document``; returns the document.

    Fails first when the hub's loader would refuse the plugin
    (:func:`unity_sdk.check_plugin_class`: a config field named like a hub
    key, two metrics sharing a Prometheus name, a sync hook...).
    """
    try:
        metadata = check_plugin_class(plugin if isinstance(plugin, type) else type(plugin))
    except MetadataError as exc:
        listing = "\n".join(f"  - {e['msg']}" for e in exc.errors) or f"  - {exc}"
        raise AssertionError(f"the hub would refuse this plugin:\n{listing}") from None
    document = await collect_once(plugin, config)
    assert_valid_document(metadata, document)
    return document
