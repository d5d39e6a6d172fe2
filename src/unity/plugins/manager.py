"""The plugin manager: one long-lived object that owns every loaded plugin.

It syncs the registry, enables and disables (rescheduling at once), runs
collections and records them, checks health, validates and applies config,
hot-reloads plugin code and shuts everything down cleanly. The API and CLI
only ever talk to this object.

Credentials referenced by a config (``{"$credential": name}``) are resolved
from the credentials store right before the hub calls into the plugin (each
resolution audited); a remote-capable plugin gets one instance per target
in its ``targets``, each with an SSH runner (:mod:`unity.plugins.targets`).

No plugin can hold the hub: loading is bounded (``plugin_load_timeout``),
start-up does not wait for slow ``on_enable`` hooks, output and documents are
capped per run, and :meth:`PluginManager.stop` returns within
``shutdown_grace_seconds`` whatever the plugins do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from unity.auth.tokens import SESSION_TOKEN_PREFIX
from unity.credentials import (
    CredentialStore,
    Keyring,
    audit,
    load_keyring,
    sealing,
)
from unity.plugins import config as plugin_config
from unity.plugins import output
from unity.plugins.isolation import run_isolated
from unity.plugins.links import ConfigLinks
from unity.plugins.loader import (
    LoadedPlugin,
    LoadFailure,
    PluginLoader,
    remember_installed_packages,
)
from unity.plugins.runtime import (
    HOOK_TIMEOUT,
    ManagedPlugin,
    PluginNotFoundError,
    PluginStateError,
    RunResult,
    RunState,
    as_document,
    as_health,
    describe_error,
    run_data,
)
from unity.plugins.scheduler import Scheduler
from unity.plugins.stats import HubStats
from unity.plugins.targets import TargetsFailedError
from unity.plugins.worker import PluginWorker
from unity.settings import Settings
from unity.storage import housekeeping, registry
from unity.storage import metrics as metric_store
from unity.storage.db import Database, is_unavailable
from unity.storage.models import Plugin
from unity.storage.types import utcnow
from unity_sdk import (
    ConfigError,
    HealthStatus,
    PluginError,
    PluginMetadata,
)

__all__ = [
    "ManagedPlugin",
    "PluginManager",
    "PluginNotFoundError",
    "PluginStateError",
    "RunResult",
    "RunState",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds of the shutdown grace period kept for closing the database and exiting.
_CLOSE_RESERVE = 1.0


class PluginManager:
    """Owns the loaded plugins, their workers, the scheduler and the registry sync."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        loader: PluginLoader | None = None,
        *,
        keyring: Keyring | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self._keyring = keyring
        self.loader = loader or PluginLoader(skip=settings.disabled_plugins)
        self.stats = HubStats()
        self.plugins: dict[str, ManagedPlugin] = {}
        self.failures: dict[str, LoadFailure] = {}
        self.scheduler = Scheduler(
            self._scheduled_run,
            self._record_skip,
            jitter=settings.scheduler_jitter,
            on_lateness=self.stats.lateness.observe,
        )
        self.links = ConfigLinks(
            db, settings, keyring=lambda: self.keyring, store=lambda: self.credentials
        )
        self._background: set[asyncio.Future[Any]] = set()
        self._started = False

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Discover plugins, sync the registry, activate and schedule enabled ones.

        Returns within about twice ``plugin_load_timeout`` plus the database work:
        loading is bounded, and ``on_enable`` hooks still running by then go on
        in the background (their plugin is scheduled when the hook returns).
        """
        output.guard.install()
        remember_installed_packages()
        # discover() returns by its deadline; threads stuck in plugin code are abandoned.
        loaded, failures = await asyncio.to_thread(
            self.loader.discover, self.settings.plugin_load_timeout
        )
        self.failures = {f.name: f for f in failures}
        for _ in failures:
            self.stats.load_failures.inc()
        async with self.db.session() as session:
            first_start = not await registry.list_plugins(session, limit=1)
        for plugin in loaded:
            await self._register(plugin, autoenable=first_start)
        await self._seal_external_configs()
        activations = [
            asyncio.ensure_future(self._activate_at_start(managed))
            for managed in self.plugins.values()
            if managed.enabled
        ]
        if activations:
            _, slow = await asyncio.wait(activations, timeout=self.settings.plugin_load_timeout)
            for task in slow:
                self._track(task, "activate")
            if slow:
                log.warning("%d plugins are still in on_enable; starting without them", len(slow))
        self._spawn(self._retention_loop(), "retention")
        self._started = True
        log.info(
            "%d plugins loaded, %d enabled, %d failed to load",
            len(self.plugins),
            sum(m.enabled for m in self.plugins.values()),
            len(self.failures),
        )

    async def rescan(self) -> tuple[list[str], list[LoadFailure]]:
        """Load plugins installed since start-up (new entry points); return the ids
        added and what failed to load. New plugins start disabled."""
        loaded, failures = await asyncio.to_thread(
            self.loader.discover, self.settings.plugin_load_timeout, known=set(self.plugins)
        )
        added: list[str] = []
        for plugin in loaded:
            await self._register(plugin, autoenable=False)
            self.failures.pop(plugin.id, None)
            added.append(plugin.id)
            log.info("found new plugin %s %s", plugin.id, plugin.metadata.version)
        for failure in failures:
            if failure.name not in self.failures:
                self.stats.load_failures.inc()
            self.failures[failure.name] = failure
        return added, failures

    async def stop(self, grace: float | None = None) -> None:
        """Stop scheduling and the plugins within ``grace`` seconds (default: the setting).

        Runs in flight get the first half of the period, then are cancelled
        (an isolated child is killed); ``on_disable`` hooks run concurrently in
        what is left. A plugin whose thread is still blocked gets no hook and
        its daemon thread is abandoned: it cannot keep the process alive.
        """
        loop = asyncio.get_running_loop()
        grace = self.settings.shutdown_grace_seconds if grace is None else max(0.0, grace)
        deadline = loop.time() + grace
        await self.scheduler.stop(grace=grace / 2)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        hooks = [
            asyncio.ensure_future(self._deactivate(managed)) for managed in self.plugins.values()
        ]
        if hooks:
            _, late = await asyncio.wait(
                hooks, timeout=max(0.0, deadline - _CLOSE_RESERVE - loop.time())
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning("%d plugins did not finish on_disable in time; abandoned", len(late))
        for managed in self.plugins.values():
            managed.worker.request_stop()
        # Idle threads end at once; all of them together get a fifth of a second.
        joined_by = min(loop.time() + 0.2, deadline - _CLOSE_RESERVE / 2)
        for managed in self.plugins.values():
            if not managed.worker.join(joined_by - loop.time()):
                log.warning("plugin %s is stuck in its code; its thread is abandoned", managed.id)
        output.guard.uninstall()
        self._started = False

    async def _deactivate(self, managed: ManagedPlugin) -> None:
        if managed.worker.busy:
            # Its thread is stuck in earlier code: a hook would only queue behind it.
            managed.active = False
            return
        await self.links.close_remotes(managed)
        if managed.active:
            await self._hook(managed, "on_disable")
            managed.active = False

    async def _register(self, plugin: LoadedPlugin, *, autoenable: bool) -> None:
        async with self.db.session() as session:
            row, created = await registry.sync_plugin(
                session,
                metadata=plugin.metadata,
                enable_if_new=autoenable and plugin.id in self.settings.autoenable,
            )
            stored = dict(row.config or {})
            # Secrets typed into the config are sealed at rest (also those stored
            # before the hub sealed them); the plugin gets them open.
            secrets = plugin_config.secret_fields(plugin.metadata)
            if sealing.needs_sealing(stored, secrets):
                row.config = sealing.seal_config(self.keyring, plugin.id, stored, secrets)
            try:
                stored = self.stored_config(plugin.id, stored)
                validated = plugin_config.validate(plugin.metadata, stored)
            except ConfigError as exc:
                stored = self._readable(plugin.id, stored)
                # A plugin with required settings starts unconfigured; only a stored
                # config that stopped validating (the schema changed) is an error.
                validated = plugin_config.ValidatedConfig(stored, {}, None, None)
                if stored or row.enabled:
                    log.error("stored config of %s does not validate: %s", plugin.id, exc.errors)
                    row.enabled = False
                    row.last_error = f"stored config is invalid: {exc.errors}"
            enabled = row.enabled
            failures = row.consecutive_failures
        instance = plugin.cls(config=validated.plugin)
        force_process = plugin.id in self.settings.process_isolation or (
            self.settings.isolate_entry_points and plugin.source == "entry_point"
        )
        self.plugins[plugin.id] = ManagedPlugin(
            loaded=plugin,
            instance=instance,
            worker=PluginWorker(plugin.id),
            config=validated,
            enabled=enabled,
            consecutive_failures=failures,
            force_process=force_process,
        )
        output.guard.register(plugin.id, self.settings.plugin_output_bytes)
        if force_process:
            log.info("plugin %s runs in process isolation (set by the settings)", plugin.id)
        if created:
            log.info("registered new plugin %s %s", plugin.id, plugin.metadata.version)

    async def _seal_external_configs(self) -> None:
        """Seal plain secrets in external plugins' stored configs (idempotent)."""
        async with self.db.session() as session:
            for row in await registry.list_plugins(session, limit=1_000_000):
                if not row.external or not row.config:
                    continue
                try:
                    metadata = PluginMetadata.model_validate(row.plugin_metadata)
                except ValueError:
                    continue
                secrets = plugin_config.secret_fields(metadata)
                if sealing.needs_sealing(row.config, secrets):
                    row.config = sealing.seal_config(self.keyring, row.id, row.config, secrets)

    def _unopened(self, plugin_id: str, exc: sealing.SealedValueError) -> ConfigError:
        return ConfigError(
            f"the stored config of plugin {plugin_id!r} is invalid",
            [{"loc": [exc.field], "msg": f"{exc}; set the value again"}],
        )

    def stored_config(self, plugin_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """A config as read from the database with its sealed secrets opened;
        ``ConfigError`` naming the field when one does not open."""
        if not any(sealing.is_sealed(value) for value in (config or {}).values()):
            # Nothing sealed: the keyring (and its key file) is not needed.
            return dict(config or {})
        try:
            return sealing.open_config(self.keyring, plugin_id, config)
        except sealing.SealedValueError as exc:
            raise self._unopened(plugin_id, exc) from None

    def _readable(self, plugin_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with sealed values opened, leaving out those that do not open."""
        if not any(sealing.is_sealed(value) for value in config.values()):
            return dict(config)
        return sealing.open_config(self.keyring, plugin_id, config, strict=False)

    def sealed_config(self, metadata: PluginMetadata, stored: dict[str, Any]) -> dict[str, Any]:
        """``stored`` as the database keeps it: plain values of secret fields sealed."""
        secrets = plugin_config.secret_fields(metadata)
        if not sealing.needs_sealing(stored, secrets):
            return dict(stored)
        return sealing.seal_config(self.keyring, metadata.id, stored, secrets)

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        self._track(asyncio.ensure_future(coro), name)

    def _track(self, task: asyncio.Future[Any], name: str) -> None:
        if isinstance(task, asyncio.Task):
            task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- lookups ---------------------------------------------------------------------

    @property
    def keyring(self) -> Keyring:
        """The credentials keyring (loaded from the settings on first use)."""
        if self._keyring is None:
            self._keyring = load_keyring(self.settings)
        return self._keyring

    @property
    def credentials(self) -> CredentialStore:
        return CredentialStore(self.db, self.keyring)

    def get(self, plugin_id: str) -> ManagedPlugin:
        managed = self.plugins.get(plugin_id)
        if managed is None:
            raise PluginNotFoundError(plugin_id)
        return managed

    async def row(self, plugin_id: str) -> Plugin:
        async with self.db.session() as session:
            row = await registry.get_plugin(session, plugin_id)
        if row is None:
            raise PluginNotFoundError(plugin_id)
        return row

    def _loaded(self, plugin_id: str) -> ManagedPlugin:
        if plugin_id in self.plugins:
            return self.plugins[plugin_id]
        if plugin_id in self.failures:
            raise PluginStateError(
                f"plugin {plugin_id!r} failed to load: {self.failures[plugin_id].error}"
            )
        raise PluginNotFoundError(plugin_id)

    # -- enable / disable -----------------------------------------------------------

    async def _external(self, plugin_id: str) -> tuple[Plugin, PluginMetadata] | None:
        """The registry row and metadata of an external plugin, None for in-hub ones."""
        if plugin_id in self.plugins or plugin_id in self.failures:
            return None
        row = await self.row(plugin_id)
        if not row.external:
            raise PluginStateError(
                f"the code of plugin {plugin_id!r} is not loaded (was its package removed?)"
            )
        return row, PluginMetadata.model_validate(row.plugin_metadata)

    async def metadata_for(self, plugin_id: str) -> PluginMetadata:
        """The metadata of a loaded plugin, else as stored in the registry."""
        if plugin_id in self.plugins:
            return self.plugins[plugin_id].metadata
        row = await self.row(plugin_id)
        return PluginMetadata.model_validate(row.plugin_metadata)

    async def enable(self, plugin_id: str) -> None:
        """Enable and schedule at once; ``ConfigError`` if its config is incomplete."""
        external = await self._external(plugin_id)
        if external is not None:
            row, metadata = external
            await plugin_config.validate_foreign(
                metadata,
                self.stored_config(plugin_id, row.config),
                timeout=self.settings.schema_check_seconds,
            )
            await self._update_row(plugin_id, enabled=True)
            return
        managed = self._loaded(plugin_id)
        plugin_config.validate(managed.metadata, managed.config.stored)
        # Enabled before activation, so the first scheduled run is not dropped.
        managed.enabled = True
        if not managed.active:
            try:
                await self._activate(managed)
            except PluginStateError:
                managed.enabled = False
                raise
        await self._update_row(plugin_id, enabled=True, last_error=None)

    async def disable(self, plugin_id: str) -> None:
        if await self._external(plugin_id) is not None:
            await self._update_row(plugin_id, enabled=False)
            return
        managed = self._loaded(plugin_id)
        self.scheduler.unschedule(plugin_id)
        await self.links.close_remotes(managed)
        if managed.active:
            await self._hook(managed, "on_disable")
            managed.active = False
        managed.enabled = False
        await self._update_row(plugin_id, enabled=False)

    async def _activate_at_start(self, managed: ManagedPlugin) -> None:
        try:
            await self._activate(managed)
        except PluginStateError as exc:
            log.error("plugin %s could not start: %s", managed.id, exc)

    async def _activate(self, managed: ManagedPlugin) -> None:
        if not managed.isolated:
            try:
                await self.links.apply_credentials(managed)
                await managed.worker.call(managed.instance.on_enable, timeout=HOOK_TIMEOUT)
            except Exception as exc:
                await self._update_row(managed.id, last_error=f"on_enable: {describe_error(exc)}")
                raise PluginStateError(f"on_enable failed: {describe_error(exc)}") from exc
            if not managed.enabled:
                # Disabled while a slow on_enable still ran in the background after start.
                await self._hook(managed, "on_disable")
                return
        managed.active = True
        self._schedule(managed)

    def _schedule(self, managed: ManagedPlugin) -> None:
        self.scheduler.schedule(
            managed.id,
            interval=managed.interval,
            next_delay=lambda: self.next_delay(managed),
            busy=lambda: managed.busy,
        )

    def next_delay(self, managed: ManagedPlugin) -> float:
        """The interval, an exponential backoff after consecutive failures, or longer
        when the plugin's last run used more than its share of a CPU core."""
        if managed.consecutive_failures == 0:
            return max(managed.interval, managed.cpu_delay)
        exponent = min(managed.consecutive_failures, 16)
        ceiling = max(self.settings.max_backoff_seconds, managed.interval)
        return max(float(min(managed.interval * 2.0**exponent, ceiling)), managed.cpu_delay)

    def _charge_cpu(self, managed: ManagedPlugin) -> None:
        """Space the next run so the plugin's thread keeps to its share of a core.

        Thread-mode plugins share the hub's process (and its GIL): one that burns
        CPU in every run would starve the others. The CPU its worker thread used
        since the previous run decides the shortest delay before the next one.
        """
        share = self.settings.plugin_cpu_share
        total = managed.worker.cpu_seconds()
        used, managed.cpu_mark = total - managed.cpu_mark, total
        managed.cpu_delay = used / share if share > 0 else 0.0
        if managed.cpu_delay > managed.interval:
            log.warning(
                "plugin %s used %.2f s of CPU since its previous run; its next run waits "
                "%.1f s (UNITY_PLUGIN_CPU_SHARE=%g of a core)",
                managed.id,
                used,
                managed.cpu_delay,
                share,
            )

    async def _hook(self, managed: ManagedPlugin, name: str, *args: Any) -> bool:
        if managed.isolated:
            return True
        method: Callable[..., Awaitable[None]] = getattr(managed.instance, name)
        try:
            await managed.worker.call(lambda: method(*args), timeout=HOOK_TIMEOUT)
        except Exception as exc:
            log.warning("plugin %s: %s raised %s", managed.id, name, describe_error(exc))
            return False
        return True

    async def _update_row(self, plugin_id: str, **values: Any) -> None:
        async with self.db.session() as session:
            row = await registry.get_plugin(session, plugin_id)
            if row is None:
                raise PluginNotFoundError(plugin_id)
            for key, value in values.items():
                setattr(row, key, value)

    # -- running ---------------------------------------------------------------------

    async def execute(self, plugin_id: str) -> RunResult:
        """Run now (whether enabled or not) and return the recorded result."""
        if await self._external(plugin_id) is not None:
            raise PluginStateError(
                f"{plugin_id!r} is an external plugin: it collects on its own host"
            )
        managed = self._loaded(plugin_id)
        if managed.worker.busy and not managed.run_lock.locked():
            # A timed-out run is still stuck in blocking code on the worker thread.
            raise PluginStateError(f"plugin {plugin_id!r} is still busy with an earlier run")
        # A run in progress is waited for (it ends by its timeout), then this one runs.
        return await self._run(managed, trigger="manual")

    async def _scheduled_run(self, plugin_id: str) -> RunResult | None:
        managed = self.plugins.get(plugin_id)
        if managed is None or not managed.enabled:
            return None
        return await self._run(managed, trigger="schedule")

    async def _record_skip(self, plugin_id: str) -> None:
        self.stats.runs.labels(plugin_id, "skipped").inc()
        now = utcnow()
        async with self.db.writer() as session:
            await metric_store.record_execution(
                session,
                plugin_id=plugin_id,
                started_at=now,
                completed_at=now,
                status="skipped",
                duration_ms=0.0,
                error="previous run still in progress",
            )

    async def _collect(self, managed: ManagedPlugin) -> list[tuple[str, dict[str, Any]]]:
        """One ``(host, document)`` per target (just the hub without ``targets``)."""
        timeout = managed.metadata.timeout
        limit = self.settings.max_document_bytes
        if managed.isolated:
            raw = await run_isolated(
                managed.loaded.cls,
                "collect",
                await self.links.credentials_for(managed, managed.config.stored),
                timeout=timeout,
                memory_mb=self.settings.isolation_memory_mb,
                max_document_bytes=limit,
                output_bytes=self.settings.plugin_output_bytes,
            )
            # The child encoded it within the limit; the hub only parsed the line.
            document = raw if isinstance(raw, dict) else as_document(raw, limit)
            return [(self.settings.hostname, document)]
        await self.links.apply_credentials(managed)
        if not managed.config.targets:
            instance = managed.instance

            async def collect() -> dict[str, Any]:
                # Encoded on the plugin's thread: a huge document costs that thread,
                # not the hub's event loop.
                return as_document(await instance.collect_data(), limit)

            document = await managed.worker.call(collect, timeout=timeout)
            return [(self.settings.hostname, document)]
        return await self.links.collect_targets(managed, timeout)

    async def _run(self, managed: ManagedPlugin, *, trigger: str) -> RunResult:
        output.guard.refresh()
        async with managed.run_lock:
            started = utcnow()
            clock = time.perf_counter()
            documents: list[tuple[str, dict[str, Any]]] = []
            failure: BaseException | None = None
            status = "success"
            try:
                documents = await self._collect(managed)
            except TimeoutError as exc:
                status, failure = "timed_out", exc
            except TargetsFailedError as exc:
                status, failure, documents = "failed", exc, exc.documents
            except Exception as exc:
                status, failure = "failed", exc
                if not isinstance(exc, PluginError | TypeError):
                    # Charged to the plugin's output budget: a plugin raising huge
                    # errors in a loop cannot flood the log through the hub.
                    with output.attributed(managed.id):
                        log.warning("plugin %s raised", managed.id, exc_info=exc)
            duration_ms = (time.perf_counter() - clock) * 1000
            error = None
            if status == "timed_out":
                error = f"timed out after {managed.metadata.timeout:g}s"
            elif failure is not None:
                error = describe_error(failure)
            state = self._next_state(managed, failure)
            await self._record_run(
                managed,
                started=started,
                status=status,
                duration_ms=duration_ms,
                error=error,
                documents=documents,
                state=state,
                trigger=trigger,
            )
            if failure is not None and not managed.worker.busy:
                # Inside the run lock, so a manual run waits for the hook instead of
                # taking the busy worker for a stuck one. Skipped while a timed-out run
                # still blocks the worker thread: the answer must not wait for it.
                await self._hook(managed, "on_error", failure)
        self._settle_output(managed)
        if not managed.isolated:
            self._charge_cpu(managed)
        self.stats.runs.labels(managed.id, status).inc()
        self.stats.run_duration.labels(managed.id).observe(duration_ms / 1000)
        return RunResult(
            plugin_id=managed.id,
            status=status,
            started_at=started,
            duration_ms=duration_ms,
            error=error,
            data=run_data(documents, managed.config.targets),
            metrics_count=len(documents),
        )

    def _settle_output(self, managed: ManagedPlugin) -> None:
        """Report what the plugin's output budget dropped since its previous run."""
        writes, size = output.guard.budget(managed.id, self.settings.plugin_output_bytes).settle()
        if writes:
            log.warning(
                "plugin %s: output limit of %d bytes (a minute) reached; dropped %d writes "
                "and log records (%d bytes)",
                managed.id,
                self.settings.plugin_output_bytes,
                writes,
                size,
            )

    def _next_state(self, managed: ManagedPlugin, failure: BaseException | None) -> RunState:
        if failure is None:
            managed.consecutive_failures = 0
            return RunState.HEALTHY
        managed.consecutive_failures += 1
        unrecoverable = isinstance(failure, PluginError) and not failure.recoverable
        if unrecoverable or managed.consecutive_failures >= self.settings.failing_after:
            return RunState.FAILING
        if managed.consecutive_failures >= self.settings.degraded_after:
            return RunState.DEGRADED
        return RunState.HEALTHY

    async def _record_run(
        self,
        managed: ManagedPlugin,
        *,
        started: datetime,
        status: str,
        duration_ms: float,
        error: str | None,
        documents: list[tuple[str, dict[str, Any]]],
        state: RunState,
        trigger: str,
    ) -> None:
        completed = utcnow()
        samples = [
            metric_store.MetricSample(managed.id, host, started, document)
            for host, document in documents
        ]
        async with self.db.writer() as session:
            await metric_store.finish_run(
                session,
                plugin_id=managed.id,
                started_at=started,
                completed_at=completed,
                status=status,
                duration_ms=duration_ms,
                error=error,
                samples=samples,
                state=state.value,
                consecutive_failures=managed.consecutive_failures,
                trigger=trigger,
            )

    # -- health and config -------------------------------------------------------------

    async def check_health(self, plugin_id: str) -> HealthStatus:
        """Run the plugin's health check now and persist the answer."""
        managed = self._loaded(plugin_id)
        timeout = managed.metadata.timeout
        try:
            if managed.isolated:
                raw: Any = await run_isolated(
                    managed.loaded.cls,
                    "health",
                    await self.links.credentials_for(managed, managed.config.stored),
                    timeout=timeout,
                    memory_mb=self.settings.isolation_memory_mb,
                    output_bytes=self.settings.plugin_output_bytes,
                )
            else:
                await self.links.apply_credentials(managed)
                raw = await managed.worker.call(managed.instance.health_check, timeout=timeout)
            status = as_health(raw)
        except TimeoutError:
            status = HealthStatus.unhealthy(f"health check timed out after {timeout:g}s")
        except Exception as exc:
            status = HealthStatus.unhealthy(describe_error(exc))
        await self._update_row(
            plugin_id,
            health_status=status.status.value,
            health_message=status.message,
            health_checked_at=utcnow(),
        )
        return status

    async def set_config(self, plugin_id: str, raw: Any) -> plugin_config.ValidatedConfig:
        """Validate, persist, apply and announce a new config.

        Raises ``ConfigError`` (nothing saved) when it does not validate.
        """
        external = await self._external(plugin_id)
        if isinstance(raw, dict):
            # A merge patch carries the stored (sealed) values of the fields it keeps.
            raw = self.stored_config(plugin_id, raw)
        if external is not None:
            row, metadata = external
            previous = self._readable(plugin_id, row.config)
            validated = await plugin_config.validate_foreign(
                metadata, raw, previous=previous, timeout=self.settings.schema_check_seconds
            )
            await self.links.check(metadata, validated)
            await self._update_row(plugin_id, config=self.sealed_config(metadata, validated.stored))
            return validated
        managed = self._loaded(plugin_id)
        validated = plugin_config.validate(managed.metadata, raw, previous=managed.config.stored)
        await self.links.check(managed.metadata, validated)
        await self._update_row(
            plugin_id, config=self.sealed_config(managed.metadata, validated.stored)
        )
        old_interval = managed.interval
        managed.config = validated
        await self.links.close_remotes(managed)
        managed.instance.config = validated.plugin
        try:
            await self.links.apply_credentials(managed)
        except PluginError as exc:
            log.warning("plugin %s: %s", plugin_id, exc)
        await self._hook(managed, "on_config_change", managed.instance.config)
        if managed.enabled and managed.active and managed.interval != old_interval:
            self._schedule(managed)
        return validated

    # -- hot reload ------------------------------------------------------------------

    async def reload(self, plugin_id: str) -> str | None:
        """Re-import a plugin's code and swap the live instance.

        Returns None on success, else the error; on error the old instance
        keeps running untouched.
        """
        managed = self._loaded(plugin_id)
        result = await asyncio.to_thread(
            self.loader.reload, managed.loaded, self.settings.plugin_load_timeout
        )
        if isinstance(result, LoadedPlugin):
            try:
                validated = plugin_config.validate(result.metadata, managed.config.stored)
                instance = result.cls(config=validated.plugin)
            except Exception as exc:
                result = LoadFailure(plugin_id, managed.loaded.source, describe_error(exc))
        if isinstance(result, LoadFailure):
            managed.reload_error = result.error
            log.error("reload of %s failed, keeping the running code: %s", plugin_id, result.error)
            return result.error
        was_active = managed.active
        self.scheduler.unschedule(plugin_id)
        async with managed.run_lock:
            await self.links.close_remotes(managed)
            if was_active:
                await self._hook(managed, "on_disable")
            managed.loaded = result
            managed.instance = instance
            managed.config = validated
            managed.reload_error = None
            managed.active = False
        async with self.db.session() as session:
            await registry.sync_plugin(session, metadata=result.metadata)
        if was_active and managed.enabled:
            await self._activate(managed)
        log.info("reloaded plugin %s %s", plugin_id, result.metadata.version)
        return None

    # -- retention -------------------------------------------------------------------

    async def purge(self, now: datetime | None = None) -> dict[str, tuple[int, int]]:
        """Delete metrics and executions past each plugin's retention, old audit entries,
        batch receipts past the idempotency window and ended dashboard sessions."""
        now = now or utcnow()
        removed: dict[str, tuple[int, int]] = {}
        async with self.db.session() as session:
            rows = await registry.list_plugins(session, limit=1_000_000)
            for row in rows:
                days = (row.config or {}).get("retention_days") or self.settings.retention_days
                cutoff = metric_store.retention_cutoff(now, int(days))
                counts = await metric_store.purge_older_than(
                    session, plugin_id=row.id, cutoff=cutoff
                )
                if any(counts):
                    removed[row.id] = counts
            audit_entries = await audit.purge(
                session,
                routine_before=metric_store.retention_cutoff(now, self.settings.retention_days),
                before=metric_store.retention_cutoff(now, self.settings.audit_retention_days),
            )
            if audit_entries:
                log.info("retention removed %d credential audit entries", audit_entries)
            receipts = await housekeeping.purge_batch_receipts(
                session, before=now - timedelta(days=self.settings.batch_receipt_days)
            )
            sessions = await housekeeping.purge_ended_tokens(
                session, name_prefix=SESSION_TOKEN_PREFIX, now=now
            )
            if receipts or sessions:
                log.info(
                    "retention removed %d batch receipts, %d ended sessions", receipts, sessions
                )
        return removed

    async def _retention_loop(self) -> None:
        # The first pass waits a minute so start-up stays quick.
        await asyncio.sleep(min(60.0, self.settings.retention_check_seconds))
        while True:
            try:
                removed = await self.purge()
                if removed:
                    log.info("retention removed %s", removed)
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("retention pass failed")
            await asyncio.sleep(self.settings.retention_check_seconds)
