"""``ExternalPluginBase``: a plugin that runs in its own process and reports to a hub.

The author writes the same two methods as for an in-hub plugin; ``run`` does
the rest::

    class Ups(ExternalPluginBase):
        def get_metadata(self) -> PluginMetadata: ...
        async def collect_data(self) -> dict[str, Any]: ...

    if __name__ == "__main__":
        raise SystemExit(Ups().run_forever("http://hub:8000", enrollment_token="unitye_..."))

The loop: register once (the key is saved, see :mod:`unity_sdk._keystore`; a
registration whose answer was lost is repeated with the same proposed key and
does not spend the enrollment token again) or reuse the saved key; fetch the
config; then every interval collect one sample into a bounded buffer, send
the buffer in batches, report health and pick up config changes. While the
hub is unreachable samples stay buffered (the oldest dropped first when full)
and are replayed in order when it returns. A refused key (revoked) stops the
loop: it never re-registers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unity_sdk._buffer import SampleBuffer
from unity_sdk._client import HubClient
from unity_sdk._keystore import KeyStore, SavedKey
from unity_sdk._wire import (
    MAX_HEALTH_DETAILS_BYTES,
    HealthReport,
    PluginConfig,
    Sample,
    json_size,
)
from unity_sdk.errors import (
    CollectionError,
    HubAuthError,
    HubRequestError,
    HubUnavailableError,
    PluginError,
    UnityError,
)
from unity_sdk.metadata import HealthState, HealthStatus, PluginMetadata
from unity_sdk.plugin import PluginBase

if TYPE_CHECKING:
    import httpx

__all__ = ["ExternalPluginBase"]


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, waking early when ``stop`` is set."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class ExternalPluginBase(PluginBase):
    """A plugin with its own run loop, reporting to a hub over HTTP.

    Class attributes tune the loop: the hub client's per-request retries are
    kept short because the loop itself retries every interval.
    """

    hub_timeout: float = 10.0
    hub_max_retries: int = 2
    hub_backoff_max: float = 2.0
    final_flush_timeout: float = 5.0

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._buffer = SampleBuffer(10_000)
        self._sent = 0
        self._interval = 60.0
        self._enabled = True
        self._collect_error: BaseException | None = None

    @property
    def buffered(self) -> int:
        """Samples collected and not yet accepted by the hub."""
        return len(self._buffer)

    @property
    def dropped(self) -> int:
        """Samples lost because the buffer was full (oldest first)."""
        return self._buffer.dropped

    @property
    def rejected(self) -> int:
        """Samples the hub refused as invalid (422) and that were discarded."""
        return self._buffer.rejected

    @property
    def sent(self) -> int:
        """Samples the hub accepted."""
        return self._sent

    @property
    def interval(self) -> float:
        """Seconds between collections: the hub's config, else the metadata default."""
        return self._interval

    def run_forever(
        self,
        hub_url: str,
        *,
        enrollment_token: str | None = None,
        state_dir: str | Path | None = None,
        hostname: str | None = None,
        buffer_size: int = 10_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> int:
        """Run until SIGTERM or SIGINT; returns an exit status (0: stopped cleanly)."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await self.run(
                hub_url,
                enrollment_token=enrollment_token,
                state_dir=state_dir,
                hostname=hostname,
                buffer_size=buffer_size,
                stop_event=stop,
                transport=transport,
            )

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        try:
            asyncio.run(main())
        except UnityError as exc:
            self.logger.error("stopped: %s", exc)
            return 1
        return 0

    async def run(
        self,
        hub_url: str,
        *,
        enrollment_token: str | None = None,
        state_dir: str | Path | None = None,
        hostname: str | None = None,
        buffer_size: int = 10_000,
        stop_event: asyncio.Event | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Register or reuse the saved key, then collect and report until stopped.

        Returns when ``stop_event`` is set (after a last flush and
        ``on_disable``). Raises ``HubAuthError`` when the hub refuses the key
        and ``HubRequestError`` when it refuses the registration.
        ``transport`` replaces the network (``FakeHub.transport`` in tests).
        """
        self._buffer = SampleBuffer(buffer_size)
        metadata = self.get_metadata()
        stop = stop_event or asyncio.Event()
        host = hostname or socket.gethostname()
        self._interval = metadata.default_interval
        keys = KeyStore(metadata.id, state_dir)
        async with HubClient(
            hub_url,
            timeout=self.hub_timeout,
            max_retries=self.hub_max_retries,
            backoff_max=self.hub_backoff_max,
            transport=transport,
        ) as hub:
            try:
                if not await self._connect(hub, metadata, keys, enrollment_token, host, stop):
                    return
            except HubAuthError as exc:
                self.logger.error("cannot start %s: %s", metadata.id, exc)
                raise
            await self.on_enable()
            try:
                await self._loop(hub, metadata, host, stop)
            except HubAuthError as exc:
                self.logger.error(
                    "the hub refused the key of %s (revoked?): %s; stopping. To enroll "
                    "again, delete %s and start with a new enrollment token",
                    metadata.id,
                    exc,
                    keys.path,
                )
                raise
            finally:
                await self.on_disable()

    async def _connect(
        self,
        hub: HubClient,
        metadata: PluginMetadata,
        keys: KeyStore,
        enrollment_token: str | None,
        host: str,
        stop: asyncio.Event,
    ) -> bool:
        """Get a key and the first config, waiting for the hub; False if stopped first."""
        while not stop.is_set():
            try:
                saved = keys.load()
                if saved is None:
                    if not enrollment_token:
                        raise HubAuthError(
                            f"no saved key in {keys.path} and no enrollment token to register with"
                        )
                    # Saved before the request: a lost answer is retried with the same key.
                    proposed = keys.proposed_secret(hub.base_url)
                    answer = await hub.register_plugin(
                        metadata,
                        enrollment_token=enrollment_token,
                        hostname=host,
                        key_secret=proposed,
                    )
                    saved = SavedKey(**answer.model_dump(), hub_url=hub.base_url)
                    keys.save(saved)
                    self.logger.info("registered %s; key saved in %s", metadata.id, keys.path)
                hub.api_key = saved.api_key
                self._apply_config(await hub.get_config(metadata.id), metadata)
                return True
            except HubUnavailableError as exc:
                self.logger.warning("hub unreachable (%s); retrying in %gs", exc, self._interval)
                await _wait(stop, self._interval)
        return False

    def _apply_config(self, answer: PluginConfig, metadata: PluginMetadata) -> bool:
        """Adopt the hub's config and interval; True when the config changed."""
        self._interval = answer.interval or metadata.default_interval
        if answer.enabled != self._enabled:
            self.logger.info(
                "%s %s on the hub", metadata.id, "enabled" if answer.enabled else "disabled"
            )
        self._enabled = answer.enabled
        if answer.config == self.config:
            return False
        self.config = dict(answer.config)
        return True

    async def _loop(
        self, hub: HubClient, metadata: PluginMetadata, host: str, stop: asyncio.Event
    ) -> None:
        loop = asyncio.get_running_loop()
        next_run = loop.time()
        while not stop.is_set():
            if self._enabled:
                await self._collect(metadata, host)
            if stop.is_set():
                break
            try:
                await self._flush(hub, metadata.id)
                await self._report_health(hub, metadata.id)
                if self._apply_config(await hub.get_config(metadata.id), metadata):
                    await self._config_changed()
            except HubUnavailableError as exc:
                self.logger.warning("hub unreachable, %d samples buffered: %s", self.buffered, exc)
            except HubRequestError as exc:
                self.logger.error("the hub refused a request: %s", exc)
            next_run = max(next_run + self._interval, loop.time())
            await _wait(stop, next_run - loop.time())
        await self._final_flush(hub, metadata.id)

    async def _config_changed(self) -> None:
        try:
            await self.on_config_change(self.config)
        except Exception:
            self.logger.exception("on_config_change failed")

    async def _collect(self, metadata: PluginMetadata, host: str) -> None:
        timestamp = datetime.now(UTC)
        try:
            data = await asyncio.wait_for(self.collect_data(), metadata.timeout)
            if not isinstance(data, dict):
                raise CollectionError(f"collect_data returned {type(data).__name__}, not a dict")
            sample = Sample(host=host, timestamp=timestamp, data=data)
            # Round-trip now: a value that is not JSON fails this run, not every flush.
            sample = Sample.model_validate_json(sample.model_dump_json())
        except Exception as exc:
            self._collect_error = exc
            # A traceback helps with a bug in the plugin, not with a reported failure.
            expected = isinstance(exc, PluginError | TimeoutError)
            self.logger.warning("collection failed: %s", _describe(exc), exc_info=not expected)
            try:
                await self.on_error(exc)
            except Exception:
                self.logger.exception("on_error failed")
            return
        self._collect_error = None
        self._buffer.append(sample)

    async def _flush(self, hub: HubClient, plugin_id: str) -> None:
        """Send the buffer in order; samples leave it only once accepted."""
        while (batch := self._buffer.next_batch()) is not None:
            batch_id, samples = batch
            try:
                await hub.report_metrics(plugin_id, samples, batch_id=batch_id)
            except HubRequestError as exc:
                if discarded := self._buffer.refused(exc):
                    self.logger.error("the hub refused %d sample(s): %s", discarded, exc)
                continue
            self._sent += self._buffer.accepted()

    async def _report_health(self, hub: HubClient, plugin_id: str) -> None:
        if self._collect_error is not None:
            error = self._collect_error
            status = HealthStatus.unhealthy(f"collection failed: {_describe(error)}")
        else:
            try:
                status = await self.health_check()
            except Exception as exc:
                status = HealthStatus.unhealthy(f"health check failed: {_describe(exc)}")
        counters = {"sent": self._sent, "rejected": self.rejected}
        details = {**status.details, **counters}
        state, message = status.status, status.message
        if (size := json_size(details)) > MAX_HEALTH_DETAILS_BYTES:
            # The hub refuses such a report; send the state without the bulk.
            details = counters
            state = HealthState.DEGRADED if state is HealthState.HEALTHY else state
            message = (
                f"health details dropped ({size} bytes, at most {MAX_HEALTH_DETAILS_BYTES}); "
                + message
            )
        report = HealthReport(
            status=state,
            message=message[:2000],
            details=details,
            buffered=self.buffered,
            dropped=self.dropped,
        )
        await hub.update_health(plugin_id, report)

    async def _final_flush(self, hub: HubClient, plugin_id: str) -> None:
        try:
            async with asyncio.timeout(self.final_flush_timeout):
                await self._flush(hub, plugin_id)
        except (TimeoutError, HubUnavailableError, HubRequestError) as exc:
            self.logger.warning("stopping with %d samples unsent: %s", self.buffered, exc)
