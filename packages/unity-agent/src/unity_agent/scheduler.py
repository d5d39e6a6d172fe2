"""One assigned plugin instance: its plugin object, its thread, its timer, its runs.

The timer applies the SDK's timing rules, the ones the hub's scheduler
applies (:func:`unity_sdk.start_delay`, :func:`unity_sdk.run_delay`,
:func:`unity_sdk.next_base`...): the first run spread over the first interval,
then a fixed-rate grid with jitter; a tick that finds the previous run still
going (or the plugin's thread still stuck in it) is skipped, never queued;
consecutive failures back off exponentially; a run taking more than its share
of a CPU core spaces the next one. Every run is bounded by its timeout.

A run's document becomes a sample handed to ``on_sample`` (the spool); the
health it gives (``assess``, or the failure) is handed to ``on_health``.

Every instance runs on its own worker thread (:mod:`unity_agent.worker`), as
the hub runs plugins in ``thread`` isolation. The agent has no ``process``
isolation: a plugin declaring it runs on its thread too (no catalogue plugin
declares it; the agent is a process of its own, away from the hub).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from unity_agent.worker import Worker
from unity_catalogue.extras import install_hint
from unity_sdk import (
    DEFAULT_CPU_SHARE,
    DEFAULT_JITTER,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_DOCUMENT_BYTES,
    Assignment,
    DependencyMissingError,
    HealthState,
    HealthStatus,
    PluginBase,
    PluginError,
    cpu_share_delay,
    encode_document,
    next_base,
    require_storable_numbers,
    run_delay,
    run_timeout,
    run_window,
    start_delay,
    tick_jitter,
)

__all__ = ["HOOK_TIMEOUT", "Instance", "RunOutcome", "Timing", "describe"]

log = logging.getLogger("unity_agent")

# How long on_enable and on_disable may take (the hub's HOOK_TIMEOUT).
HOOK_TIMEOUT = 30.0
MAX_ERROR_CHARS = 2000
# An agent runs a handful of plugins: their first runs come within seconds of the
# start, so a new host shows its figures at once, yet not all in the same instant.
START_SPREAD = 5.0


def describe(exc: BaseException) -> str:
    """An error as one line: its type and message, bounded."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    message = str(exc).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "..."


@dataclass(frozen=True)
class Timing:
    """How every instance's timer behaves (the hub's defaults)."""

    jitter: float = DEFAULT_JITTER
    max_backoff: float = DEFAULT_MAX_BACKOFF
    cpu_share: float = DEFAULT_CPU_SHARE
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES


@dataclass(frozen=True)
class RunOutcome:
    """What one run came to: ``status`` is ``success``, ``failed`` or ``timed_out``."""

    status: str
    error: str | None = None
    health: HealthStatus | None = None
    missing_dependency: bool = False


