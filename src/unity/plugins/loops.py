"""Plugin loops: daemon threads, each running one event loop for plugin code.

A :class:`LoopThread` is shared by many plugins or dedicated to one (see
:mod:`unity.plugins.worker` for who runs where and the watchdog that moves
them). Every task on it is *metered*: each step (plugin code between two
awaits) is timed on the thread's CPU clock and charged to the plugin
whose call created the task, and the step running now is visible to the
watchdog. Hand-offs with the hub's loop are batched per wake-up: waking a
sleeping thread is most of what a call costs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from unity.plugins import output

if TYPE_CHECKING:
    from unity.plugins.worker import PluginWorker, _Call

__all__ = ["LoopThread", "owner"]

# The worker whose code the current task runs (set in each call's own context).
owner: contextvars.ContextVar[PluginWorker | None] = contextvars.ContextVar(
    "unity_plugin_worker", default=None
)


class _Metered(Coroutine[Any, Any, Any]):
    """A task's coroutine, each step timed: CPU charged to a worker, the step
    visible to the watchdog while it runs."""

    __slots__ = ("_coro", "_thread", "_worker")

    def __init__(
        self, coro: Coroutine[Any, Any, Any], worker: PluginWorker, thread: LoopThread
    ) -> None:
        self._coro = coro
        self._worker = worker
        self._thread = thread

    def send(self, value: Any) -> Any:
        thread = self._thread
        thread.step = (self._worker, time.monotonic())
        start = time.thread_time()
        try:
            return self._coro.send(value)
        finally:
            self._worker.cpu += time.thread_time() - start
            thread.step = None

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        thread = self._thread
        thread.step = (self._worker, time.monotonic())
        start = time.thread_time()
        try:
            if val is None and tb is None:
                return self._coro.throw(typ)
            return self._coro.throw(typ, val, tb)  # pragma: no cover - legacy signature
        finally:
            self._worker.cpu += time.thread_time() - start
            thread.step = None

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:  # pragma: no cover - tasks call send
        return self._coro.__await__()


class LoopThread:
    """A daemon thread running one event loop for plugin coroutines."""

    def __init__(self, name: str, owner: str | None = None) -> None:
        self.name = name
        # The plugin the loop belongs to (dedicated), None while it is shared.
        self.owner = owner
        self.workers: set[PluginWorker] = set()
        # (worker, monotonic start) of the task step running now, for the watchdog.
        self.step: tuple[PluginWorker, float] | None = None
        self.asked: float | None = None  # when the watchdog's ping was sent, unanswered
        self.pinged = 0.0  # when the watchdog last pinged
        self.stalled = False
        # Hand-offs batched per wake-up (waking a sleeping thread is what a call costs
        # most): calls to start here, and outcomes to take back to the hub's loop.
        self._inbox: collections.deque[tuple[Callable[[], None], contextvars.Context]]
        self._inbox = collections.deque()
        self._inbox_woken = False
        self._outbox: collections.deque[tuple[_Call[Any], bool, Any]] = collections.deque()
        self._outbox_woken = False
        self.loop = asyncio.new_event_loop()
        self.loop.set_task_factory(self._task)
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def _task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        worker = owner.get() if context is None else context.get(owner)
        if worker is not None:
            coro = _Metered(coro, worker, self)
        return asyncio.Task(coro, loop=loop, context=context)

    def _serve(self) -> None:
        if self.owner is not None:
            output.bind_thread(self.owner)
        try:
            self.loop.run_forever()
            # Calls left on a loop that was stopped (retired, or the hub stopping) are
            # cancelled and given a moment to unwind, not destroyed while pending.
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        finally:
            output.unbind_thread()
            # Closed here, by its own thread, whenever that thread gets free: the hub
            # does not wait for a plugin stuck in blocking code.
            self.loop.close()

    def answer(self) -> None:
        self.asked = None

    def submit(self, start: Callable[[], None], context: contextvars.Context) -> None:
        """From the hub's loop: run ``start`` in ``context`` on this loop, soon.

        Only the first of the calls submitted before the loop gets to them wakes
        it; the loop takes all of them in one go.
        """
        self._inbox.append((start, context))
        if not self._inbox_woken:
            self._inbox_woken = True
            self.loop.call_soon_threadsafe(self._take_inbox)

    def _take_inbox(self) -> None:
        # Cleared before taking: a call appended after this line wakes the loop again.
        self._inbox_woken = False
        inbox = self._inbox
        while inbox:
            start, context = inbox.popleft()
            context.run(start)

    def give_back(self, call: _Call[Any], ok: bool, value: Any) -> None:
        """From this loop: hand a call's outcome to the hub's loop (batched the same way)."""
        hub = call.result.get_loop()
        self._outbox.append((call, ok, value))
        if not self._outbox_woken:
            self._outbox_woken = True
            try:
                hub.call_soon_threadsafe(self._take_outbox)
            except RuntimeError:  # the hub's loop is closed: nobody waits any more
                self._outbox.clear()
                self._outbox_woken = False

    def _take_outbox(self) -> None:
        self._outbox_woken = False
        here = asyncio.get_running_loop()
        outbox = self._outbox
        while outbox:
            call, ok, value = outbox.popleft()
            hub = call.result.get_loop()
            if hub is here:
                call.deliver(ok, value)
            else:  # a call from another event loop of the process (tests run several)
                with contextlib.suppress(RuntimeError):
                    hub.call_soon_threadsafe(call.deliver, ok, value)

    def request_stop(self) -> None:
        """Ask the loop to stop; it does once the plugin's code lets the thread go."""
        with contextlib.suppress(RuntimeError):  # already stopped and closed
            self.loop.call_soon_threadsafe(self.loop.stop)

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout=max(0.0, timeout))
        return not self.thread.is_alive()
