"""An instance's timer and runs: the hub's timing rules, with small real plugins on real time."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import datetime
from typing import Any

from agent_fakes import (
    BlockingPlugin,
    CounterPlugin,
    FailingPlugin,
    NeedsExtraPlugin,
    SlowPlugin,
    TankPlugin,
    assignment,
    eventually,
)

from unity_agent.scheduler import START_SPREAD, Instance, RunOutcome, Timing
from unity_sdk import HealthState, HealthStatus, PluginBase, validate_config

NO_JITTER = Timing(jitter=0.0)


class Sink:
    """What instances hand over: samples (with the loop time they came) and health."""

    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self.health: dict[str, list[tuple[HealthStatus, RunOutcome]]] = {}
        self.health_times: dict[str, list[tuple[float, HealthStatus]]] = {}

    def sample(self, key: str, host: str, timestamp: datetime, data_json: str) -> None:
        assert host == "box"
        assert timestamp.tzinfo is not None
        now = asyncio.get_running_loop().time()
        self.samples.setdefault(key, []).append((now, json.loads(data_json)))

    def healthy(self, key: str, status: HealthStatus, outcome: RunOutcome) -> None:
        self.health.setdefault(key, []).append((status, outcome))
        now = asyncio.get_running_loop().time()
        self.health_times.setdefault(key, []).append((now, status))

    def count(self, key: str) -> int:
        return len(self.samples.get(key, []))


def make(
    cls: type[PluginBase[Any]],
    sink: Sink,
    *,
    interval: float = 0.2,
    timing: Timing = NO_JITTER,
    timeout: float | None = None,
    **config: Any,
) -> Instance:
    plugin_id = cls().get_metadata().id
    given = assignment(plugin_id, interval, **config)
    if timeout is not None:
        given = given.model_copy(update={"timeout": timeout})
    validated = validate_config(cls().get_metadata(), given.config)
    return Instance(
        given,
        cls(config=validated.plugin),
        host="box",
        on_sample=sink.sample,
        on_health=sink.healthy,
        timing=timing,
    )


async def started(instance: Instance) -> Instance:
    await instance.enable()
    instance.start()
    return instance


async def test_runs_on_a_fixed_rate_grid() -> None:
    sink = Sink()
    instance = await started(make(CounterPlugin, sink, interval=0.1))
    await asyncio.sleep(1.05)
    await instance.stop()
    times = [t for t, _ in sink.samples["counter@testhost"]]
    # On the grid: no drift from the runs' own duration (a busy machine may lose a tick).
    assert 8 <= len(times) <= 12
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.05 < gap < 0.3 for gap in gaps), gaps
    assert [d["value"] for _, d in sink.samples["counter@testhost"]] == list(
        range(1, len(times) + 1)
    )


async def test_first_runs_are_spread_over_the_first_interval() -> None:
    sink = Sink()
    instances = [
        await started(make(CounterPlugin, sink, interval=1.0, timing=Timing(jitter=0.1)))
        for _ in range(8)
    ]
    loop = asyncio.get_running_loop()
    begun = loop.time()
    await eventually(lambda: sink.count("counter@testhost") >= 8, timeout=3)
    await asyncio.gather(*(i.stop() for i in instances))
    # Where each first run was placed (a busy machine may run them late, bunched).
    dues = sorted(i.first_due - begun for i in instances if i.first_due is not None)
    assert len(dues) == 8
    assert dues[-1] - dues[0] > 0.2, dues  # not all at once
    assert dues[-1] < 1.0  # within the first interval
    firsts = sorted(t - begun for t, _ in sink.samples["counter@testhost"][:8])
    assert firsts[0] >= dues[0] - 0.01  # never before its place


async def test_a_long_interval_still_runs_first_within_the_agents_spread() -> None:
    sink = Sink()
    instance = await started(make(CounterPlugin, sink, interval=600.0, timing=Timing(jitter=0.1)))
    await eventually(lambda: sink.count("counter@testhost") >= 1, timeout=START_SPREAD + 2)
    await instance.stop()


async def test_a_run_past_its_timeout_fails_and_says_so() -> None:
    sink = Sink()
    instance = await started(make(SlowPlugin, sink, interval=0.3))
    await eventually(lambda: len(sink.health.get("slow@testhost", [])) >= 2, timeout=5)
    await instance.stop()
    status, outcome = sink.health["slow@testhost"][0]
    assert outcome.status == "timed_out"
    assert status.status is HealthState.UNHEALTHY
    assert status.message == "timed out after 0.2s"
    assert sink.count("slow@testhost") == 0
    assert instance.consecutive_failures >= 2


async def test_the_assigned_timeout_wins_over_the_declared_one() -> None:
    sink = Sink()
    BlockingPlugin.seconds = 0.3
    instance = make(BlockingPlugin, sink, interval=5, timeout=0.1)
    await instance.enable()
    outcome = await instance.run_once()
    await instance.stop()
    assert outcome.status == "timed_out"
    assert outcome.error == "timed out after 0.1s"


async def test_runs_never_overlap_and_busy_ticks_are_skipped() -> None:
    sink = Sink()
    BlockingPlugin.seconds = 0.35
    instance = await started(make(BlockingPlugin, sink, interval=0.1))
    await asyncio.sleep(1.2)
    await instance.stop()
    times = [t for t, _ in sink.samples["blocking@testhost"]]
    assert 2 <= len(times) <= 4
    # Each run took 0.35 s: one ended before the next started.
    assert all(b - a >= 0.33 for a, b in itertools.pairwise(times)), times
    assert instance.skipped >= 4


async def test_a_timed_out_run_stuck_in_blocking_code_keeps_later_ticks_away() -> None:
    sink = Sink()
    BlockingPlugin.seconds = 0.8
    instance = await started(make(BlockingPlugin, sink, interval=0.1, timeout=0.1))
    await asyncio.sleep(0.6)
    assert instance.worker.busy
    runs = instance.runs
    await asyncio.sleep(0.1)
    assert instance.runs == runs  # still stuck: no new run piled on the thread
    assert instance.skipped >= 2
    await instance.stop()


async def test_failures_back_off_exponentially_up_to_the_ceiling() -> None:
    sink = Sink()
    timing = Timing(jitter=0.0, max_backoff=0.4)
    instance = await started(make(FailingPlugin, sink, interval=0.05, timing=timing))
    await eventually(lambda: len(sink.health.get("failing@testhost", [])) >= 5, timeout=5)
    await instance.stop()
    failures = sink.health["failing@testhost"]
    assert all(o.status == "failed" for _, o in failures)
    assert failures[0][0].message == "collection failed: RuntimeError: the service is down"
    assert instance.consecutive_failures == len(failures)
    seen = [t for t, _ in sink.health_times["failing@testhost"]]
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    # The grid after 1, 2, 3... failures: 0.1, 0.2, 0.4, 0.4 (capped) - each within timer slack.
    # Never sooner than the backoff; later only by the timer's lateness.
    assert 0.38 <= gaps[-1] < 0.6, gaps
    assert 0.38 <= gaps[-2] < 0.6, gaps
    assert gaps[0] < 0.3, gaps


async def test_a_blocking_plugin_does_not_stall_the_others_or_the_loop() -> None:
    sink = Sink()
    BlockingPlugin.seconds = 1.5
    blocking = await started(make(BlockingPlugin, sink, interval=0.1))
    counter = await started(make(CounterPlugin, sink, interval=0.1))
    loop = asyncio.get_running_loop()
    worst = 0.0
    until = loop.time() + 1.0
    while loop.time() < until:
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, time.perf_counter() - before - 0.01)
    assert worst < 0.25, f"the event loop stalled {worst:.3f}s"
    await counter.stop()
    assert sink.count("counter@testhost") >= 6
    assert sink.count("blocking@testhost") == 0  # still in its first run
    await blocking.stop(grace=0.1)


async def test_health_follows_assess_and_failures() -> None:
    sink = Sink()
    instance = make(TankPlugin, sink, interval=10)
    await instance.enable()  # no timer: only the runs asked for here
    TankPlugin.level = 95.0
    await instance.run_once()
    TankPlugin.level = 20.0
    await instance.run_once()
    await instance.stop()
    reported = [(s.status.value, s.message) for s, _ in sink.health["tank@testhost"]]
    assert reported == [("degraded", "95 % full"), ("healthy", "20 % full")]


async def test_a_missing_dependency_is_flagged() -> None:
    sink = Sink()
    instance = make(NeedsExtraPlugin, sink, interval=10)
    await instance.enable()
    outcome = await instance.run_once()
    await instance.stop()
    assert outcome.missing_dependency
    assert outcome.error == (
        "DependencyMissingError: install unity-catalogue[fake]: fakelib is missing"
    )


async def test_a_stopped_instance_runs_on_disable_and_ends_its_thread() -> None:
    sink = Sink()
    instance = await started(make(CounterPlugin, sink, interval=0.1))
    await eventually(lambda: sink.count("counter@testhost") >= 1)
    await instance.stop()
    count = sink.count("counter@testhost")
    await asyncio.sleep(0.3)
    assert sink.count("counter@testhost") == count
    assert not instance.worker._thread.is_alive()
