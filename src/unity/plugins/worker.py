"""Where in-hub plugin code runs: a few shared event-loop threads, a thread of
its own for a plugin that blocks.

A plugin's ``async`` methods may still block (psutil, ``subprocess.run``, sync
database drivers), so plugin code never runs on the hub's event loop. It runs
on a :class:`WorkerPool`: a small, fixed number of *shared loops* (each a
daemon thread with its own event loop) that carry every well-behaved plugin,
and one *dedicated loop* per plugin known to block. Each plugin is pinned to
one loop for its life (a :class:`PluginWorker` is its handle), so clients it
creates in ``on_enable`` (``redis.asyncio``, ``asyncpg``, ``httpx.AsyncClient``)
keep working on the loop they were made on.

A watchdog thread looks at every shared loop a few times per
``stall_seconds``. When one task step (a stretch of plugin code between two
awaits) has held a shared loop longer than that, the plugin running it
is marked blocking and the stalled thread becomes that plugin's dedicated
loop; the other plugins pinned there move to a fresh shared loop at once:

- their calls not started yet are cancelled on the old loop (they never run
  there) and started again on the new one;
- their calls in progress on the old loop are cancelled there (the
  cancellation lands when the blocking code returns) and started again, from
  the beginning, on the new loop, within what is left of their timeout;
- before that, the worker's ``rebind`` hook runs on the new loop (the
  supervisor re-runs ``on_enable``): whatever the plugin had bound to the old
  loop is stuck with it.

A loop that stops answering outside any task step (blocking code in a plain
callback) is retired the same way, with every plugin moved.

A timed-out call is cancelled in its loop; if the plugin is stuck in blocking
code the cancellation lands when it returns, and meanwhile the worker reports
itself busy so the scheduler skips instead of piling up runs. Every task on a
plugin loop is metered: the CPU time of its steps is charged to the plugin
that created it, which is what :meth:`PluginWorker.cpu_seconds` reports.
Threads are daemons: when the hub stops, a thread stuck in a plugin's blocking
code is abandoned rather than waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, Generic, TypeVar

from unity.plugins import loops, output
from unity.plugins.loops import LoopThread

__all__ = ["PluginWorker", "WorkerPool", "default_loop_threads"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def default_loop_threads() -> int:
    """Shared plugin loops when the setting says 0: ``min(4, cpus) + 1``."""
    return min(4, os.cpu_count() or 1) + 1


class _Moved(Exception):
    """The call's loop was taken over by a blocking plugin: start it again elsewhere."""


class _State(enum.Enum):
    QUEUED = "queued"
    STARTED = "started"
    DONE = "done"
    ABANDONED = "abandoned"


class _Call(Generic[T]):
    """One call of a worker: where it runs and the hub-side future of its outcome."""

    __slots__ = ("func", "home", "result", "state", "task")

    def __init__(
        self, func: Callable[[], Awaitable[T]], home: LoopThread, result: asyncio.Future[T]
    ) -> None:
        self.func = func
        self.home = home
        self.result = result
        self.state = _State.QUEUED
        self.task: asyncio.Task[None] | None = None

    def deliver(self, ok: bool, value: Any) -> None:
        """On the hub loop: the outcome, unless the hub stopped waiting already."""
        if self.result.done():
            return
        if ok:
            self.result.set_result(value)
        elif isinstance(value, asyncio.CancelledError):
            self.result.cancel()
        else:
            self.result.set_exception(value)

    def expire(self) -> None:
        if not self.result.done():
            self.result.set_exception(TimeoutError())


