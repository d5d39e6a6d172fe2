"""The failed-authentication limiter on its own, with a clock the test moves."""

from __future__ import annotations

import asyncio

import pytest

from unity.auth import ratelimit
from unity.auth.ratelimit import FailureLimiter, FailurePolicy, TooManyFailuresError, client_key

POLICY = FailurePolicy(burst=2, limit=4, window=60.0, delay=0.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def fail(limiter: FailureLimiter, address: str) -> None:
    async with limiter.attempt(address) as attempt:
        attempt.failed()


async def succeed(limiter: FailureLimiter, address: str) -> None:
    async with limiter.attempt(address):
        pass


async def test_retry_after_is_when_the_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    limiter = FailureLimiter(POLICY, clock=clock)
    for step in range(4):
        clock.now = 1000.0 + 10 * step
        await fail(limiter, "127.0.0.5")
    clock.now = 1035.0
    with pytest.raises(TooManyFailuresError) as refused:
        await succeed(limiter, "127.0.0.5")
    # Failures at 1000, 1010, 1020, 1030: the one at 1000 leaves at 1060.
    assert refused.value.retry_after == 25
    clock.now = 1060.5
    await succeed(limiter, "127.0.0.5")
    await fail(limiter, "127.0.0.5")
    with pytest.raises(TooManyFailuresError) as again:
        await succeed(limiter, "127.0.0.5")
    assert again.value.retry_after == 10


async def test_successes_leave_no_record_and_never_count() -> None:
    limiter = FailureLimiter(POLICY, clock=Clock())
    for _ in range(100):
        await succeed(limiter, "127.0.0.5")
    assert limiter._records == {}
    await fail(limiter, "127.0.0.5")
    assert list(limiter._records) == ["127.0.0.5"]


def test_the_delay_grows_after_the_burst_and_stops_growing() -> None:
    policy = FailurePolicy(burst=5, limit=20, delay=0.25)
    assert [policy.delay_after(n) for n in (1, 5, 6, 7, 13, 19)] == [0, 0, 0.25, 0.5, 2.0, 2.0]


def test_ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:127.0.0.7") == "127.0.0.7"
    assert client_key(None) == "unknown"


async def test_the_records_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_CLIENTS", 3)
    limiter = FailureLimiter(POLICY, clock=Clock())
    for n in range(10):
        await fail(limiter, f"127.0.1.{n}")
    assert list(limiter._records) == ["127.0.1.7", "127.0.1.8", "127.0.1.9"]


async def test_waiting_checks_see_the_failures_of_the_ones_before_them() -> None:
    limiter = FailureLimiter(POLICY, clock=Clock())
    release = asyncio.Event()
    outcomes: list[str] = []

    async def guess() -> None:
        try:
            async with limiter.attempt("127.0.0.5") as attempt:
                await release.wait()
                attempt.failed()
            outcomes.append("401")
        except TooManyFailuresError:
            outcomes.append("429")

    await fail(limiter, "127.0.0.5")  # the address is known before the wave
    wave = [asyncio.create_task(guess()) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*wave)
    # Only the checks already running when the limit was reached overshoot it.
    assert outcomes.count("401") == ratelimit.CONCURRENT_CHECKS
    assert outcomes.count("429") == 20 - ratelimit.CONCURRENT_CHECKS
