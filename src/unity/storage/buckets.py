"""The pieces series and rollups share: points, partial aggregates, path walking.

A :class:`Partial` is what a bucket knows of its samples -- count, sum, min,
max and the last value -- so partials of raw rows and of rollup tiers merge
into exactly the aggregate the raw rows alone would give.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "Partial",
    "SeriesPoint",
    "as_number",
    "fill_buckets",
    "filled",
    "merge_into",
    "numbers",
    "walk",
]


@dataclass(frozen=True)
class SeriesPoint:
    bucket: datetime
    avg: float | None
    min: float | None
    max: float | None
    count: int


@dataclass
class Partial:
    """The running aggregate of one bucket; ``last`` is the newest sample's value."""

    count: int
    sum: float
    min: float
    max: float
    last: float

    @classmethod
    def of(cls, value: float) -> Partial:
        return cls(1, value, value, value, value)

    def add(self, value: float) -> None:
        """Count a sample newer than every one counted so far."""
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.last = value

    def merge(self, other: Partial) -> None:
        """Fold in the aggregate of other samples (``other.last`` is taken as newer)."""
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.last = other.last


def merge_into(target: dict[int, Partial], bucket: int, partial: Partial) -> None:
    found = target.get(bucket)
    if found is None:
        target[bucket] = Partial(partial.count, partial.sum, partial.min, partial.max, partial.last)
    else:
        found.merge(partial)


def filled(
    partials: Mapping[int, Partial], *, start: datetime, end: datetime, step: int
) -> list[SeriesPoint]:
    """Every bucket of the range from per-bucket partials (epoch seconds), as
    :func:`fill_buckets` gives it; avg is sum / count."""
    first = math.floor(start.timestamp() / step) * step
    zone = start.tzinfo
    # A fixed offset (UTC) allows adding to one stamp; a zone with DST does not.
    fixed = zone is None or isinstance(zone, timezone)
    base = datetime.fromtimestamp(first, tz=zone)
    out = []
    for index, epoch in enumerate(range(first, math.ceil(end.timestamp()), step)):
        stamp = (
            base + timedelta(seconds=index * step)
            if fixed
            else datetime.fromtimestamp(epoch, tz=zone)
        )
        partial = partials.get(epoch)
        if partial is None:
            out.append(SeriesPoint(bucket=stamp, avg=None, min=None, max=None, count=0))
        else:
            out.append(
                SeriesPoint(
                    bucket=stamp,
                    avg=partial.sum / partial.count,
                    min=partial.min,
                    max=partial.max,
                    count=partial.count,
                )
            )
    return out


def fill_buckets(
    points: Sequence[SeriesPoint], *, start: datetime, end: datetime, step: int
) -> list[SeriesPoint]:
    """Every bucket of the range, those without a sample as nulls with a count of 0.

    A chart draws a null as a gap; leaving the bucket out would draw a straight
    line across the time nothing was collected.
    """
    found = {int(p.bucket.timestamp()): p for p in points}
    first = math.floor(start.timestamp() / step) * step
    filled = []
    for epoch in range(first, math.ceil(end.timestamp()), step):
        point = found.get(epoch)
        if point is None:
            stamp = datetime.fromtimestamp(epoch, tz=start.tzinfo)
            point = SeriesPoint(bucket=stamp, avg=None, min=None, max=None, count=0)
        filled.append(point)
    return filled


def as_number(value: Any, *, booleans: bool) -> float | None:
    """A finite JSON number as a float; with ``booleans``, true/false as 1/0; else None."""
    if isinstance(value, bool):
        return float(value) if booleans else None
    if not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def walk(node: Any, path: Sequence[str], label: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(item, value) for every match of ``path`` under ``node``; ``*`` names the item.

    ``*`` matches every key of a mapping and every index of a list; the item
    is what the wildcards matched, joined by dots ("" without wildcards).
    """
    if not path:
        yield ".".join(label), node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(node, Mapping):
            for key, child in node.items():
                yield from walk(child, rest, (*label, str(key)))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, rest, (*label, str(index)))
    elif isinstance(node, Mapping) and head in node:
        yield from walk(node[head], rest, label)


def numbers(
    node: Any, path: Sequence[str], *, booleans: bool, label: tuple[str, ...] = ()
) -> Iterator[tuple[str, float]]:
    """(item, number) for every match of ``path`` that holds a number."""
    for item, value in walk(node, path, label):
        number = as_number(value, booleans=booleans)
        if number is not None:
            yield item, number