class PluginWorker:
    """One plugin's handle on the loop its code runs on."""

    def __init__(self, name: str, home: LoopThread) -> None:
        self.name = name
        self._home = home
        home.workers.add(self)
        self._lock = threading.Lock()
        self._running: set[_Call[Any]] = set()
        self._waiting: set[_Call[Any]] = set()  # hub side: calls someone awaits
        self._context = contextvars.copy_context()
        self._context.run(self._enter)
        # CPU seconds of the plugin's task steps (written by the loop threads).
        self.cpu = 0.0
        # Run on the new loop after a move, before any call moved with it.
        self.rebind: Callable[[], Awaitable[None]] | None = None
        self._rebound: asyncio.Future[None] | None = None

    def _enter(self) -> None:
        loops.owner.set(self)
        output.set_owner(self.name)

    def __repr__(self) -> str:
        return f"<PluginWorker {self.name} on {self._home.name}>"

    @property
    def home(self) -> LoopThread:
        return self._home

    @property
    def dedicated(self) -> bool:
        """True when the plugin has a loop (and thread) of its own."""
        return self._home.owner == self.name

    def cpu_seconds(self) -> float:
        """CPU time the plugin's code has used so far on its loops."""
        return self.cpu

    @property
    def busy(self) -> bool:
        """True while a call has not finished on the plugin's loop."""
        if not self._running:  # the common case, asked on every tick: no lock needed
            return False
        with self._lock:
            return any(call.home is self._home for call in self._running)

    async def call(self, func: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run ``func()`` on the plugin's loop; ``TimeoutError`` after ``timeout`` seconds."""
        return await self._call(func, timeout, rebinding=False)

    async def _call(
        self, func: Callable[[], Awaitable[T]], timeout: float | None, *, rebinding: bool
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            rebound = self._rebound
            if not rebinding and rebound is not None and not rebound.done():
                left = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait_for(asyncio.shield(rebound), left)
            call: _Call[T] = _Call(func, self._home, loop.create_future())
            expiry = None if deadline is None else loop.call_at(deadline, call.expire)
            with self._lock:
                self._running.add(call)
            self._waiting.add(call)
            try:
                # A copy per call: two loops may run this plugin's calls during a move.
                context = self._context.copy()
                call.home.submit(partial(self._start, call), context)
                return await call.result
            except _Moved:
                continue
            finally:
                self._waiting.discard(call)
                if expiry is not None:
                    expiry.cancel()
                if call.state is not _State.DONE:
                    self._abandon(call)

    def _start(self, call: _Call[Any]) -> None:
        """On the loop thread: the call as a task (metered: created in the worker's context)."""
        call.task = call.home.loop.create_task(self._run(call))

    async def _run(self, call: _Call[Any]) -> None:
        with self._lock:
            if call.state is not _State.QUEUED:
                return  # abandoned before it started
            call.state = _State.STARTED
        try:
            value = await call.func()
        except BaseException as exc:
            ok, value = False, exc
        else:
            ok = True
        finally:
            with self._lock:
                call.state = _State.DONE
                self._running.discard(call)
        call.home.give_back(call, ok, value)

    def _abandon(self, call: _Call[Any]) -> None:
        """The hub stopped waiting: drop a queued call, cancel a running one."""
        with self._lock:
            if call.state is _State.QUEUED:
                call.state = _State.ABANDONED
                self._running.discard(call)
                return
            if call.state is not _State.STARTED:
                return
        task = call.task
        if task is not None:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                call.home.loop.call_soon_threadsafe(task.cancel)

    def move(self, home: LoopThread) -> None:
        """On the hub loop: pin the plugin to ``home``; calls on the old loop start again."""
        old, self._home = self._home, home
        old.workers.discard(self)
        home.workers.add(self)
        if self.rebind is not None:
            self._rebound = asyncio.ensure_future(self._rebind(self.rebind))
        for call in list(self._waiting):
            if call.home is old and not call.result.done():
                call.result.set_exception(_Moved())

    async def _rebind(self, hook: Callable[[], Awaitable[None]]) -> None:
        try:
            await hook()
        except Exception as exc:
            log.warning("plugin %s: re-enabling on its new loop failed: %s", self.name, exc)

    async def rebind_call(self, func: Callable[[], Awaitable[T]], timeout: float) -> T:
        """A call that the ``rebind`` hook makes (it does not wait for itself)."""
        return await self._call(func, timeout, rebinding=True)


class WorkerPool:
    """The shared loops, the dedicated ones, and the watchdog between them."""

    def __init__(
        self,
        size: int = 0,
        *,
        stall_seconds: float = 0.5,
        dedicated: Iterable[str] = (),
    ) -> None:
        self.size = size or default_loop_threads()
        self.stall_seconds = stall_seconds
        self._dedicated_ids = set(dedicated)
        self._shared: list[LoopThread] = []
        self._dedicated: list[LoopThread] = []
        self._retired: list[LoopThread] = []
        self._created = 0
        self._hub: asyncio.AbstractEventLoop | None = None
        self._watchdog: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def threads(self) -> int:
        """Threads the pool runs now (loops and the watchdog)."""
        loops = [*self._shared, *self._dedicated, *self._retired]
        alive = sum(t.thread.is_alive() for t in loops)
        return alive + (self._watchdog is not None and self._watchdog.is_alive())

    def worker(self, plugin_id: str) -> PluginWorker:
        """A new worker for ``plugin_id``: on the least-loaded shared loop, or on a
        loop of its own when the settings name it (or it blocked before)."""
        if plugin_id in self._dedicated_ids:
            home = LoopThread(f"plugin:{plugin_id}", owner=plugin_id)
            self._dedicated.append(home)
            return PluginWorker(plugin_id, home)
        self._start_watchdog()
        if len(self._shared) < self.size:
            self._shared.append(self._new_shared())
        home = min(self._shared, key=lambda t: len(t.workers))
        return PluginWorker(plugin_id, home)

    def _new_shared(self) -> LoopThread:
        self._created += 1
        return LoopThread(f"plugin-loop-{self._created}")

    def _start_watchdog(self) -> None:
        if self._watchdog is not None or self.stall_seconds <= 0:
            return
        self._hub = asyncio.get_running_loop()
        self._watchdog = threading.Thread(
            target=self._watch, name="plugin-loop-watchdog", daemon=True
        )
        self._watchdog.start()

    def _watch(self) -> None:
        # Steps are read without waking anyone; the pings that catch a loop stuck
        # outside any step wake each loop once per threshold (cheap when idle).
        period = self.stall_seconds / 2
        while not self._stopped.wait(period):
            now = time.monotonic()
            for home in list(self._shared):
                if home.stalled:
                    continue
                step = home.step
                blocked_by: PluginWorker | None = None
                if step is not None and now - step[1] > self.stall_seconds:
                    blocked_by = step[0]
                elif (
                    step is None
                    and home.asked is not None
                    and now - home.asked > 2 * self.stall_seconds
                ):
                    pass  # stuck outside any task step (a plain callback): no one to blame
                else:
                    if home.asked is None and now - home.pinged >= self.stall_seconds:
                        home.asked = home.pinged = now
                        with contextlib.suppress(RuntimeError):
                            home.loop.call_soon_threadsafe(home.answer)
                    continue
                home.stalled = True
                assert self._hub is not None
                with contextlib.suppress(RuntimeError):  # the hub is gone
                    self._hub.call_soon_threadsafe(self._take_over, home, blocked_by)

    def _take_over(self, home: LoopThread, blocker: PluginWorker | None) -> None:
        """On the hub loop: a shared loop stalled; give it to its blocker, move the rest."""
        if home not in self._shared or self._stopped.is_set():
            return
        self._shared[self._shared.index(home)] = fresh = self._new_shared()
        movers = [w for w in home.workers if w is not blocker]
        if blocker is not None and blocker.home is home:
            home.owner = blocker.name
            home.workers = {blocker}
            output.bind_thread(blocker.name, home.thread.ident)
            self._dedicated.append(home)
            self._dedicated_ids.add(blocker.name)
            log.warning(
                "plugin %s blocked its event loop for more than %g s; it runs on a thread "
                "of its own from now on (%d other plugins moved to a fresh loop)",
                blocker.name,
                self.stall_seconds,
                len(movers),
            )
        else:
            home.workers = set()
            home.request_stop()
            self._retired.append(home)
            log.warning(
                "a plugin event loop stopped answering for more than %g s outside any "
                "plugin task; its %d plugins moved to a fresh loop",
                self.stall_seconds,
                len(movers),
            )
        for worker in movers:
            worker.move(fresh)

    def request_stop(self) -> None:
        self._stopped.set()
        for home in [*self._shared, *self._dedicated, *self._retired]:
            home.request_stop()

    def join(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` s in all; the plugins whose loop is still stuck."""
        deadline = time.monotonic() + max(0.0, timeout)
        stuck: list[str] = []
        for home in [*self._shared, *self._dedicated, *self._retired]:
            if not home.join(deadline - time.monotonic()):
                stuck.append(home.owner or home.name)
        if self._watchdog is not None:
            self._watchdog.join(timeout=max(0.0, deadline - time.monotonic()))
        return stuck

    def stop(self, timeout: float = 1.0) -> list[str]:
        """Stop every loop; threads stuck in blocking code are left to the process."""
        self.request_stop()
        return self.join(timeout)
