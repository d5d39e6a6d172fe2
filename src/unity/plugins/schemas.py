"""Checking a foreign config schema off the event loop, with a time limit.

The rules for schemas (self-contained, no fetching) live in the SDK
(in the SDK). Even confined, a hostile schema from an external
plugin can be slow to check (exponential ``anyOf`` chains, huge documents).
:func:`run_bounded` runs such work on a small thread pool of its own with a
time limit, so the event loop keeps serving and a runaway check costs at most
that pool, not the hub.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_bounded"]

T = TypeVar("T")

# Foreign checks share these threads and nothing else does: a schema that
# never finishes ties up one of them, never the loop or the default executor.
_WORKERS = 2


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="unity-schema")


async def run_bounded(func: Callable[..., T], *args: Any, timeout: float, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` on the schema threads; ``TimeoutError`` after ``timeout`` s.

    On timeout the call's answer is dropped; a thread already running it
    finishes in the background (Python cannot stop a thread).
    """
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_executor(), functools.partial(func, *args, **kwargs))
    return await asyncio.wait_for(future, timeout)