class Instance:
    """Runs one plugin instance on its schedule, on its own worker thread."""

    def __init__(
        self,
        assignment: Assignment,
        plugin: PluginBase[Any],
        *,
        host: str,
        on_sample: Callable[[str, str, datetime, str], None],
        on_health: Callable[[str, HealthStatus, RunOutcome], None],
        timing: Timing | None = None,
    ) -> None:
        self.assignment = assignment
        self.plugin = plugin
        self.metadata = plugin.get_metadata()
        self.host = host
        self.timing = timing or Timing()
        self.timeout = run_timeout(self.metadata.timeout, assignment.timeout)
        self._on_sample = on_sample
        self._on_health = on_health
        self.worker = Worker(assignment.instance_id)
        self.consecutive_failures = 0
        self.runs = 0
        self.skipped = 0
        self.cpu_delay = 0.0
        self._cpu_mark = 0.0
        self._random = random.Random()
        # When the first run was due (loop time), once the timer has started.
        self.first_due: float | None = None
        self._timer: asyncio.Task[None] | None = None
        self._current: asyncio.Task[RunOutcome] | None = None
        self.enabled = False

    @property
    def id(self) -> str:
        return self.assignment.instance_id

    @property
    def interval(self) -> float:
        return self.assignment.interval

    @property
    def busy(self) -> bool:
        running = self._current is not None and not self._current.done()
        return running or self.worker.busy

    # -- lifecycle -------------------------------------------------------------------

    async def enable(self) -> None:
        """``on_enable`` on the worker thread; raises what it raises (the caller
        reports it as a problem and never schedules the instance)."""
        await self.worker.call(self.plugin.on_enable, timeout=HOOK_TIMEOUT)
        self.enabled = True

    def start(self) -> None:
        """Start the timer (after :meth:`enable`)."""
        if self._timer is None:
            self._timer = asyncio.create_task(self._tick_loop(), name=f"timer:{self.id}")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop the timer, let a run in flight finish (cancelled after ``grace`` s),
        run ``on_disable`` and end the thread (abandoned if stuck in plugin code)."""
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None
        current = self._current
        if current is not None and not current.done():
            done, _ = await asyncio.wait({current}, timeout=grace)
            if not done:
                current.cancel()
                await asyncio.gather(current, return_exceptions=True)
        if self.enabled and not self.worker.busy:
            try:
                await self.worker.call(self.plugin.on_disable, timeout=min(grace, HOOK_TIMEOUT))
            except Exception as exc:
                log.warning("%s: on_disable raised %s", self.id, describe(exc))
        self.enabled = False
        if not await asyncio.to_thread(self.worker.stop, 0.5):
            log.warning("%s is stuck in its code; its thread is abandoned", self.id)

    # -- the timer -------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        jitter = self.timing.jitter
        first = start_delay(self.interval, jitter, self._random.random(), spread=START_SPREAD)
        base = loop.time() + first
        due = self.first_due = base
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            if self.busy:
                # Never two runs of one instance at once: this tick is skipped.
                self.skipped += 1
                log.debug("%s: tick skipped, the previous run is still going", self.id)
            else:
                self._current = asyncio.create_task(self.run_once(), name=f"run:{self.id}")
                # Waited for until the next tick, so the backoff sees the outcome.
                await asyncio.wait(
                    {self._current}, timeout=run_window(base, self.interval, loop.time())
                )
            delay = run_delay(
                self.interval,
                self.consecutive_failures,
                max_backoff=self.timing.max_backoff,
                cpu_delay=self.cpu_delay,
            )
            base = next_base(base, self.interval, delay, loop.time())
            due = base + tick_jitter(self.interval, jitter, self._random.random())

    # -- one run ---------------------------------------------------------------------

    async def run_once(self) -> RunOutcome:
        """Collect, check, spool and assess one document; never raises."""
        started = datetime.now(UTC)
        limit = self.timing.max_document_bytes
        plugin = self.plugin

        async def collect() -> tuple[str, HealthStatus | None]:
            # On the plugin's thread: a huge document costs that thread, not the loop.
            text = encode_document(await plugin.collect_data(), max_bytes=limit)
            document = json.loads(text)
            try:
                require_storable_numbers(document, name="document")
            except ValueError as exc:
                raise TypeError(f"collect_data returned {exc}") from None
            return text, _assess(plugin, document, self.id)

        self.runs += 1
        failure: BaseException | None = None
        try:
            text, health = await self.worker.call(collect, timeout=self.timeout)
        except TimeoutError as exc:
            failure, outcome = exc, RunOutcome("timed_out", f"timed out after {self.timeout:g}s")
        except Exception as exc:
            failure = exc
            # A missing extra (ImportError) is a missing dependency like any other.
            missing = isinstance(exc, DependencyMissingError | ImportError)
            if not isinstance(exc, PluginError | ImportError | TypeError):
                log.warning("%s raised", self.id, exc_info=exc)  # a bug: the traceback helps
            hint = install_hint(exc)
            error = f"{describe(exc)}; {hint}" if hint else describe(exc)
            outcome = RunOutcome("failed", error, missing_dependency=missing)
        else:
            self._on_sample(self.id, self.host, started, text)
            outcome = RunOutcome("success", health=health or HealthStatus.healthy())
        self._charge_cpu()
        if failure is None:
            self.consecutive_failures = 0
            self._on_health(self.id, outcome.health or HealthStatus.healthy(), outcome)
            return outcome
        self.consecutive_failures += 1
        log.info("%s: run %s: %s", self.id, outcome.status.replace("_", " "), outcome.error)
        prefix = "" if outcome.status == "timed_out" else "collection failed: "
        self._on_health(self.id, HealthStatus.unhealthy(f"{prefix}{outcome.error}"), outcome)
        if not self.worker.busy:
            try:
                await self.worker.call(lambda: plugin.on_error(failure), timeout=HOOK_TIMEOUT)
            except Exception as exc:
                log.warning("%s: on_error raised %s", self.id, describe(exc))
        return outcome

    def _charge_cpu(self) -> None:
        """Space the next run so the plugin's thread keeps to its share of a core."""
        total = self.worker.cpu_seconds()
        used, self._cpu_mark = total - self._cpu_mark, total
        self.cpu_delay = cpu_share_delay(used, self.timing.cpu_share)
        if self.cpu_delay > self.interval:
            log.warning(
                "%s used %.2f s of CPU since its previous run; its next run waits %.1f s",
                self.id,
                used,
                self.cpu_delay,
            )


def _assess(plugin: PluginBase[Any], document: dict[str, Any], name: str) -> HealthStatus | None:
    """The plugin's verdict on its document; None when it says nothing (or fails)."""
    if type(plugin).assess is PluginBase.assess:
        return None
    try:
        raw: Any = plugin.assess(document)
    except Exception as exc:
        log.warning("%s: assess raised %s", name, describe(exc))
        return None
    if raw is None or isinstance(raw, HealthStatus):
        return raw
    if isinstance(raw, HealthState):
        return HealthStatus(status=raw)
    if isinstance(raw, bool):
        return HealthStatus(status=HealthState.HEALTHY if raw else HealthState.UNHEALTHY)
    try:
        return HealthStatus.model_validate(raw)
    except ValueError:
        return None
