"""Plugins that misbehave on purpose, installed into real hubs as entry points.

Each class is one way third-party code can hurt the process it runs in:
blocking, hanging, spinning, leaking, flooding output, returning huge
documents, exiting the process. :func:`install` writes a real distribution
(``dist-info`` with entry points) naming any of them, for a hub started with
``PYTHONPATH`` = :func:`python_path`.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from unity_sdk import (
    CollectionError,
    Isolation,
    MetricField,
    PluginBase,
    PluginCategory,
    PluginMetadata,
)

REPO = Path(__file__).parents[2]
_FOREVER = 3600.0


class _Base(PluginBase):
    plugin_id: ClassVar[str] = "bad-base"
    interval: ClassVar[float] = 1.0
    timeout: ClassVar[float] = 1.0
    isolation: ClassVar[Isolation] = Isolation.THREAD

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id=self.plugin_id,
            name=self.plugin_id.replace("-", " ").title(),
            version="1.0.0",
            category=PluginCategory.CUSTOM,
            metrics=[MetricField(name="value")],
            default_interval=self.interval,
            timeout=self.timeout,
            isolation=self.isolation,
        )

    async def collect_data(self) -> dict[str, Any]:
        return {"value": 1}


class Healthy(_Base):
    plugin_id = "healthy"
    interval = 0.5


class Healthy2(Healthy):
    plugin_id = "healthy-two"


class Healthy3(Healthy):
    plugin_id = "healthy-three"


class Healthy4(Healthy):
    plugin_id = "healthy-four"


class MetadataBlocks(_Base):
    """get_metadata() never returns (a network call without a timeout, say)."""

    plugin_id = "metadata-blocks"

    def get_metadata(self) -> PluginMetadata:
        threading.Event().wait()
        raise AssertionError("unreachable")


class CollectBlocks(_Base):
    """collect_data() blocks its thread for an hour: cancellation cannot reach it."""

    plugin_id = "collect-blocks"

    async def collect_data(self) -> dict[str, Any]:
        time.sleep(_FOREVER)
        return {"value": 1}


class CollectBlocks2(CollectBlocks):
    plugin_id = "collect-blocks-two"


class CollectBlocks3(CollectBlocks):
    plugin_id = "collect-blocks-three"


class DisableBlocks(_Base):
    """on_disable() never returns: the hub must still stop on time."""

    plugin_id = "disable-blocks"

    async def on_disable(self) -> None:
        time.sleep(_FOREVER)


class EnableBlocks(_Base):
    """on_enable() never returns: the hub must still start."""

    plugin_id = "enable-blocks"

    async def on_enable(self) -> None:
        time.sleep(_FOREVER)


class SlowEnable(_Base):
    """on_enable() takes two seconds (a slow service to connect to)."""

    plugin_id = "slow-enable"

    async def on_enable(self) -> None:
        time.sleep(2.0)


class Hangs(_Base):
    """Awaits forever: only the timeout ends each run."""

    plugin_id = "hangs"

    async def collect_data(self) -> dict[str, Any]:
        await asyncio.sleep(_FOREVER)
        return {"value": 1}


class SpinsCpu(_Base):
    """Burns pure-Python CPU for most of each run (holding the GIL between switches)."""

    plugin_id = "spins-cpu"

    async def collect_data(self) -> dict[str, Any]:
        end = time.monotonic() + 0.8
        count = 0
        while time.monotonic() < end:
            count += 1
        return {"value": count}


class Leaks(_Base):
    """Allocates without bound; declared process-isolated, so the cap stops it."""

    plugin_id = "leaks"
    isolation = Isolation.PROCESS
    timeout = 5.0
    interval = 2.0
    kept: ClassVar[list[bytes]] = []

    async def collect_data(self) -> dict[str, Any]:
        while True:
            self.kept.append(b"x" * (16 * 1024 * 1024))


class Raises(_Base):
    """Raises with a one-megabyte message on every run."""

    plugin_id = "raises"

    async def collect_data(self) -> dict[str, Any]:
        raise CollectionError("bad " * 250_000)


class RaisesUnexpected(_Base):
    """Raises a non-SDK error (logged with its traceback) with a huge message."""

    plugin_id = "raises-unexpected"

    async def collect_data(self) -> dict[str, Any]:
        raise RuntimeError("boom " * 200_000)


class Prints(_Base):
    """print() in a loop: 20,000 lines of 100 characters per run."""

    plugin_id = "prints"
    timeout = 10.0

    async def collect_data(self) -> dict[str, Any]:
        line = "p" * 99
        for _ in range(20_000):
            print(line)
        return {"value": 1}


class Logs(_Base):
    """Its logger in a loop: 20,000 warnings of 100 characters per run."""

    plugin_id = "logs"
    timeout = 10.0

    async def collect_data(self) -> dict[str, Any]:
        for index in range(20_000):
            self.logger.warning("flood %06d %s", index, "l" * 87)
        return {"value": 1}


class HugeDocument(_Base):
    """Returns a 5 MB document every run."""

    plugin_id = "huge-document"

    async def collect_data(self) -> dict[str, Any]:
        return {"value": 1, "blob": "d" * 5_000_000}


class HugeDocumentIsolated(HugeDocument):
    plugin_id = "huge-document-isolated"
    isolation = Isolation.PROCESS
    timeout = 20.0


class PrintsIsolated(Prints):
    plugin_id = "prints-isolated"
    isolation = Isolation.PROCESS
    timeout = 20.0


class ExitsIsolated(_Base):
    """Calls os._exit() in a process-isolated run."""

    plugin_id = "exits-isolated"
    isolation = Isolation.PROCESS
    timeout = 10.0

    async def collect_data(self) -> dict[str, Any]:
        os._exit(3)


class ExitsThread(_Base):
    """Calls os._exit() and declares nothing: in thread mode it would kill the hub."""

    plugin_id = "exits-thread"
    timeout = 10.0

    async def collect_data(self) -> dict[str, Any]:
        os._exit(3)


class ExitsThread2(ExitsThread):
    plugin_id = "exits-thread-two"


ALL: list[type[_Base]] = [
    Healthy,
    Healthy2,
    Healthy3,
    Healthy4,
    MetadataBlocks,
    CollectBlocks,
    CollectBlocks2,
    CollectBlocks3,
    DisableBlocks,
    EnableBlocks,
    Hangs,
    SpinsCpu,
    Leaks,
    Raises,
    RaisesUnexpected,
    Prints,
    Logs,
    HugeDocument,
    ExitsIsolated,
    ExitsThread,
    ExitsThread2,
]
IMPORT_BLOCKS = "import-blocks"


def install(site: Path, classes: list[type[_Base]], *, import_blocks: bool = False) -> Path:
    """A distribution in ``site`` whose entry points are ``classes`` (by their ids).

    With ``import_blocks`` it also names a module whose import never finishes.
    """
    site.mkdir(parents=True, exist_ok=True)
    lines = [f"{cls.plugin_id} = {__name__}:{cls.__name__}" for cls in classes]
    if import_blocks:
        (site / "unity_import_blocks.py").write_text("import threading\nthreading.Event().wait()\n")
        lines.append(f"{IMPORT_BLOCKS} = unity_import_blocks:Plugin")
    dist = site / "unity_misbehaving-1.0.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: unity-misbehaving\nVersion: 1.0.0\n"
    )
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("[unity.plugins]\n") + "\n".join(lines) + "\n"
    )
    return site


def python_path(site: Path) -> str:
    """``PYTHONPATH`` for a hub that loads the distribution in ``site``."""
    return os.pathsep.join([str(site), str(REPO)])
