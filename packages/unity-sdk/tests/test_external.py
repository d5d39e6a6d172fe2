"""ExternalPluginBase's run loop against FakeHub, and as a real process."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from unity_sdk import (
    CollectionError,
    ExternalPluginBase,
    HealthState,
    HubAuthError,
    HubRequestError,
    MetricField,
    PluginMetadata,
    Sample,
)
from unity_sdk._buffer import SampleBuffer
from unity_sdk.testing import FakeHub

HUB = "http://hub.test"


class Counter(ExternalPluginBase):
    """Counts its collections; records every lifecycle call."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.n = 0
        self.fail_at: set[int] = set()
        self.events: list[str] = []
        self.errors: list[BaseException] = []
        self.changes: list[dict[str, Any]] = []

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="counter",
            name="Counter",
            version="1.0.0",
            default_interval=30,
            metrics=[MetricField(name="n", kind="counter")],
        )

    async def collect_data(self) -> dict[str, Any]:
        self.n += 1
        if self.n in self.fail_at:
            raise CollectionError(f"collection {self.n} failed")
        return {"n": self.n * self.config.get("scale", 1)}

    async def on_enable(self) -> None:
        self.events.append("enable")

    async def on_disable(self) -> None:
        self.events.append("disable")

    async def on_error(self, exc: BaseException) -> None:
        self.errors.append(exc)

    async def on_config_change(self, new: dict[str, Any]) -> None:
        self.changes.append(new)


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class Running:
    """A plugin's run loop as a background task."""

    def __init__(self, plugin: Counter, hub: FakeHub, state_dir: Path, **options: Any) -> None:
        self.plugin, self.stop = plugin, asyncio.Event()
        options.setdefault("enrollment_token", hub.enrollment_token)
        self.task = asyncio.create_task(
            plugin.run(
                HUB,
                state_dir=state_dir,
                hostname="nas",
                stop_event=self.stop,
                transport=hub.transport,
                **options,
            )
        )

    async def finish(self, timeout: float = 5) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout)


@pytest.fixture
def hub() -> FakeHub:
    hub = FakeHub()
    hub.set_config("counter", {}, interval=0.2)
    return hub


@pytest.fixture
async def running(hub: FakeHub, tmp_path: Path) -> AsyncIterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(plugin: Counter | None = None, **options: Any) -> Running:
        run = Running(plugin or Counter(), hub, tmp_path, **options)
        started.append(run)
        return run

    yield start
    for run in started:
        if not run.task.done():
            run.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run.task


def stored(hub: FakeHub) -> list[int]:
    return [sample.data["n"] for sample in hub.samples("counter")]


