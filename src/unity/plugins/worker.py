"""Where plugin code runs: a thread with its own event loop per plugin.

A plugin's ``async`` methods may still block (psutil, subprocess.run, sync
database drivers). Running every plugin on its own worker thread and loop keeps
the hub's event loop and every other plugin on schedule whatever one plugin
does. A timed-out call is cancelled in the worker loop; if the plugin is stuck
in blocking code the cancellation lands when it returns, and meanwhile the
worker reports itself busy so the scheduler skips instead of piling up runs.

The thread is a daemon: when the hub stops, a thread stuck in a plugin's
blocking code is abandoned rather than waited for. Everything the thread (and
each call's context) prints or logs is charged to the plugin's output budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from unity.plugins import output

__all__ = ["PluginWorker"]

T = TypeVar("T")


class PluginWorker:
    """A daemon thread running an event loop for one plugin's coroutines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._inflight = 0
        self._cpu = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"plugin:{name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        output.bind_thread(self.name)
        try:
            self._loop.run_forever()
        finally:
            output.unbind_thread()
            # Closed here, by its own thread, whenever that thread gets free: the hub
            # does not wait for a plugin stuck in blocking code.
            self._loop.close()

    def cpu_seconds(self) -> float:
        """CPU time the worker thread has used so far (0 where the OS cannot tell)."""
        ident = self._thread.ident
        if ident is None or not hasattr(time, "pthread_getcpuclockid"):
            return 0.0
        # Once the thread has ended, its clock is gone: keep the last reading.
        with contextlib.suppress(OSError):
            self._cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
        return self._cpu

    @property
    def busy(self) -> bool:
        """True while a submitted call has not finished in the worker thread."""
        with self._lock:
            return self._inflight > 0

    async def call(self, func: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run ``func()`` on the worker loop; ``TimeoutError`` after ``timeout`` seconds."""
        with self._lock:
            self._inflight += 1

        async def tracked() -> T:
            try:
                with output.attributed(self.name):
                    return await func()
            finally:
                with self._lock:
                    self._inflight -= 1

        try:
            future = asyncio.run_coroutine_threadsafe(tracked(), self._loop)
        except RuntimeError:
            with self._lock:
                self._inflight -= 1
            raise
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    def request_stop(self) -> None:
        """Ask the loop to stop; it does once the plugin's code lets the thread go."""
        with contextlib.suppress(RuntimeError):  # already stopped and closed
            self._loop.call_soon_threadsafe(self._loop.stop)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the thread (and its loop) to end."""
        self._thread.join(timeout=max(0.0, timeout))
        return not self._thread.is_alive()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the loop; a thread stuck in blocking code is left to die with the process."""
        self.request_stop()
        return self.join(timeout)
