"""Per-plugin output budgets: what plugin code prints and logs, bounded per run.

In-hub plugins share the hub's ``sys.stdout``, ``sys.stderr`` and logging
handlers, so one plugin printing in a loop can fill the disk. While a manager
runs, the standard streams are wrapped and the root logger's handlers get a
filter; a write or log record is charged to the plugin whose code produced it
-- code on a thread of the plugin's own, or anything running in the plugin's
context (its calls on a shared plugin loop, the tasks they create and the
threads they start with ``asyncio.to_thread``).
Each plugin has a budget of ``limit`` bytes that refills at ``limit`` bytes a
minute: a run may write up to ``limit`` at once, and a plugin running every
second still writes no more than ``limit`` a minute. The rest is dropped,
counted, and reported in one warning when the run ends. Output the hub writes
itself is never charged.

C extensions writing to file descriptor 1 or 2 directly bypass this; such
plugins belong in process isolation, where the child's output is read by the
hub through a bounded pipe.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO, cast

__all__ = ["OutputBudget", "OutputGuard", "attributed", "bind_thread", "guard", "set_owner"]

_current: ContextVar[str | None] = ContextVar("unity_plugin_output_owner", default=None)
_threads: dict[int, str] = {}


def bind_thread(plugin_id: str, ident: int | None = None) -> None:
    """Charge everything a thread writes to ``plugin_id`` (a plugin's own loop thread):
    the calling thread, or the one whose ident is given."""
    _threads[threading.get_ident() if ident is None else ident] = plugin_id


def unbind_thread() -> None:
    _threads.pop(threading.get_ident(), None)


@contextlib.contextmanager
def attributed(plugin_id: str) -> Iterator[None]:
    """Charge what runs in this context (and tasks or threads it starts) to ``plugin_id``."""
    token = _current.set(plugin_id)
    try:
        yield
    finally:
        _current.reset(token)


def set_owner(plugin_id: str) -> None:
    """Charge what runs in the current context from now on to ``plugin_id`` (used to
    prepare the context every call of a plugin runs in)."""
    _current.set(plugin_id)


def owner() -> str | None:
    """The plugin the current code writes for, or None for the hub itself."""
    return _current.get() or _threads.get(threading.get_ident())


REFILL_SECONDS = 60.0


class OutputBudget:
    """A token bucket of output bytes for one plugin: ``limit`` at once, ``limit`` a minute."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tokens = float(limit)
        self.dropped_writes = 0
        self.dropped_bytes = 0
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def admit(self, size: int) -> bool:
        with self._lock:
            now = time.monotonic()
            refill = (now - self._stamp) * self.limit / REFILL_SECONDS
            self.tokens = min(float(self.limit), self.tokens + refill)
            self._stamp = now
            if size <= self.tokens:
                self.tokens -= size
                return True
            self.dropped_writes += 1
            self.dropped_bytes += size
            return False

    def settle(self) -> tuple[int, int]:
        """Return (and forget) what was dropped since the last call: writes, bytes."""
        with self._lock:
            dropped = (self.dropped_writes, self.dropped_bytes)
            self.dropped_writes = self.dropped_bytes = 0
            return dropped


class _GuardedStream:
    """``sys.stdout``/``sys.stderr`` as plugins see them: charged to their budget."""

    def __init__(self, stream: TextIO, guard: OutputGuard) -> None:
        self._stream = stream
        self._guard = guard

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def write(self, text: str) -> int:
        budget = self._guard.budget_of_owner()
        if budget is None or budget.admit(len(text)):
            return self._stream.write(text)
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _BudgetFilter(logging.Filter):
    """Drops log records of plugins past their budget (decided once per record)."""

    def __init__(self, guard: OutputGuard) -> None:
        super().__init__("unity.plugin-output")
        self._guard = guard

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = record.__dict__.get("_unity_output_admitted")
        if verdict is None:
            budget = self._guard.budget_of_owner()
            if budget is None:
                verdict = True
            else:
                try:
                    size = len(record.getMessage())
                except Exception:
                    size = len(str(record.msg))
                if record.exc_info and record.exc_info[1] is not None:
                    # The traceback's last line repeats the message; count it too.
                    size += len(str(record.exc_info[1])) + 512
                verdict = budget.admit(size)
            record.__dict__["_unity_output_admitted"] = verdict
        return bool(verdict)


class OutputGuard:
    """The process-wide wrapper of the standard streams and the logging filter.

    Managers install it when they start and remove it when they stop; it stays
    in place while at least one manager runs (tests and benchmarks run several).
    """

    def __init__(self) -> None:
        self._budgets: dict[str, OutputBudget] = {}
        self._lock = threading.Lock()
        self._users = 0
        self._filter = _BudgetFilter(self)

    def register(self, plugin_id: str, limit: int) -> OutputBudget:
        """A full budget of ``limit`` bytes for ``plugin_id`` (replacing any earlier one)."""
        with self._lock:
            budget = self._budgets[plugin_id] = OutputBudget(limit)
            return budget

    def budget(self, plugin_id: str, limit: int) -> OutputBudget:
        """The budget of ``plugin_id`` (registered on first use)."""
        existing = self._budgets.get(plugin_id)
        return existing if existing is not None else self.register(plugin_id, limit)

    def budget_of_owner(self) -> OutputBudget | None:
        plugin_id = owner()
        return None if plugin_id is None else self._budgets.get(plugin_id)

    def install(self) -> None:
        with self._lock:
            self._users += 1
        self.refresh()

    def uninstall(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            # Unwrap whatever stream is current (someone may have replaced ours since).
            if isinstance(sys.stdout, _GuardedStream):
                sys.stdout = sys.stdout.wrapped
            if isinstance(sys.stderr, _GuardedStream):
                sys.stderr = sys.stderr.wrapped
            for handler in logging.getLogger().handlers:
                handler.removeFilter(self._filter)

    def refresh(self) -> None:
        """Wrap the standard streams and filter the root logger's handlers again.

        Called before every run: a stream replaced since (``redirect_stdout``, a
        test's capture) or a handler added since is covered from then on.
        """
        with self._lock:
            if self._users <= 0:
                return
            if not isinstance(sys.stdout, _GuardedStream):
                sys.stdout = cast(TextIO, _GuardedStream(sys.stdout, self))
            if not isinstance(sys.stderr, _GuardedStream):
                sys.stderr = cast(TextIO, _GuardedStream(sys.stderr, self))
        for handler in logging.getLogger().handlers:
            if self._filter not in handler.filters:
                handler.addFilter(self._filter)


guard = OutputGuard()
