"""Per-run limits on what a plugin may produce: documents, errors, printed and logged output."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support import misbehaving

from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.plugins.output import OutputBudget
from unity.plugins.runtime import MAX_ERROR_CHARS
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import PluginExecution, PluginMetric
from unity_sdk import DocumentTooLargeError, encode_document

LIMIT_MESSAGE = "larger than the 1,048,576-byte limit"


class Sized(misbehaving._Base):
    """Returns a document of ``config["size"]`` characters."""

    plugin_id = "sized"

    async def collect_data(self) -> dict[str, Any]:
        return {"value": 1, "blob": "s" * int(self.config.get("size", 10))}


CLASSES: list[type[Any]] = [
    misbehaving.Healthy,
    misbehaving.HugeDocument,
    misbehaving.HugeDocumentIsolated,
    Sized,
    misbehaving.Raises,
    misbehaving.RaisesUnexpected,
    misbehaving.Prints,
    misbehaving.Logs,
    misbehaving.PrintsIsolated,
    misbehaving.SpinsCpu,
    misbehaving.SlowEnable,
]


@pytest.fixture
async def start(settings: Settings) -> AsyncIterator[Any]:
    """Start a manager (inside the test, so it sees the test's captured streams)."""
    managers: list[PluginManager] = []

    async def make(**overrides: Any) -> PluginManager:
        db = Database(settings.effective_database_url)
        await db.upgrade()
        manager = PluginManager(
            db, settings.model_copy(update=overrides), PluginLoader(CLASSES, group="none")
        )
        await manager.start()
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        await manager.stop()
        await manager.db.dispose()


async def _stored(manager: PluginManager, plugin_id: str) -> tuple[int, list[PluginExecution]]:
    async with manager.db.session() as session:
        metrics = await session.scalar(
            select(func.count())
            .select_from(PluginMetric)
            .where(PluginMetric.plugin_id == plugin_id)
        )
        runs = await session.scalars(
            select(PluginExecution).where(PluginExecution.plugin_id == plugin_id)
        )
        return int(metrics or 0), list(runs)


@pytest.mark.parametrize("plugin_id", ["huge-document", "huge-document-isolated"])
async def test_a_document_over_the_limit_fails_the_run_and_stores_nothing(
    start: Any, plugin_id: str
) -> None:
    manager = await start()
    result = await manager.execute(plugin_id)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("DocumentTooLargeError: ")
    assert LIMIT_MESSAGE in result.error
    assert "UNITY_MAX_DOCUMENT_BYTES" in result.error
    metrics, runs = await _stored(manager, plugin_id)
    assert metrics == 0
    assert [r.status for r in runs] == ["failed"]
    assert runs[0].error == result.error


async def test_the_document_limit_is_a_setting(start: Any) -> None:
    manager = await start(max_document_bytes=4096)
    await manager.set_config("sized", {"size": 3000})
    assert (await manager.execute("sized")).status == "success"
    await manager.set_config("sized", {"size": 5000})
    result = await manager.execute("sized")
    assert result.status == "failed"
    assert result.error is not None
    assert "4,096-byte limit" in result.error
    metrics, _ = await _stored(manager, "sized")
    assert metrics == 1


def test_encode_document_stops_at_the_limit() -> None:
    assert encode_document({"a": [1, 2.5, None]}, max_bytes=1024) == '{"a": [1, 2.5, null]}'
    with pytest.raises(DocumentTooLargeError, match="100-byte limit"):
        encode_document({"blob": "x" * 200}, max_bytes=100)
    with pytest.raises(TypeError, match="expected a dict"):
        encode_document([1, 2])
    with pytest.raises(TypeError, match="not JSON"):
        encode_document({"x": float("nan")})


@pytest.mark.parametrize("plugin_id", ["raises", "raises-unexpected"])
async def test_a_huge_error_message_is_recorded_truncated(
    start: Any, plugin_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    manager = await start()
    caplog.set_level(logging.WARNING)
    result = await manager.execute(plugin_id)
    assert result.status == "failed"
    assert result.error is not None
    assert len(result.error) < MAX_ERROR_CHARS + 100
    assert result.error.endswith("characters, truncated)")
    _, runs = await _stored(manager, plugin_id)
    assert runs[0].error == result.error
    # The hub's own warning with the traceback is charged to the plugin's budget.
    logged = sum(
        len(r.getMessage()) + len(str(r.exc_info and r.exc_info[1])) for r in caplog.records
    )
    assert logged < 2 * 64 * 1024


async def test_printing_is_capped(
    start: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    manager = await start(plugin_output_bytes=10_000)
    caplog.set_level(logging.WARNING)
    assert (await manager.execute("prints")).status == "success"
    # 20,000 lines of 100 bytes were printed; the 10,000-byte budget got through
    # (plus what refilled during the run, at 10,000 bytes a minute).
    assert 9_000 <= len(capsys.readouterr().out) <= 10_500
    # The budget refills at 10,000 bytes a minute: a second run right away gets little.
    assert (await manager.execute("prints")).status == "success"
    assert len(capsys.readouterr().out) < 1_000
    notes = [r.getMessage() for r in caplog.records if "output limit" in r.getMessage()]
    assert len(notes) == 2
    assert "plugin prints: output limit of 10000 bytes (a minute) reached" in notes[0]
    assert re.search(r"dropped 39[5-9]\d\d writes and log records \(19\d{5} bytes\)", notes[0])
    # The hub's own output is never charged to a plugin.
    print("from the hub " * 2000)
    assert len(capsys.readouterr().out) > 20_000


async def test_logging_is_capped(start: Any, caplog: pytest.LogCaptureFixture) -> None:
    manager = await start(plugin_output_bytes=10_000)
    caplog.set_level(logging.WARNING)
    result = await manager.execute("logs")
    assert result.status == "success"
    flood = [r for r in caplog.records if r.getMessage().startswith("flood ")]
    # 20,000 records of 100 bytes were logged; 10,000 bytes of them get through
    # (plus what refilled during the run).
    assert 99 <= len(flood) <= 105
    notes = [r.getMessage() for r in caplog.records if "output limit" in r.getMessage()]
    assert notes == [
        "plugin logs: output limit of 10000 bytes (a minute) reached; dropped "
        f"{20_000 - len(flood)} writes and log records ({(20_000 - len(flood)) * 100} bytes)"
    ]
    logging.getLogger("unity.tests").warning("the hub still logs")
    assert caplog.records[-1].getMessage() == "the hub still logs"


def test_the_output_budget_refills_at_its_limit_a_minute() -> None:
    budget = OutputBudget(6_000)
    assert budget.admit(6_000)
    assert not budget.admit(100)
    time.sleep(0.5)  # 0.5 s of 6,000 bytes a minute: 50 bytes
    assert budget.admit(40)
    assert not budget.admit(100)
    assert budget.settle() == (2, 200)
    assert budget.settle() == (0, 0)


async def test_an_isolated_plugin_output_stays_out_of_the_hub(
    start: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    manager = await start(plugin_output_bytes=10_000)
    result = await manager.execute("prints-isolated")
    assert result.status == "success", result.error
    assert result.data == {"value": 1}
    assert capfd.readouterr().out == ""


async def test_a_plugin_burning_cpu_in_thread_mode_runs_less_often(start: Any) -> None:
    manager = await start(plugin_cpu_share=0.01)
    assert (await manager.execute("spins-cpu")).status == "success"
    assert (await manager.execute("healthy")).status == "success"
    spins, healthy = manager.get("spins-cpu"), manager.get("healthy")
    # It spun for 0.8 s: even a tenth of that in CPU time at 1 % of a core is 8 s.
    assert manager.supervisor("spins-cpu").next_delay() > 5 * spins.interval
    assert manager.supervisor("healthy").next_delay() == healthy.interval
    unlimited = await start(plugin_cpu_share=0)
    assert (await unlimited.execute("spins-cpu")).status == "success"
    assert unlimited.supervisor("spins-cpu").next_delay() == spins.interval


async def test_the_admin_can_force_process_isolation(
    start: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    manager = await start(process_isolation=["prints"], isolate_entry_points=True)
    assert manager.get("prints").isolated
    # Plugins listed to the loader directly (like built-ins) are not entry points.
    assert not manager.get("logs").isolated
    result = await manager.execute("prints")
    assert result.status == "success", result.error
    assert result.data == {"value": 1}
    # Its 2 MB of prints stayed in the child's pipe.
    assert capfd.readouterr().out == ""


async def test_start_does_not_wait_for_a_slow_on_enable(start: Any) -> None:
    clock = time.monotonic()
    manager = await start(plugin_load_timeout=0.5, autoenable=["slow-enable", "healthy"])
    assert time.monotonic() - clock < 2.0
    assert "healthy" in manager.scheduler
    assert "slow-enable" not in manager.scheduler
    # Disabled while its on_enable still runs: it must not be scheduled when that returns.
    await manager.disable("slow-enable")
    await asyncio.sleep(2.5)
    assert "slow-enable" not in manager.scheduler
    assert not manager.get("slow-enable").active


async def test_a_stream_replaced_after_start_is_capped_too(start: Any) -> None:
    manager = await start(plugin_output_bytes=10_000)
    replaced = io.StringIO()
    with contextlib.redirect_stdout(replaced):
        assert (await manager.execute("prints")).status == "success"
    assert 9_000 <= len(replaced.getvalue()) <= 10_500
