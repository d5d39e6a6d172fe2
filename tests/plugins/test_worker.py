"""Plugin loops: shared by many plugins, a thread of its own for one that blocks.

Real managers on SQLite; the blocking plugin blocks its thread for real (on an
event the test releases), and the loop-bound plugin talks to the local Redis.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from tests.support import misbehaving

from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import PluginExecution
from unity_sdk import CollectionError, PluginBase, PluginMetadata

REDIS = urlsplit(os.environ.get("UNITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
# Released by the test: until then the blocker holds whatever thread runs it.
RELEASE = threading.Event()


class Blocker(misbehaving._Base):
    """Blocks its thread in collect_data until the test releases it."""

    plugin_id = "blocker"
    interval = 60.0

    async def collect_data(self) -> dict[str, Any]:
        RELEASE.wait(30)
        return {"value": 1}


class BlocksInACallback(misbehaving._Base):
    """Leaves a plain callback on its loop that blocks the thread (outside any task)."""

    plugin_id = "blocks-in-a-callback"
    interval = 60.0

    async def collect_data(self) -> dict[str, Any]:
        asyncio.get_running_loop().call_soon(RELEASE.wait, 30)
        return {"value": 1}


class Steady(misbehaving._Base):
    plugin_id = "steady"
    interval = 0.5


class LoopBound(misbehaving._Base):
    """Opens a Redis client in on_enable and uses it on every run (as redis.asyncio,
    asyncpg or aiomqtt plugins do): it works only on the loop it was made on."""

    plugin_id = "loop-bound"
    interval = 0.5
    enabled_on: ClassVar[list[asyncio.AbstractEventLoop]] = []
    ran_on: ClassVar[list[asyncio.AbstractEventLoop]] = []
    # Clients left on a loop the plugin was moved off (closed there by the test).
    stale: ClassVar[list[tuple[asyncio.AbstractEventLoop, Redis]]] = []

    async def on_enable(self) -> None:
        if hasattr(self, "client"):
            self.stale.append((self.loop, self.client))
        self.loop = asyncio.get_running_loop()
        self.client = Redis(host=REDIS.hostname or "127.0.0.1", port=REDIS.port or 6379)
        await self.client.ping()
        self.enabled_on.append(self.loop)

    async def on_disable(self) -> None:
        await self.client.aclose()

    async def collect_data(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self.ran_on.append(loop)
        if loop is not self.loop:
            raise CollectionError("called on another loop than its client's")
        return {"value": int(await self.client.incr("unity-test-loop-bound"))}


class Spins(misbehaving._Base):
    """Burns 0.1 s of its thread's CPU per run (well under the stall threshold)."""

    plugin_id = "spins"

    async def collect_data(self) -> dict[str, Any]:
        start = time.thread_time()
        while time.thread_time() - start < 0.1:
            pass
        return {"value": 1}


class Chatty(misbehaving._Base):
    """Prints 200 lines of 100 characters, yielding to the loop between lines."""

    plugin_id = "chatty"
    timeout = 10.0

    async def collect_data(self) -> dict[str, Any]:
        for _ in range(200):
            print("c" * 99)
            await asyncio.sleep(0)
        return {"value": 1}


class ChattyAlone(Chatty):
    plugin_id = "chatty-alone"


class Quiet(misbehaving._Base):
    """Prints 20 short numbered lines, interleaved with the chatty plugin's."""

    plugin_id = "quiet"
    timeout = 10.0

    async def collect_data(self) -> dict[str, Any]:
        for number in range(20):
            print(f"quiet {number:02d}")
            await asyncio.sleep(0)
        return {"value": 1}


def _noop(number: int) -> type[PluginBase]:
    metadata = PluginMetadata(id=f"noop-{number:03d}", name=f"No-op {number}", version="1.0.0")

    def get_metadata(self: PluginBase) -> PluginMetadata:
        return metadata

    async def collect_data(self: PluginBase) -> dict[str, Any]:
        return {"v": 1}

    namespace = {"get_metadata": get_metadata, "collect_data": collect_data, "__module__": __name__}
    return type(f"Noop{number:03d}", (PluginBase,), namespace)


NOOPS = [_noop(number) for number in range(1, 201)]


@pytest.fixture
def base(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unity.db'}",
        hostname="test-host",
        autoenable=[],
        bootstrap_token=False,
        scheduler_jitter=0.0,
        retention_check_seconds=3600,
        discovery_seconds=0,
        health_check_seconds=0,
    )


