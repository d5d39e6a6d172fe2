"""``HubClient``: an external plugin's async client for the hub's plugin API.

It talks to the four endpoints of :mod:`unity_sdk._wire` (and, for an agent,
those of :mod:`unity_sdk._agent_wire`) with the wire models the hub itself
uses. Transient failures (connection errors, 5xx, 429) are retried with
full-jitter exponential backoff, honouring ``Retry-After``; any other 4xx is
final at once. Failures surface as :class:`unity_sdk.HubError`
subclasses carrying the hub's own message. Example::

    async with HubClient("http://hub:8000") as hub:
        registered = await hub.register_plugin(metadata, enrollment_token=token)
        # hub.api_key is now the plugin's key (shown once: store it)
        await hub.report_metrics(metadata.id, [Sample(host=..., timestamp=..., data=...)])
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from unity_sdk._agent_wire import (
    AGENT_API_PATH,
    AgentStatus,
    Assignments,
    HostPlatform,
    JoinRequest,
    JoinResponse,
    ProposalReport,
    ProposalsAccepted,
    StatusAccepted,
)
from unity_sdk._wire import (
    KEY_SECRET_PATTERN,
    BatchAccepted,
    HealthAccepted,
    HealthReport,
    MetricBatch,
    PluginConfig,
    RegisterRequest,
    RegisterResponse,
    Sample,
    new_key_secret,
)
from unity_sdk.errors import (
    HubAuthError,
    HubError,
    HubRequestError,
    HubUnavailableError,
    error_details,
)
from unity_sdk.metadata import PluginMetadata

# httpx is imported when a client is made: a hub that imports the SDK for its
# models never loads it (nor the command-line extras httpx pulls in).
if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["API_PATH", "HubClient"]

API_PATH = "/api/plugins/v2"

logger = logging.getLogger("unity_sdk._client")

_Model = TypeVar("_Model", bound=BaseModel)


def _metadata_json(metadata: PluginMetadata | Mapping[str, Any]) -> dict[str, Any]:
    """Metadata in the JSON form the hub stores: config_schema as JSON Schema.

    A mapping is sent as given (the hub validates it and answers 422), except
    that a pydantic ``config_schema`` class becomes its JSON Schema.
    """
    if isinstance(metadata, PluginMetadata):
        document = metadata.model_dump(mode="json", exclude={"config_schema"})
        document["config_schema"] = metadata.config_json_schema()
        return document
    document = dict(metadata)
    schema = document.get("config_schema")
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        document["config_schema"] = schema.model_json_schema()
    return document


class HubClient:
    """Async client of ``/api/plugins/v2`` for one external plugin.

    ``base_url`` is the hub's address (``http://hub:8000``). ``api_key`` is the
    plugin's key; ``register_plugin`` sets it, or set it from saved state.
    ``max_retries`` counts retries after the first attempt; the delay before
    retry *n* is uniform in ``[0, min(backoff_max, backoff_base * 2**n)]``.
    ``transport`` replaces the network (e.g. ``FakeHub.transport`` in tests).
    ``verify`` is httpx's: an ``ssl.SSLContext`` pins a certificate (the agent
    trusts only the one it saw when it joined).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix(API_PATH)
        # Every secret this client has seen, scrubbed from error messages.
        self._secrets: set[str] = set()
        self.api_key = api_key
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        import httpx

        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            verify=verify,
            headers={"Accept": "application/json"},
        )

    @property
    def api_key(self) -> str | None:
        return self._api_key

    @api_key.setter
    def api_key(self, value: str | None) -> None:
        self._api_key = value
        if value:
            self._secrets.add(value)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"<HubClient {self.base_url} api_key={key}>"

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def register_plugin(
        self,
        metadata: PluginMetadata | Mapping[str, Any],
        *,
        enrollment_token: str,
        hostname: str | None = None,
        key_secret: str | None = None,
    ) -> RegisterResponse:
        """Register with an enrollment token; returns (and adopts) the plugin's key.

        The client proposes the key's secret (``key_secret``, else a fresh
        one): every retry of this call sends the same one, so a registration
        whose answer was lost is answered with the same key and does not spend
        the token again. To survive a restart, save ``key_secret`` before
        calling (``KeyStore.proposed_secret`` does) and pass it again. The key
        is shown once: save ``RegisterResponse.api_key``.
        """
        self._secrets.add(enrollment_token)
        if key_secret is None:
            key_secret = new_key_secret()
        elif re.fullmatch(KEY_SECRET_PATTERN, key_secret) is None:
            # Not pydantic's error: it would quote the secret.
            raise ValueError("key_secret must be 43 URL-safe base64 characters (new_key_secret)")
        self._secrets.add(key_secret)
        body = RegisterRequest(
            metadata=_metadata_json(metadata),
            hostname=hostname or socket.gethostname(),
            key_secret=key_secret,
        )
        path = f"{API_PATH}/register"
        answer = await self._call("POST", path, enrollment_token, body, RegisterResponse)
        self.api_key = answer.api_key
        return answer

    async def report_metrics(
        self, plugin_id: str, samples: Sequence[Sample], *, batch_id: str | None = None
    ) -> BatchAccepted:
        """Send one batch (stored whole or not at all).

        Every retry reuses the batch id, so a batch whose answer was lost is
        stored once: the hub answers the repeat with ``duplicate: true``.
        """
        batch = MetricBatch(batch_id=batch_id or uuid.uuid4().hex, samples=list(samples))
        return await self._call(
            "POST", self._path(plugin_id, "metrics"), None, batch, BatchAccepted
        )

    async def get_config(self, plugin_id: str) -> PluginConfig:
        """The plugin's current config, with real values for its own key."""
        return await self._call("GET", self._path(plugin_id, "config"), None, None, PluginConfig)

    async def update_health(self, plugin_id: str, report: HealthReport) -> HealthAccepted:
        """Report the plugin's health and buffer state."""
        path = self._path(plugin_id, "health")
        return await self._call("POST", path, None, report, HealthAccepted)

    # -- the agent API --------------------------------------------------------------

    async def join_agent(
        self,
        platform: HostPlatform,
        *,
        enrollment_token: str,
        host_id: str | None = None,
        key_secret: str | None = None,
    ) -> JoinResponse:
        """Join this host with an enrollment token; returns (and adopts) the agent's key.

        As with :meth:`register_plugin`, every retry proposes the same
        ``key_secret``, so a join whose answer was lost gets the same key and
        does not spend the token again. The key is shown once: save it."""
        self._secrets.add(enrollment_token)
        if key_secret is None:
            key_secret = new_key_secret()
        elif re.fullmatch(KEY_SECRET_PATTERN, key_secret) is None:
            raise ValueError("key_secret must be 43 URL-safe base64 characters (new_key_secret)")
        self._secrets.add(key_secret)
        body = JoinRequest(platform=platform, host_id=host_id, key_secret=key_secret)
        path = f"{AGENT_API_PATH}/join"
        answer = await self._call("POST", path, enrollment_token, body, JoinResponse)
        self.api_key = answer.api_key
        return answer

    @overload
    async def get_assignments(self) -> Assignments: ...

    @overload
    async def get_assignments(self, revision: str | None) -> Assignments | None: ...

    async def get_assignments(self, revision: str | None = None) -> Assignments | None:
        """What this agent runs, with real config values (never log them).

        With the ``revision`` the agent runs, the hub answers 304 when nothing
        changed: then ``None``, and the hub opened no secret to answer."""
        path = f"{AGENT_API_PATH}/assignments"
        if revision is None:
            return await self._call("GET", path, None, None, Assignments)
        if not self._api_key:
            raise HubAuthError("no API key: join the hub or set HubClient.api_key")
        response = await self._send(
            "GET", path, self._api_key, None, headers={"If-None-Match": f'"{revision}"'}
        )
        if response.status_code == 304:
            return None
        try:
            return Assignments.model_validate_json(response.content)
        except ValidationError as exc:
            raise HubRequestError(
                f"GET {path}: the hub answered with an unexpected body",
                status=response.status_code,
                details=error_details(exc),
            ) from None

    async def report_agent_status(self, status: AgentStatus) -> StatusAccepted:
        """The agent's buffer counts and the instances it cannot run."""
        path = f"{AGENT_API_PATH}/status"
        return await self._call("POST", path, None, status, StatusAccepted)

    async def report_proposals(self, report: ProposalReport) -> ProposalsAccepted:
        """Every proposal of one discovery scan of this host."""
        path = f"{AGENT_API_PATH}/proposals"
        return await self._call("PUT", path, None, report, ProposalsAccepted)

    @staticmethod
    def _path(plugin_id: str, endpoint: str) -> str:
        return f"{API_PATH}/{quote(plugin_id, safe='')}/{endpoint}"

    async def _call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: BaseModel | None,
        answer: type[_Model],
    ) -> _Model:
        token = token or self._api_key
        if not token:
            raise HubAuthError("no API key: register the plugin or set HubClient.api_key")
        response = await self._send(method, path, token, body)
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as exc:
            raise HubRequestError(
                f"{method} {path}: the hub answered with an unexpected body",
                status=response.status_code,
                details=error_details(exc),
            ) from None

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        body: BaseModel | None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The hub's answer: a success, or a 304 to a conditional request."""
        import httpx

        headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        # pydantic's JSON keeps the wire format exact (UTC timestamps); the wire models
        # have already refused numbers the hub cannot store.
        content = body.model_dump_json() if body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, content=content, headers=headers)
            except httpx.TransportError as exc:
                failure: HubError = HubUnavailableError(
                    f"{method} {path}: hub at {self.base_url} is unreachable "
                    f"({type(exc).__name__}: {self._redact(str(exc)) or 'no detail'})"
                )
                delay = self._backoff(attempt)
            else:
                if response.is_success or response.status_code == 304:
                    return response
                failure = self._error(method, path, response)
                if not isinstance(failure, HubUnavailableError):
                    raise failure
                retry_after = self._retry_after(response)
                delay = self._backoff(attempt) if retry_after is None else retry_after
            if attempt >= self.max_retries:
                raise failure
            attempt += 1
            logger.warning("%s; retry %d/%d in %.2fs", failure, attempt, self.max_retries, delay)
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                return None
        return min(max(seconds, 0.0), self.backoff_max)

    def _error(self, method: str, path: str, response: httpx.Response) -> HubError:
        status = response.status_code
        message, details = f"{method} {path} failed", None
        try:
            error = response.json()["error"]
            message, details = str(error["message"]), error.get("details")
        except (ValueError, KeyError, TypeError):
            if response.text.strip():
                message = response.text.strip()[:500]
        message = self._redact(message)
        if status >= 500 or status == 429:
            return HubUnavailableError(message, status=status, details=details)
        if status in (401, 403):
            return HubAuthError(message, status=status, details=details)
        return HubRequestError(message, status=status, details=details)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
