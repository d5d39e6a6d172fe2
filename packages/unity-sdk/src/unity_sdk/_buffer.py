"""The bounded buffer between an external plugin's collections and the hub.

Samples wait here, oldest first, until the hub accepts them. The oldest is
dropped (and counted) when the buffer is full. A batch handed to the hub is
held "in flight" with its batch id until accepted, so resending it after a
lost answer is recognised by the hub as a duplicate instead of stored twice.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from typing import Any

from unity_sdk._wire import MAX_BATCH_SAMPLES, Sample
from unity_sdk.errors import HubRequestError

__all__ = ["SampleBuffer"]


class SampleBuffer:
    """At most ``size`` samples; batches of at most ``MAX_BATCH_SAMPLES``."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the buffer size must be at least 1")
        self.size = size
        # Half the buffer at most, so a batch in flight never holds every slot.
        self.batch_limit = min(MAX_BATCH_SAMPLES, max(1, size // 2))
        self.dropped = 0
        self.rejected = 0
        self._queue: deque[Sample] = deque()
        self._in_flight: tuple[str, list[Sample]] | None = None

    def __len__(self) -> int:
        return len(self._queue) + (len(self._in_flight[1]) if self._in_flight else 0)

    def append(self, sample: Sample) -> None:
        """Add the newest sample, dropping the oldest when full."""
        self._queue.append(sample)
        while len(self) > self.size:
            if len(self._queue) == 1 and self._in_flight:
                # Only the new sample is left to drop: give up the batch in flight.
                self._queue.extendleft(reversed(self._in_flight[1]))
                self._in_flight = None
            self._queue.popleft()
            self.dropped += 1

    def next_batch(self) -> tuple[str, list[Sample]] | None:
        """The batch to send now (the one in flight, else a new one), or None."""
        if self._in_flight is None and self._queue:
            count = min(len(self._queue), self.batch_limit)
            self._in_flight = (uuid.uuid4().hex, [self._queue.popleft() for _ in range(count)])
        return self._in_flight

    def accepted(self) -> int:
        """The hub stored the batch in flight; returns how many samples it held."""
        samples = self._in_flight[1] if self._in_flight else []
        self._in_flight = None
        return len(samples)

    def refused(self, exc: HubRequestError) -> int:
        """The hub refused the batch in flight; returns how many samples were discarded.

        413: retried in smaller batches. 422 naming samples (``loc`` =
        ``samples``, index, ...): those are discarded and the rest requeued.
        Anything else discards the whole batch: resending cannot help.
        """
        samples = self._in_flight[1] if self._in_flight else []
        self._in_flight = None
        if exc.status == 413 and len(samples) > 1:
            self.batch_limit = max(1, len(samples) // 2)
            self._queue.extendleft(reversed(samples))
            return 0
        bad = _sample_indexes(exc.details) if exc.status == 422 else set()
        if not bad or not bad <= set(range(len(samples))):
            bad = set(range(len(samples)))
        self.rejected += len(bad)
        self._queue.extendleft(reversed([s for i, s in enumerate(samples) if i not in bad]))
        return len(bad)


def _sample_indexes(details: Any) -> set[int]:
    """Indexes of the samples a 422's details point at."""
    indexes: set[int] = set()
    for problem in details if isinstance(details, list) else ():
        loc = list(problem.get("loc", ())) if isinstance(problem, dict) else []
        if loc[:1] == ["body"]:
            loc = loc[1:]
        if len(loc) >= 2 and loc[0] == "samples":
            with contextlib.suppress(TypeError, ValueError):
                indexes.add(int(loc[1]))
    return indexes