@pytest.fixture
async def start(base: Settings) -> AsyncIterator[Callable[..., Awaitable[PluginManager]]]:
    managers: list[PluginManager] = []

    async def make(classes: list[type[Any]], **overrides: Any) -> PluginManager:
        db = Database(base.effective_database_url)
        await db.upgrade()
        loader = PluginLoader(classes, group="unity.plugins.none-in-tests")
        manager = PluginManager(db, base.model_copy(update=overrides), loader)
        await manager.start()
        managers.append(manager)
        return manager

    RELEASE.clear()
    LoopBound.enabled_on.clear()
    LoopBound.ran_on.clear()
    LoopBound.stale.clear()
    yield make
    RELEASE.set()
    for manager in managers:
        await manager.stop()
        await manager.db.dispose()


async def _until(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    for _ in range(3000):
        answer = condition()
        if await answer if inspect.isawaitable(answer) else answer:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def _statuses(manager: PluginManager, plugin_id: str) -> list[str]:
    async with manager.db.session() as session:
        rows = await session.scalars(
            select(PluginExecution.status)
            .where(PluginExecution.plugin_id == plugin_id)
            .order_by(PluginExecution.id)
        )
        return list(rows)


async def test_two_hundred_plugins_share_a_few_loop_threads(
    start: Callable[..., Awaitable[PluginManager]],
) -> None:
    before = threading.active_count()
    manager = await start(NOOPS, plugin_loop_threads=3)
    pool = manager.registry.workers
    homes = {managed.worker.home for managed in manager.plugins.values()}
    assert len(manager.plugins) == 200
    assert len(homes) == 3
    assert not any(managed.worker.dedicated for managed in manager.plugins.values())
    # Pinned evenly: no loop carries more than its share.
    assert max(len(home.workers) for home in homes) <= 67
    results = await asyncio.gather(*(manager.execute(m) for m in manager.plugins))
    assert {result.status for result in results} == {"success"}
    assert pool.threads == 3 + 1  # the loops and the watchdog
    # The loader's threads are gone by now; what is left does not grow with the plugins
    # (the database's and the executor's threads are a few, whatever the count).
    await _until(lambda: threading.active_count() - before <= 4 + 8, "the loader threads to end")


async def test_a_loop_bound_client_keeps_working_across_runs(
    start: Callable[..., Awaitable[PluginManager]],
) -> None:
    manager = await start([LoopBound, Steady], plugin_loop_threads=1)
    await manager.enable("loop-bound")
    for _ in range(3):
        assert (await manager.execute("loop-bound")).status == "success"
    [loop] = LoopBound.enabled_on
    # The manual runs and the scheduled ones (enabling runs it at once) share the loop.
    assert len(LoopBound.ran_on) >= 3
    assert all(ran is loop for ran in LoopBound.ran_on)
    assert manager.get("loop-bound").worker.home is manager.get("steady").worker.home


async def test_a_blocking_plugin_gets_its_own_thread_and_the_others_keep_their_schedule(
    start: Callable[..., Awaitable[PluginManager]],
) -> None:
    manager = await start(
        [Blocker, Steady, LoopBound],
        plugin_loop_threads=1,
        plugin_stall_seconds=0.2,
        autoenable=["steady", "loop-bound"],
    )
    blocker, steady, bound = (manager.get(i) for i in ("blocker", "steady", "loop-bound"))
    await _until(lambda: _has_runs(manager, "loop-bound", 1), "the loop-bound plugin to run")
    assert LoopBound.enabled_on == [blocker.worker.home.loop]
    # Enabled, the blocker runs at once and blocks the one shared loop (all three are
    # there): the watchdog gives that thread to the blocker and moves the others to a
    # fresh loop.
    await manager.enable("blocker")
    await _until(lambda: blocker.worker.dedicated, "the blocker to get its own thread")
    shared = blocker.worker.home
    assert shared.name == "plugin-loop-1"
    assert steady.worker.home.name == "plugin-loop-2"
    assert steady.worker.home is not shared
    assert bound.worker.home is steady.worker.home
    assert not steady.worker.dedicated
    # The others go on running on schedule while the blocker is still stuck.
    ran = len(await _statuses(manager, "steady"))
    await _until(
        lambda: _has_runs(manager, "steady", ran + 3), "three more runs of the steady plugin"
    )
    await _until(lambda: _has_runs(manager, "loop-bound", 2), "runs of the loop-bound plugin")
    assert blocker.worker.busy
    assert set(await _statuses(manager, "steady")) == {"success"}
    # The loop-bound plugin was enabled again on its new loop; every run used the
    # client of the loop it ran on.
    assert set(await _statuses(manager, "loop-bound")) == {"success"}
    assert len(LoopBound.enabled_on) == 2
    assert LoopBound.ran_on[-1] is LoopBound.enabled_on[-1]
    assert manager.registry.workers.threads == 3  # fresh loop, blocker's thread, watchdog
    assert (await _statuses(manager, "blocker")) == ["timed_out"]
    # Released, the blocker keeps its own thread and runs there.
    RELEASE.set()
    await _until(lambda: not blocker.worker.busy, "the blocker's thread to return")
    # The client made on the old loop stayed there; it is closed there.
    [(old_loop, old_client)] = LoopBound.stale
    assert old_loop is shared.loop
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(old_client.aclose(), old_loop))
    assert (await manager.execute("blocker")).status == "success"
    assert blocker.worker.home is shared


