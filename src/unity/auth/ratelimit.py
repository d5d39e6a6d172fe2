"""Failed authentication per client address: first slowed down, then refused.

Every credential a client presents (a hub token or plugin key as a Bearer
header, a token pasted on the dashboard's login form) is checked inside
:meth:`FailureLimiter.attempt`. Within a moving window of ``window`` seconds
the first ``burst`` failures of an address are answered at once; each further
failure is answered only after a growing delay; from ``limit`` failures on the
address gets :class:`TooManyFailuresError` (429 with ``Retry-After``) without
its credential being looked at, until old failures leave the window.

Only failures count, and only the failing address's: a correct credential is
never slowed, and another address's failures never block it. At most
``CONCURRENT_CHECKS`` credentials of one address are checked at a time (more
wait their turn, which a correct one passes in milliseconds), so a burst of
parallel guesses cannot slip past the limit before its failures are counted.

IPv6 clients are counted per /64 network, the block one host normally holds.
The counters live in this process: hubs behind one load balancer count apart.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

__all__ = [
    "Attempt",
    "FailureLimiter",
    "FailurePolicy",
    "TooManyFailuresError",
    "client_key",
]

# Beyond this many addresses with failures on record, the longest-quiet ones are forgotten.
MAX_CLIENTS = 10_000
CONCURRENT_CHECKS = 4
MAX_DELAY_STEPS = 8


@dataclass(frozen=True)
class FailurePolicy:
    burst: int = 5
    limit: int = 20
    window: float = 60.0
    delay: float = 0.25

    def delay_after(self, failures: int) -> float:
        """Seconds to hold the answer to the ``failures``-th failure of the window."""
        excess = failures - self.burst
        return self.delay * min(excess, MAX_DELAY_STEPS) if excess > 0 else 0.0


class TooManyFailuresError(Exception):
    """The address failed too often; ``retry_after`` whole seconds until it may try again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    pending: int = 0
    turns: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENT_CHECKS))


@dataclass
class Attempt:
    """One credential check in progress; call :meth:`failed` when it is refused."""

    _limiter: FailureLimiter
    _key: str
    _record: _Record
    delay: float = 0.0

    def failed(self) -> None:
        self.delay = self._limiter._record_failure(self._key, self._record)


def client_key(address: str | None) -> str:
    """The counter an address belongs to: itself, or its /64 for IPv6."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailureLimiter:
    """Per-address counts of failed authentication in a moving window."""

    def __init__(
        self, policy: FailurePolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    @asynccontextmanager
    async def attempt(self, address: str | None) -> AsyncIterator[Attempt]:
        """Check a credential from ``address``; raises :class:`TooManyFailuresError`
        before the check when the address is over its limit. A failed attempt's
        answer leaves the block only after the policy's delay."""
        key = client_key(address)
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = _Record()
            self._evict()
        self._check(record)
        attempt = Attempt(self, key, record)
        record.pending += 1
        try:
            async with record.turns:
                # Failures may have piled up while this attempt waited its turn.
                self._check(record)
                yield attempt
        finally:
            record.pending -= 1
            self._forget_if_clean(key, record)
        if attempt.delay:
            await asyncio.sleep(attempt.delay)

    def _expire(self, record: _Record) -> None:
        horizon = self._clock() - self.policy.window
        while record.failures and record.failures[0] <= horizon:
            record.failures.popleft()

    def _check(self, record: _Record) -> None:
        self._expire(record)
        count = len(record.failures)
        if count < self.policy.limit:
            return
        # The answer may come once enough of the oldest failures have left the window.
        wait = record.failures[count - self.policy.limit] + self.policy.window - self._clock()
        raise TooManyFailuresError(max(1, math.ceil(wait)))

    def _record_failure(self, key: str, record: _Record) -> float:
        self._records.move_to_end(key)
        self._expire(record)
        record.failures.append(self._clock())
        return self.policy.delay_after(len(record.failures))

    def _forget_if_clean(self, key: str, record: _Record) -> None:
        if not record.pending:
            self._expire(record)
            if not record.failures and self._records.get(key) is record:
                del self._records[key]

    def _evict(self) -> None:
        while len(self._records) > MAX_CLIENTS:
            self._records.popitem(last=False)
