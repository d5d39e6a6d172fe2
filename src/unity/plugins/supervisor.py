"""One supervisor per plugin: its timer, its runs, their recording, its health.

Like Home Assistant's ``DataUpdateCoordinator``: the supervisor owns when its
plugin runs (the scheduler's timer plus backoff and the CPU share), how a run
is taken (thread, targets or isolated child, with the timeout), what comes of
it (recorded through the :class:`~unity.plugins.recorder.RunRecorder`, with
the health the plugin's ``assess`` gives the new document) and its lifecycle
hooks. Everything it shares with the other supervisors is in :class:`Runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from unity.plugins import output
from unity.plugins.isolation import run_isolated
from unity.plugins.leases import Leases
from unity.plugins.links import ConfigLinks
from unity.plugins.loader import LoadedPlugin, LoadFailure
from unity.plugins.recorder import RunRecorder
from unity.plugins.registry import PluginRegistry
from unity.plugins.runtime import (
    HOOK_TIMEOUT,
    ManagedPlugin,
    PluginStateError,
    RunResult,
    as_document,
    as_health,
    describe_error,
    run_data,
)
from unity.plugins.scheduler import Scheduler
from unity.plugins.stats import HubStats
from unity.plugins.targets import TargetsFailedError
from unity.plugins.worker import WorkerPool
from unity.settings import Settings
from unity.storage.types import utcnow
from unity_sdk import (
    HealthState,
    HealthStatus,
    PluginBase,
    PluginError,
    RunStatus,
    cpu_share_delay,
    run_delay,
    run_state,
    validate_config,
)

__all__ = ["Runtime", "Supervisor", "release"]

log = logging.getLogger(__name__)

_SEVERITY = {
    HealthState.NOT_APPLICABLE: 0,
    HealthState.UNKNOWN: 0,
    HealthState.HEALTHY: 1,
    HealthState.DEGRADED: 2,
    HealthState.UNHEALTHY: 3,
}


@dataclass
class Runtime:
    """What every supervisor shares."""

    settings: Settings
    links: ConfigLinks
    recorder: RunRecorder
    scheduler: Scheduler
    stats: HubStats
    registry: PluginRegistry
    leases: Leases


class Supervisor:
    """Runs one plugin on its schedule and records what comes of it."""

    def __init__(self, managed: ManagedPlugin, runtime: Runtime) -> None:
        self.managed = managed
        self.rt = runtime
        self._health_task: asyncio.Task[None] | None = None
        managed.worker.rebind = self._rebind

    @property
    def id(self) -> str:
        return self.managed.id

    # -- lifecycle -------------------------------------------------------------------

    async def activate(self) -> None:
        """Run ``on_enable`` and start the timer; ``PluginStateError`` if the hook fails."""
        managed = self.managed
        if not managed.isolated:
            try:
                await self.rt.links.apply_credentials(managed)
                await managed.worker.call(managed.instance.on_enable, timeout=HOOK_TIMEOUT)
            except Exception as exc:
                error = describe_error(exc)
                await self.rt.registry.update_row(self.id, last_error=f"on_enable: {error}")
                raise PluginStateError(f"on_enable failed: {error}") from exc
            if not managed.enabled:
                # Disabled while a slow on_enable still ran in the background after start.
                await self.hook("on_disable")
                return
        managed.active = True
        self.schedule()

    async def deactivate(self) -> None:
        """Stop the timer, close remote instances, run ``on_disable``."""
        self.unschedule()
        managed = self.managed
        if managed.worker.busy:
            # Its thread is stuck in earlier code: a hook would only queue behind it.
            managed.active = False
            return
        await self.rt.links.close_remotes(managed)
        if managed.active:
            await self.hook("on_disable")
            managed.active = False

    async def _rebind(self) -> None:
        """The plugin moved to a fresh loop (another one blocked its old loop): run
        ``on_enable`` again there, so clients bound to the old loop are made anew."""
        managed = self.managed
        if managed.isolated or not managed.active:
            return
        instances = [managed.instance, *(i for i, _ in managed.remotes.values())]
        for instance in instances:
            if type(instance).on_enable is not PluginBase.on_enable:
                await managed.worker.rebind_call(instance.on_enable, HOOK_TIMEOUT)

    def schedule(self) -> None:
        self.rt.scheduler.schedule(
            self.id,
            interval=self.managed.interval,
            run=self._scheduled_run,
            skip=self._skipped,
            next_delay=self.next_delay,
            busy=lambda: self.managed.busy,
        )
        every = self.rt.settings.health_check_seconds
        if every > 0 and self._health_task is None:
            self._health_task = asyncio.create_task(
                self._health_loop(every), name=f"health:{self.id}"
            )

    def unschedule(self) -> None:
        self.rt.scheduler.unschedule(self.id)
        if self._health_task is not None:
            self._health_task.cancel()
            self._health_task = None

    async def _scheduled_run(self) -> RunResult | None:
        if not self.managed.enabled:
            return None
        # With several hubs on one database, the one that claims the run takes it.
        held = self.rt.leases.holds(self.id)
        if not await self.rt.leases.claim_run(self.id, self.next_delay()):
            return None
        if not held:  # taken over: the runs so far were another hub's
            await self.rt.registry.adopt(self.managed)
        return await self.run("schedule")

    async def _skipped(self) -> None:
        """A tick found the plugin busy: the hub running it keeps it and records the skip."""
        if self.rt.leases.holds(self.id):
            await self.rt.leases.renew_run(self.id, self.next_delay())
            await self.rt.recorder.record_skip(self.id)

    async def _health_loop(self, every: float) -> None:
        clock = self.rt.scheduler.clock
        while True:
            await clock.sleep(every)
            async with self.managed.run_lock:
                pass  # after the run in progress, if any
            # Not while a run is stuck in its code; only on the hub that runs the plugin.
            if not self.managed.worker.busy and self.rt.leases.holds(self.id):
                with contextlib.suppress(Exception):
                    await self.check_health()

    async def reload(self) -> str | None:
        """Re-import the plugin's code and swap the live instance; the error, if any
        (then the old instance keeps running untouched)."""
        managed, settings = self.managed, self.rt.settings
        result = await asyncio.to_thread(
            self.rt.registry.loader.reload, managed.loaded, settings.plugin_load_timeout
        )
        if isinstance(result, LoadedPlugin):
            try:
                validated = validate_config(result.metadata, managed.config.stored)
                instance = result.cls(config=validated.plugin)
            except Exception as exc:
                result = LoadFailure(self.id, managed.loaded.source, describe_error(exc))
        if isinstance(result, LoadFailure):
            managed.reload_error = result.error
            log.error("reload of %s failed, keeping the running code: %s", self.id, result.error)
            return result.error
        was_active = managed.active
        self.unschedule()
        async with managed.run_lock:
            await self.rt.links.close_remotes(managed)
            if was_active:
                await self.hook("on_disable")
            managed.loaded = result
            managed.instance = instance
            managed.config = validated
            managed.reload_error = None
            managed.active = False
        await self.rt.registry.resync(result.metadata)
        if was_active and managed.enabled:
            await self.activate()
        log.info("reloaded plugin %s %s", self.id, result.metadata.version)
        return None

    async def hook(self, name: str, *args: Any) -> bool:
        managed = self.managed
        if managed.isolated:
            return True
        method: Callable[..., Awaitable[None]] = getattr(managed.instance, name)
        try:
            await managed.worker.call(lambda: method(*args), timeout=HOOK_TIMEOUT)
        except Exception as exc:
            log.warning("plugin %s: %s raised %s", managed.id, name, describe_error(exc))
            return False
        return True

    # -- timing ----------------------------------------------------------------------

    def next_delay(self) -> float:
        """The interval, an exponential backoff after consecutive failures, or longer
        when the plugin's last run used more than its share of a CPU core."""
        managed = self.managed
        return run_delay(
            managed.interval,
            managed.consecutive_failures,
            max_backoff=self.rt.settings.max_backoff_seconds,
            cpu_delay=managed.cpu_delay,
        )

    def _charge_cpu(self) -> None:
        """Space the next run so the plugin keeps to its share of a core.

        Thread-mode plugins share the hub's process (and its GIL): one that burns
        CPU in every run would starve the others. The CPU its code used on its
        loop since the previous run (the worker meters every task step) decides
        the shortest delay before the next one.
        """
        managed = self.managed
        share = self.rt.settings.plugin_cpu_share
        total = managed.worker.cpu_seconds()
        used, managed.cpu_mark = total - managed.cpu_mark, total
        managed.cpu_delay = cpu_share_delay(used, share)
        if managed.cpu_delay > managed.interval:
            log.warning(
                "plugin %s used %.2f s of CPU since its previous run; its next run waits "
                "%.1f s (UNITY_PLUGIN_CPU_SHARE=%g of a core)",
                managed.id,
                used,
                managed.cpu_delay,
                share,
            )

    def _settle_output(self) -> None:
        """Report what the plugin's output budget dropped since its previous run."""
        limit = self.rt.settings.plugin_output_bytes
        writes, size = output.guard.budget(self.id, limit).settle()
        if writes:
            log.warning(
                "plugin %s: output limit of %d bytes (a minute) reached; dropped %d writes "
                "and log records (%d bytes)",
                self.id,
                limit,
                writes,
                size,
            )

    # -- running ---------------------------------------------------------------------

    async def _isolated(self, operation: str, **limits: Any) -> Any:
        managed, settings = self.managed, self.rt.settings
        return await run_isolated(
            managed.loaded.cls,
            operation,
            await self.rt.links.credentials_for(managed, managed.config.stored),
            timeout=managed.metadata.timeout,
            memory_mb=settings.isolation_memory_mb,
            output_bytes=settings.plugin_output_bytes,
            **limits,
        )

    async def _collect(self) -> list[tuple[str, dict[str, Any]]]:
        """One ``(host, document)`` per target (just the hub without ``targets``)."""
        managed, settings = self.managed, self.rt.settings
        limit = settings.max_document_bytes
        if managed.isolated:
            raw = await self._isolated("collect", max_document_bytes=limit)
            # The child encoded it within the limit; the hub only parsed the line.
            document = raw if isinstance(raw, dict) else as_document(raw, limit)
            return [(settings.hostname, document)]
        await self.rt.links.apply_credentials(managed)
        if not managed.config.targets:
            instance = managed.instance

            async def collect() -> dict[str, Any]:
                # Encoded on the plugin's thread: a huge document costs that thread,
                # not the hub's event loop.
                return as_document(await instance.collect_data(), limit)

            document = await managed.worker.call(collect, timeout=managed.metadata.timeout)
            return [(settings.hostname, document)]
        return await self.rt.links.collect_targets(managed, managed.metadata.timeout)

    async def _assess(self, documents: list[tuple[str, dict[str, Any]]]) -> HealthStatus | None:
        """The worst health ``assess`` gives the run's documents (None: it says nothing)."""
        managed = self.managed
        if type(managed.instance).assess is PluginBase.assess or not documents:
            return None
        if managed.worker.busy:
            return None
        instance = managed.instance

        async def judge() -> HealthStatus | None:
            worst: HealthStatus | None = None
            for host, document in documents:
                raw = instance.assess(document)
                if raw is None:
                    continue
                status = as_health(raw)
                if len(documents) > 1 and status.message:
                    status = status.model_copy(update={"message": f"{host}: {status.message}"})
                if worst is None or _SEVERITY[status.status] > _SEVERITY[worst.status]:
                    worst = status
            return worst

        try:
            return await managed.worker.call(judge, timeout=HOOK_TIMEOUT)
        except Exception as exc:
            log.warning("plugin %s: assess raised %s", managed.id, describe_error(exc))
            return None

    async def run(self, trigger: str) -> RunResult:
        """Collect, assess and record one run; the result as recorded."""
        managed = self.managed
        output.guard.refresh()
        async with managed.run_lock:
            if trigger == "manual" and managed.worker.busy:
                # The run this one waited for timed out and is still stuck in the
                # plugin's code: this one would only queue behind it.
                raise PluginStateError(f"plugin {self.id!r} is still busy with an earlier run")
            started = utcnow()
            clock = time.perf_counter()
            documents: list[tuple[str, dict[str, Any]]] = []
            failure: BaseException | None = None
            status = RunStatus.SUCCESS
            try:
                documents = await self._collect()
            except TimeoutError as exc:
                status, failure = RunStatus.TIMED_OUT, exc
            except TargetsFailedError as exc:
                status, failure, documents = RunStatus.FAILED, exc, exc.documents
            except Exception as exc:
                status, failure = RunStatus.FAILED, exc
                if not isinstance(exc, PluginError | TypeError):
                    # Charged to the plugin's output budget: a plugin raising huge
                    # errors in a loop cannot flood the log through the hub.
                    with output.attributed(managed.id):
                        log.warning("plugin %s raised", managed.id, exc_info=exc)
            duration_ms = (time.perf_counter() - clock) * 1000
            error = None
            if status is RunStatus.TIMED_OUT:
                error = f"timed out after {managed.metadata.timeout:g}s"
            elif failure is not None:
                error = describe_error(failure)
            self._count(failure)
            health = await self._assess(documents) if failure is None else None
            await self.rt.recorder.record_run(
                managed,
                started=started,
                status=status,
                duration_ms=duration_ms,
                error=error,
                documents=documents,
                trigger=trigger,
                health=health,
            )
            if failure is not None and not managed.worker.busy:
                # Inside the run lock, so a manual run waits for the hook instead of
                # taking the busy worker for a stuck one. Skipped while a timed-out run
                # still blocks the worker thread: the answer must not wait for it.
                await self.hook("on_error", failure)
        self._settle_output()
        if not managed.isolated:
            self._charge_cpu()
        self.rt.stats.runs.labels(managed.id, status.value).inc()
        self.rt.stats.run_duration.labels(managed.id).observe(duration_ms / 1000)
        return RunResult(
            plugin_id=managed.id,
            status=status,
            started_at=started,
            duration_ms=duration_ms,
            error=error,
            data=run_data(documents, managed.config.targets),
            metrics_count=len(documents),
        )

    def _count(self, failure: BaseException | None) -> None:
        """Update the consecutive failures and the state the runs give."""
        managed, settings = self.managed, self.rt.settings
        managed.consecutive_failures = 0 if failure is None else managed.consecutive_failures + 1
        managed.runs = run_state(
            managed.consecutive_failures,
            unrecoverable=isinstance(failure, PluginError) and not failure.recoverable,
            degraded_after=settings.degraded_after,
            failing_after=settings.failing_after,
        )

    async def check_health(self) -> HealthStatus:
        """Run the plugin's health check now and record the answer."""
        managed = self.managed
        timeout = managed.metadata.timeout
        try:
            if managed.isolated:
                raw: Any = await self._isolated("health")
            else:
                await self.rt.links.apply_credentials(managed)
                raw = await managed.worker.call(managed.instance.health_check, timeout=timeout)
            status = as_health(raw)
        except TimeoutError:
            status = HealthStatus.unhealthy(f"health check timed out after {timeout:g}s")
        except Exception as exc:
            status = HealthStatus.unhealthy(describe_error(exc))
        await self.rt.recorder.record_health(managed, status)
        return status


async def release(supervisors: list[Supervisor], workers: WorkerPool, deadline: float) -> None:
    """Deactivate every plugin and end the plugin loops by ``deadline`` (loop time).

    ``on_disable`` hooks run concurrently; those still running at the deadline
    are cancelled. A thread still blocked in plugin code is abandoned (it is a
    daemon thread: it cannot keep the process alive).
    """
    loop = asyncio.get_running_loop()
    hooks = [asyncio.ensure_future(s.deactivate()) for s in supervisors]
    if hooks:
        _, late = await asyncio.wait(hooks, timeout=max(0.0, deadline - loop.time()))
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if late:
            log.warning("%d plugins did not finish on_disable in time; abandoned", len(late))
    # Idle threads end at once; all of them together get a fifth of a second.
    joined_by = min(loop.time() + 0.2, deadline + 0.5)
    workers.request_stop()
    stuck = await asyncio.to_thread(workers.join, joined_by - loop.time())
    for name in stuck:
        log.warning("plugin loop %s is stuck in plugin code; its thread is abandoned", name)
