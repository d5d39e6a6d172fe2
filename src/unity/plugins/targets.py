"""Collecting from several targets in one run: the hub and inventory servers.

A plugin with ``supports_remote`` and a ``targets`` config gets one instance
per target; each run calls every instance's ``collect_data`` concurrently on
the plugin's worker loop, each under the plugin's timeout. One target failing
does not lose the others' documents: the run is recorded as failed, with
every successful document stored under its target's host name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from unity_sdk import CollectionError, PluginBase, PluginError

__all__ = ["TargetsFailedError", "collect_each"]


class TargetsFailedError(CollectionError):
    """Some targets failed; ``documents`` holds what the others collected."""

    def __init__(
        self, failures: dict[str, BaseException], documents: list[tuple[str, dict[str, Any]]]
    ) -> None:
        described = "; ".join(f"{host}: {_describe(exc)}" for host, exc in failures.items())
        super().__init__(f"{len(failures)} target(s) failed: {described}")
        self.failures = failures
        self.documents = documents
        self.recoverable = all(
            not isinstance(exc, PluginError) or exc.recoverable for exc in failures.values()
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def collect_each(
    instances: Sequence[tuple[str, PluginBase[Any]]], timeout: float
) -> list[tuple[str, Any]]:
    """``(host, result or exception)`` per target, each collected under ``timeout``."""

    async def one(instance: PluginBase) -> Any:
        return await asyncio.wait_for(instance.collect_data(), timeout)

    results = await asyncio.gather(
        *(one(instance) for _, instance in instances), return_exceptions=True
    )
    return [(host, result) for (host, _), result in zip(instances, results, strict=True)]
