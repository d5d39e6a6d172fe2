"""Where plugin code runs: a thread with its own event loop per plugin.

A plugin's ``async`` methods may still block (psutil, subprocess.run, sync
database drivers). Running every plugin on its own worker thread and loop keeps
the hub's event loop and every other plugin on schedule whatever one plugin
does. A timed-out call is cancelled in the worker loop; if the plugin is stuck
in blocking code the cancellation lands when it returns, and meanwhile the
worker reports itself busy so the scheduler skips instead of piling up runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["PluginWorker"]

T = TypeVar("T")


class PluginWorker:
    """A daemon thread running an event loop for one plugin's coroutines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._inflight = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"plugin:{name}", daemon=True
        )
        self._thread.start()

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

    def stop(self) -> None:
        """Stop the loop; a thread stuck in blocking code is left to die with the process."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=1.0)
        if not self._thread.is_alive():
            self._loop.close()