async def test_registers_once_and_reuses_the_saved_key(
    hub: FakeHub, running: Callable[..., Running], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = running()
    await until(lambda: first.plugin.sent >= 1)
    await first.finish()
    key_file = tmp_path / "counter.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    saved = json.loads(key_file.read_text())
    assert saved["plugin_id"] == "counter"
    assert saved["api_key"].startswith("unityk_")

    second = running(enrollment_token=None)
    await until(lambda: second.plugin.sent >= 1)
    await second.finish()
    assert hub.count("POST", "register") == 1
    assert saved["api_key"] not in caplog.text
    assert hub.enrollment_token not in caplog.text


async def test_without_key_or_token_it_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(HubAuthError, match="no enrollment token"):
        await Counter().run(HUB, state_dir=tmp_path, transport=FakeHub().transport)


async def test_collects_at_the_interval_and_batches_arrive_in_order(
    hub: FakeHub, running: Callable[..., Running]
) -> None:
    run = running()
    await until(lambda: len(hub.samples("counter")) >= 5)
    await run.finish()
    samples = hub.samples("counter")
    assert stored(hub) == list(range(1, len(samples) + 1))
    gaps = [(b.timestamp - a.timestamp).total_seconds() for a, b in itertools.pairwise(samples)]
    assert all(0.15 <= gap <= 0.6 for gap in gaps), gaps
    assert {sample.host for sample in samples} == {"nas"}
    assert run.plugin.interval == 0.2
    assert run.plugin.events == ["enable", "disable"]
    report = hub.health("counter")[-1]
    assert report.status is HealthState.HEALTHY
    assert report.details["sent"] >= 4


async def test_outage_buffers_drops_oldest_and_replays_in_order(
    hub: FakeHub, running: Callable[..., Running]
) -> None:
    run = running(buffer_size=4)
    plugin = run.plugin
    plugin.hub_max_retries = 0
    await until(lambda: plugin.sent >= 1)
    hub.down = True
    await until(lambda: plugin.dropped >= 3)
    assert plugin.buffered == 4
    sent_during_outage = len(hub.samples("counter"))
    hub.down = False
    await until(lambda: plugin.buffered == 0 and len(hub.health("counter")) > 1)
    await run.finish()

    values = stored(hub)
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert len(values) + plugin.dropped == plugin.n
    assert len(values) > sent_during_outage
    assert hub.health("counter")[-1].dropped == plugin.dropped


async def test_lost_answer_is_replayed_with_the_same_batch_id(
    hub: FakeHub, running: Callable[..., Running]
) -> None:
    run = running()
    # No client retries: the loop itself resends the batch on its next cycle.
    run.plugin.hub_max_retries = 0
    await until(lambda: run.plugin.sent >= 1)
    hub.fail_next(1, 503, after_handling=True)
    await until(lambda: run.plugin.sent >= 4)
    await run.finish()
    values = stored(hub)
    assert values == list(range(1, len(values) + 1))
    batches = hub.plugins["counter"].batches
    assert len({batch.batch_id for batch in batches}) == len(batches)
    assert hub.count("POST", "metrics") > len(batches)


async def test_refused_sample_is_dropped_and_the_rest_sent(
    hub: FakeHub, running: Callable[..., Running]
) -> None:
    class Flaky(Counter):
        async def collect_data(self) -> dict[str, Any]:
            document = await super().collect_data()
            return {"n": "not a number"} if self.n == 2 else document

    run = running(Flaky())
    await until(lambda: run.plugin.sent >= 3)
    await run.finish()
    assert 2 not in stored(hub)
    assert stored(hub)[:2] == [1, 3]
    assert run.plugin.rejected == 1


async def test_collection_errors_are_reported_and_not_fatal(
    hub: FakeHub, running: Callable[..., Running]
) -> None:
    plugin = Counter()
    plugin.fail_at = {2}
    run = running(plugin)
    await until(lambda: plugin.sent >= 3)
    await run.finish()
    assert [str(e) for e in plugin.errors] == ["collection 2 failed"]
    statuses = [report.status for report in hub.health("counter")]
    assert statuses[:3] == [HealthState.HEALTHY, HealthState.UNHEALTHY, HealthState.HEALTHY]
    assert "collection 2 failed" in hub.health("counter")[1].message


async def test_config_change_is_picked_up(hub: FakeHub, running: Callable[..., Running]) -> None:
    run = running()
    await until(lambda: run.plugin.sent >= 1)
    hub.set_config("counter", {"scale": 100}, interval=0.1)
    await until(lambda: bool(run.plugin.changes))
    await until(lambda: stored(hub)[-1] >= 100)
    await run.finish()
    assert run.plugin.changes == [{"scale": 100}]
    assert run.plugin.config == {"scale": 100}
    assert run.plugin.interval == 0.1


async def test_revoked_key_stops_the_loop_for_good(
    hub: FakeHub, running: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    run = running()
    await until(lambda: run.plugin.sent >= 1)
    hub.revoke("counter")
    with pytest.raises(HubAuthError) as caught:
        await asyncio.wait_for(run.task, 5)
    assert caught.value.status == 401
    assert run.plugin.events == ["enable", "disable"]
    assert "revoked" in caplog.text

    again = running()
    with pytest.raises(HubAuthError):
        await asyncio.wait_for(again.task, 5)
    assert hub.count("POST", "register") == 1


async def test_stop_event_interrupts_the_wait_and_flushes(
    hub: FakeHub, running: Callable[..., Running]
) -> None:
    hub.set_config("counter", {}, interval=3600)
    plugin = Counter()
    run = running(plugin)
    await until(lambda: plugin.sent == 1)
    started = time.monotonic()
    await run.finish(timeout=2)
    assert time.monotonic() - started < 1
    assert plugin.events == ["enable", "disable"]
    assert plugin.buffered == 0


async def test_waits_for_a_hub_that_is_down_at_start(
    hub: FakeHub, running: Callable[..., Running]
) -> None:
    class Quick(Counter):
        def get_metadata(self) -> PluginMetadata:
            return super().get_metadata().model_copy(update={"default_interval": 0.1})

    hub.down = True
    plugin = Quick()
    plugin.hub_max_retries = 0
    run = running(plugin)
    await until(lambda: hub.count("POST", "register") >= 2)
    assert plugin.events == []
    hub.down = False
    await until(lambda: plugin.sent >= 1)
    await run.finish()


async def test_unsent_samples_do_not_block_stopping(
    hub: FakeHub, running: Callable[..., Running]
) -> None:
    plugin = Counter()
    plugin.hub_max_retries = 0
    plugin.final_flush_timeout = 0.5
    run = running(plugin)
    await until(lambda: plugin.sent >= 1)
    hub.down = True
    await until(lambda: plugin.buffered >= 1)
    await run.finish(timeout=3)
    assert plugin.events == ["enable", "disable"]
    assert plugin.buffered >= 1


SCRIPT = """
import sys
from unity_sdk import ExternalPluginBase, PluginMetadata
from unity_sdk.testing import FakeHub

class Beat(ExternalPluginBase):
    def get_metadata(self):
        return PluginMetadata(id="beat", name="Beat", version="1.0.0")

    async def collect_data(self):
        print("collected", flush=True)
        return {"beat": 1}

    async def on_disable(self):
        print("disabled", flush=True)

hub = FakeHub()
hub.set_config("beat", {}, interval=0.1)
status = Beat().run_forever(
    "http://hub.test", enrollment_token=hub.enrollment_token,
    state_dir=sys.argv[1], transport=hub.transport,
)
print("stored", len(hub.samples("beat")), flush=True)
sys.exit(status)
"""


def test_sigterm_stops_run_forever_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "beat.py"
    script.write_text(textwrap.dedent(SCRIPT))
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "collected"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert "disabled" in lines
    assert int(lines[-1].split()[1]) >= 1


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unity_sdk.run", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        cwd=cwd,
    )


def test_command_line_loads_the_class_and_reports_failures(tmp_path: Path) -> None:
    (tmp_path / "beatplugin.py").write_text(
        textwrap.dedent(
            SCRIPT.split("hub = FakeHub()")[0].replace("ExternalPluginBase", "PluginBase")
        )
    )
    env = {"PYTHONPATH": str(tmp_path), "UNITY_PLUGIN_STATE_DIR": str(tmp_path / "state")}
    env["UNITY_HUB_URL"] = "http://127.0.0.1:9"
    missing_token = _cli("beatplugin:Beat", env=env, cwd=tmp_path)
    assert missing_token.returncode == 1
    assert "no enrollment token" in missing_token.stderr

    bad_spec = _cli("beatplugin:Nope", env=env, cwd=tmp_path)
    assert bad_spec.returncode == 2
    assert "cannot load" in bad_spec.stderr

    no_hub = _cli("beatplugin:Beat", env={**env, "UNITY_HUB_URL": ""}, cwd=tmp_path)
    assert no_hub.returncode == 2
    assert "--hub" in no_hub.stderr


# -- the buffer on its own -------------------------------------------------------


def _samples(count: int) -> list[Sample]:
    now = datetime.now(UTC)
    return [Sample(host="nas", timestamp=now, data={"n": n}) for n in range(count)]


def _numbers(buffer: SampleBuffer) -> list[int]:
    numbers: list[int] = []
    while (batch := buffer.next_batch()) is not None:
        numbers += [sample.data["n"] for sample in batch[1]]
        buffer.accepted()
    return numbers


def test_buffer_drops_the_oldest_but_keeps_the_batch_in_flight() -> None:
    buffer = SampleBuffer(6)
    for sample in _samples(4):
        buffer.append(sample)
    batch = buffer.next_batch()
    assert batch is not None
    assert [s.data["n"] for s in batch[1]] == [0, 1, 2]
    for sample in _samples(10)[4:]:
        buffer.append(sample)
    assert len(buffer) == 6
    assert buffer.dropped == 4
    assert buffer.next_batch() == batch
    assert _numbers(buffer) == [0, 1, 2, 7, 8, 9]


def test_a_buffer_of_one_keeps_the_newest() -> None:
    buffer = SampleBuffer(1)
    first, second = _samples(2)
    buffer.append(first)
    assert buffer.next_batch() is not None
    buffer.append(second)
    assert (len(buffer), buffer.dropped) == (1, 1)
    assert _numbers(buffer) == [1]


def test_buffer_splits_a_batch_the_hub_finds_too_large() -> None:
    buffer = SampleBuffer(100)
    for sample in _samples(8):
        buffer.append(sample)
    batch = buffer.next_batch()
    assert batch is not None
    assert len(batch[1]) == 8
    assert buffer.refused(HubRequestError("too large", status=413)) == 0
    assert buffer.batch_limit == 4
    assert _numbers(buffer) == list(range(8))


@pytest.mark.parametrize(
    "loc", [["samples", 1, "data"], ["body", "samples", "1", "host"], ["samples", "1"]]
)
def test_buffer_discards_only_the_samples_a_422_names(loc: list[Any]) -> None:
    buffer = SampleBuffer(100)
    for sample in _samples(3):
        buffer.append(sample)
    buffer.next_batch()
    error = HubRequestError("invalid", status=422, details=[{"loc": loc, "msg": "bad"}])
    assert buffer.refused(error) == 1
    assert buffer.rejected == 1
    assert _numbers(buffer) == [0, 2]


def test_buffer_discards_a_batch_refused_for_another_reason() -> None:
    buffer = SampleBuffer(100)
    for sample in _samples(3):
        buffer.append(sample)
    buffer.next_batch()
    assert buffer.refused(HubRequestError("conflict", status=409)) == 3
    assert len(buffer) == 0


async def test_a_lost_registration_answer_does_not_burn_a_single_use_token(
    hub: FakeHub, running: Callable[..., Running], tmp_path: Path
) -> None:
    once = hub.create_enrollment_token(uses=1)
    # The hub registers the plugin, but the answer never arrives; the client retries.
    hub.fail_next(1, 503, after_handling=True)
    run = running(enrollment_token=once)
    await until(lambda: run.plugin.sent >= 1)
    await run.finish()
    assert hub.count("POST", "register") == 2
    saved = json.loads((tmp_path / "counter.json").read_text())
    assert saved["api_key"].startswith("unityk_")
    assert not (tmp_path / "counter.pending.json").exists()


async def test_the_proposed_key_is_saved_before_registering_and_reused_after_a_restart(
    hub: FakeHub, running: Callable[..., Running], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    once = hub.create_enrollment_token(uses=1)
    plugin = Counter()
    plugin.hub_max_retries = 0
    hub.fail_next(1, 503, after_handling=True)
    first = running(plugin, enrollment_token=once)
    await until(lambda: hub.count("POST", "register") >= 1)
    await first.finish()
    assert plugin.events == []
    pending = tmp_path / "counter.pending.json"
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    proposed = json.loads(pending.read_text())["key_secret"]
    assert len(proposed) == 43

    # A new process with the same state dir repeats the registration with the same key.
    second = running(enrollment_token=once)
    await until(lambda: second.plugin.sent >= 1)
    await second.finish()
    assert hub.count("POST", "register") == 2
    saved = json.loads((tmp_path / "counter.json").read_text())
    assert saved["api_key"].endswith("_" + proposed)
    assert not pending.exists()
    assert proposed not in caplog.text