async def test_a_loop_stuck_outside_any_plugin_task_is_retired_with_all_its_plugins_moved(
    start: Callable[..., Awaitable[PluginManager]],
) -> None:
    manager = await start(
        [BlocksInACallback, Steady],
        plugin_loop_threads=1,
        plugin_stall_seconds=0.2,
        autoenable=["steady"],
    )
    culprit, steady = manager.get("blocks-in-a-callback"), manager.get("steady")
    stuck = steady.worker.home
    await _until(lambda: _has_runs(manager, "steady", 1), "the steady plugin to run")
    assert (await manager.execute("blocks-in-a-callback")).status == "success"
    # No task step to blame: every plugin moves to a fresh loop, none is dedicated.
    await _until(lambda: steady.worker.home is not stuck, "the plugins to move")
    assert culprit.worker.home is steady.worker.home
    assert not culprit.worker.dedicated
    assert not steady.worker.dedicated
    ran = len(await _statuses(manager, "steady"))
    await _until(lambda: _has_runs(manager, "steady", ran + 2), "the steady plugin to go on")
    assert set(await _statuses(manager, "steady")) == {"success"}
    RELEASE.set()
    await _until(lambda: not stuck.thread.is_alive(), "the retired loop to end")


async def _has_runs(manager: PluginManager, plugin_id: str, count: int) -> bool:
    return len(await _statuses(manager, plugin_id)) >= count


async def test_plugins_named_in_the_settings_start_on_a_thread_of_their_own(
    start: Callable[..., Awaitable[PluginManager]],
) -> None:
    manager = await start([Steady, Blocker], plugin_dedicated_threads=["blocker"])
    blocker = manager.get("blocker")
    assert blocker.worker.dedicated
    assert blocker.worker.home.thread.name == "plugin:blocker"
    assert not manager.get("steady").worker.dedicated


async def test_cpu_is_charged_to_the_plugin_that_used_it_on_a_shared_loop(
    start: Callable[..., Awaitable[PluginManager]],
) -> None:
    manager = await start([Spins, Steady], plugin_loop_threads=1, plugin_cpu_share=0)
    spins, steady = manager.get("spins"), manager.get("steady")
    assert spins.worker.home is steady.worker.home
    await asyncio.gather(manager.execute("spins"), manager.execute("steady"))
    assert spins.worker.cpu_seconds() >= 0.1
    assert steady.worker.cpu_seconds() < spins.worker.cpu_seconds() / 10


async def test_output_is_charged_to_the_plugin_that_wrote_it_on_a_shared_loop(
    start: Callable[..., Awaitable[PluginManager]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    manager = await start(
        [Chatty, Quiet, ChattyAlone],
        plugin_loop_threads=1,
        plugin_output_bytes=5_000,
        plugin_dedicated_threads=["chatty-alone"],
    )
    assert manager.get("chatty").worker.home is manager.get("quiet").worker.home
    assert manager.get("chatty-alone").worker.dedicated
    capsys.readouterr()
    results = await asyncio.gather(*(manager.execute(i) for i in ("chatty", "quiet")))
    assert {r.status for r in results} == {"success"}
    lines = capsys.readouterr().out.splitlines()
    # Every line of the quiet plugin got through, interleaved with the capped flood.
    assert [line for line in lines if line.startswith("quiet")] == [
        f"quiet {n:02d}" for n in range(20)
    ]
    assert 45 <= sum(line.startswith("c") for line in lines) <= 55
    limited = [r.getMessage() for r in caplog.records if "output limit" in r.getMessage()]
    assert len(limited) == 1
    assert limited[0].startswith("plugin chatty: output limit")
    # On a thread of its own, the plugin is charged the same way.
    assert (await manager.execute("chatty-alone")).status == "success"
    alone = capsys.readouterr().out.splitlines()
    assert 45 <= sum(line.startswith("c") for line in alone) <= 55
