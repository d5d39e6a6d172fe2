"""The scheduler: one timer task per enabled plugin.

Each plugin fires every ``interval`` seconds on a fixed-rate grid, offset by a
random jitter so plugins with equal intervals do not fire together. The timing
rules themselves are the SDK's (:mod:`unity_sdk._schedule`), shared with the
agent's scheduler; this module is the hub's timer around them. A run is
started as its own task, so a slow run never delays the timer; if the previous
run of the same plugin is still going, the tick is recorded as skipped. After
failures the supervisor asks for a longer delay (exponential backoff).

Time comes from a :class:`Clock`: the event loop's by default, a
:class:`ManualClock` in tests, which moves only when told, so schedules are
tested without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from unity.storage.db import is_unavailable
from unity_sdk import next_base, run_window, start_delay, tick_jitter

__all__ = ["Clock", "LoopClock", "ManualClock", "Schedule", "Scheduler"]

log = logging.getLogger(__name__)


class Clock(Protocol):
    """Where the scheduler reads the time and waits."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, task: asyncio.Task[Any], timeout: float) -> None:
        """Wait until ``task`` is done or ``timeout`` seconds passed."""


class LoopClock:
    """The event loop's monotonic clock."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, task: asyncio.Task[Any], timeout: float) -> None:
        await asyncio.wait({task}, timeout=timeout)


class ManualClock:
    """A clock that moves only when :meth:`advance` is called (for tests)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._moved = asyncio.Event()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + max(0.0, seconds)
        while self.now < until:
            await self._next_move()

    async def wait(self, task: asyncio.Task[Any], timeout: float) -> None:
        until = self.now + max(0.0, timeout)
        while not task.done() and self.now < until:
            moved = asyncio.ensure_future(self._next_move())
            await asyncio.wait({task, moved}, return_when=asyncio.FIRST_COMPLETED)
            moved.cancel()

    async def _next_move(self) -> None:
        event = self._moved
        await event.wait()

    async def advance(self, seconds: float) -> None:
        """Move time forward and let every task due by then run."""
        self.now += seconds
        event, self._moved = self._moved, asyncio.Event()
        event.set()
        # Let woken timers and the runs they start proceed before returning.
        for _ in range(20):
            await asyncio.sleep(0)


@dataclass
class Schedule:
    """What the scheduler needs to know about one plugin."""

    interval: float
    run: Callable[[], Coroutine[Any, Any, object]]
    skip: Callable[[], Coroutine[Any, Any, None]]  # records a tick skipped while busy
    next_delay: Callable[[], float]  # the delay after a run, given the plugin's state
    busy: Callable[[], bool]
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    current_run: asyncio.Task[object] | None = field(default=None, repr=False)


class Scheduler:
    """Fires plugin runs on time; never lets one plugin overlap itself."""

    def __init__(
        self,
        *,
        jitter: float = 0.1,
        on_lateness: Callable[[float], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or LoopClock()
        # Its own generator: the jitter never disturbs (or depends on) the global one.
        self._random = random.Random()
        self.jitter = jitter
        self._on_lateness = on_lateness
        self._schedules: dict[str, Schedule] = {}
        self._inflight: set[asyncio.Task[object]] = set()

    def __contains__(self, plugin_id: str) -> bool:
        return plugin_id in self._schedules

    @property
    def scheduled(self) -> list[str]:
        return sorted(self._schedules)

    def schedule(
        self,
        plugin_id: str,
        *,
        interval: float,
        run: Callable[[], Coroutine[Any, Any, object]],
        skip: Callable[[], Coroutine[Any, Any, None]],
        next_delay: Callable[[], float],
        busy: Callable[[], bool],
        first_delay: float | None = None,
    ) -> None:
        """(Re)start the timer of ``plugin_id``."""
        self.unschedule(plugin_id)
        entry = Schedule(interval=interval, run=run, skip=skip, next_delay=next_delay, busy=busy)
        if first_delay is None:
            # Plugins with equal intervals must not share a phase (unity_sdk.start_delay).
            first_delay = start_delay(interval, self.jitter, self._random.random())
        entry.task = asyncio.create_task(
            self._loop(plugin_id, entry, first_delay), name=f"schedule:{plugin_id}"
        )
        self._schedules[plugin_id] = entry

    def unschedule(self, plugin_id: str) -> None:
        entry = self._schedules.pop(plugin_id, None)
        if entry is not None and entry.task is not None:
            entry.task.cancel()

    async def stop(self, grace: float = 5.0) -> None:
        """Cancel every timer; let runs in flight finish (cancelled after ``grace`` s)."""
        entries = list(self._schedules.values())
        self._schedules.clear()
        timers = [e.task for e in entries if e.task is not None]
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _launch(self, coro: Coroutine[Any, Any, object], name: str) -> asyncio.Task[object]:
        """Start a run or skip record as a task that outlives its timer, tracked for stop()."""
        task = asyncio.create_task(coro, name=name)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    def _jittered(self, interval: float) -> float:
        return tick_jitter(interval, self.jitter, self._random.random())

    async def _loop(self, plugin_id: str, entry: Schedule, first_delay: float) -> None:
        clock = self.clock
        base = clock.time() + first_delay
        due = base
        while True:
            await clock.sleep(max(0.0, due - clock.time()))
            if self._on_lateness is not None:
                self._on_lateness(clock.time() - due)
            running = entry.current_run is not None and not entry.current_run.done()
            if running or entry.busy():
                await asyncio.shield(self._launch(entry.skip(), f"skip:{plugin_id}"))
            else:
                entry.current_run = self._launch(
                    self._guarded_run(plugin_id, entry), f"run:{plugin_id}"
                )
                # Wait for the run up to the next tick so backoff sees its outcome.
                await clock.wait(entry.current_run, run_window(base, entry.interval, clock.time()))
            # On the grid, later after failures; missed ticks (a suspended process) skipped.
            base = next_base(base, entry.interval, entry.next_delay(), clock.time())
            due = base + self._jittered(entry.interval)

    async def _guarded_run(self, plugin_id: str, entry: Schedule) -> object:
        try:
            return await entry.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_unavailable(exc):
                # The database logs its outage once; a traceback per run adds nothing.
                log.debug("run of plugin %s not recorded: database unavailable", plugin_id)
            else:
                log.exception("run of plugin %s failed inside the hub", plugin_id)
            return None
