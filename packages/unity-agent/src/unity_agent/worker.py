"""Where an instance's plugin code runs: its own thread with its own event loop.

The hub does the same for plugins in ``thread`` isolation: a plugin's
``async`` methods may still block (psutil, subprocess.run, sync drivers), and
on its own thread that blocks only its own runs. The agent's event loop, the
other instances' timers and the sender keep going. A timed-out call is
cancelled in the worker loop; a plugin stuck in blocking code meanwhile keeps
the worker busy, so its timer skips ticks instead of piling runs up. The
thread is a daemon: a plugin stuck for good is abandoned when the agent stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Worker"]

T = TypeVar("T")


class Worker:
    """A daemon thread running an event loop for one plugin instance."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._inflight = 0
        self._cpu = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"plugin:{name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    @property
    def busy(self) -> bool:
        """True while a submitted call has not finished in the worker thread."""
        with self._lock:
            return self._inflight > 0

    def cpu_seconds(self) -> float:
        """CPU time the thread has used so far (0 where the OS cannot tell)."""
        ident = self._thread.ident
        if ident is None or not hasattr(time, "pthread_getcpuclockid"):
            return 0.0
        with contextlib.suppress(OSError):  # the thread has ended: keep the last reading
            self._cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
        return self._cpu

    async def call(self, func: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run ``func()`` on the worker loop; ``TimeoutError`` after ``timeout`` seconds."""
        with self._lock:
            self._inflight += 1

        async def tracked() -> T:
            try:
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

    def stop(self, timeout: float = 0.5) -> bool:
        """Stop the loop and wait up to ``timeout`` s; a thread stuck in plugin
        code is left to end with the process. True when it ended."""
        with contextlib.suppress(RuntimeError):  # already stopped and closed
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=max(0.0, timeout))
        return not self._thread.is_alive()
