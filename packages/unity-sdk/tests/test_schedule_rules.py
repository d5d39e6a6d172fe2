"""The timing rules the hub's and the agent's schedulers share (unity_sdk._schedule)."""

from __future__ import annotations

import random

import pytest

from unity_sdk import (
    DEFAULT_MAX_BACKOFF,
    MAX_START_SPREAD,
    cpu_share_delay,
    next_base,
    run_delay,
    run_timeout,
    run_window,
    start_delay,
    tick_jitter,
)


def test_first_runs_spread_over_the_first_interval_capped_at_a_minute() -> None:
    rng = random.Random(7)
    delays = [start_delay(10.0, 0.1, rng.random()) for _ in range(500)]
    assert all(0.0 <= d < 10.0 for d in delays)
    # Spread, not bunched: every tenth of the interval gets some of them.
    assert {int(d) for d in delays} == set(range(10))
    assert start_delay(3600.0, 0.1, 0.999) == pytest.approx(0.999 * MAX_START_SPREAD)
    assert start_delay(3600.0, 0.1, 0.5) <= MAX_START_SPREAD
    # A smaller spread (the agent's few plugins) starts them sooner.
    assert start_delay(60.0, 0.1, 0.999, spread=5.0) == pytest.approx(0.999 * 5.0)


def test_without_jitter_the_first_run_is_now_and_ticks_are_on_the_grid() -> None:
    assert start_delay(10.0, 0.0, 0.9) == 0.0
    assert tick_jitter(10.0, 0.0, 0.9) == 0.0
    assert tick_jitter(10.0, 0.1, 0.5) == pytest.approx(0.5)
    assert tick_jitter(10.0, 0.1, 0.0) == 0.0


def test_backoff_doubles_per_failure_up_to_the_ceiling() -> None:
    assert run_delay(60.0, 0) == 60.0
    assert [run_delay(60.0, n, max_backoff=900.0) for n in (1, 2, 3, 4, 5)] == [
        120.0,
        240.0,
        480.0,
        900.0,
        900.0,
    ]
    assert run_delay(60.0, 10_000) == DEFAULT_MAX_BACKOFF
    # A plugin whose interval is longer than the ceiling is never run more often.
    assert run_delay(3600.0, 3, max_backoff=900.0) == 3600.0


def test_cpu_use_stretches_the_delay_but_never_shortens_it() -> None:
    assert cpu_share_delay(2.0, 0.1) == pytest.approx(20.0)
    assert cpu_share_delay(2.0, 0.0) == 0.0
    assert cpu_share_delay(-1.0, 0.1) == 0.0
    assert run_delay(10.0, 0, cpu_delay=25.0) == 25.0
    assert run_delay(10.0, 0, cpu_delay=5.0) == 10.0
    assert run_delay(10.0, 1, cpu_delay=50.0) == 50.0


def test_fixed_rate_grid_ignores_how_long_a_run_took() -> None:
    # A run that ended at 104 (started on the tick at 100) does not push the grid.
    assert next_base(100.0, 10.0, 10.0, now=104.0) == 110.0


def test_backoff_counts_from_now() -> None:
    assert next_base(100.0, 10.0, 40.0, now=101.0) == 141.0


def test_a_timer_that_fell_behind_skips_the_missed_ticks() -> None:
    # Suspended from 100 to 175: one run now, not seven in a burst.
    assert next_base(100.0, 10.0, 10.0, now=175.0) == 175.0
    base, fired = 175.0, []
    for now in (175.0, 185.0, 195.0):
        fired.append(base)
        base = next_base(base, 10.0, 10.0, now=now)
    assert fired == [175.0, 185.0, 195.0]


def test_the_timer_waits_for_a_run_until_the_next_tick() -> None:
    assert run_window(100.0, 10.0, now=100.5) == pytest.approx(9.5)
    assert run_window(100.0, 10.0, now=120.0) == 0.0


def test_run_timeout_is_the_assigned_one_else_the_declared_one() -> None:
    assert run_timeout(30.0) == 30.0
    assert run_timeout(30.0, 5.0) == 5.0
    assert run_timeout(30.0, None) == 30.0
    assert run_timeout(30.0, 0.0) == 30.0
