"""Which rollup tier answers a series query, and its partial aggregates.

A query's range is cut into segments: the middle from the coarsest tier that
fits, its edges from the next finer one, and what no tier covers yet -- the
newest samples, not rolled up so far -- from raw rows. A tier fits when the
step is a whole number of its buckets, so every output bucket is a union of
whole tier buckets and the merged answer equals the raw computation.

The 1-hour tier is used for steps of whole hours over more than two days (or
reaching past the minute tier); the 1-minute tier for steps of whole minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.buckets import Partial
from unity.storage.models import MetricSeries, RollupHour, RollupMark, RollupMinute

__all__ = [
    "HOUR",
    "MINUTE",
    "TIERS",
    "Coverage",
    "Segment",
    "Tier",
    "choose",
    "coverage",
    "item_partials",
    "partial",
    "plan",
    "tier_select",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LONG_RANGE = timedelta(days=2)


@dataclass(frozen=True)
class Tier:
    """A rollup tier: its name in the marks, its bucket width in seconds, its table."""

    name: str
    width: int
    model: type[RollupMinute] | type[RollupHour]

    def floor(self, epoch: float) -> int:
        return int(epoch // self.width) * self.width

    def ceil(self, epoch: float) -> int:
        return -int(-epoch // self.width) * self.width


MINUTE = Tier("1m", 60, RollupMinute)
HOUR = Tier("1h", 3600, RollupHour)
TIERS = (MINUTE, HOUR)


@dataclass(frozen=True)
class Coverage:
    """Buckets [lo, hi) (epoch seconds) of one tier hold a metric completely."""

    tier: Tier
    lo: int
    hi: int


@dataclass(frozen=True)
class Segment:
    """Part of a query's range; ``source`` None means raw rows."""

    source: Coverage | None
    lo: datetime
    hi: datetime


def _micros(stamp: datetime) -> int:
    return (stamp - EPOCH) // timedelta(microseconds=1)


def _floor(stamp: datetime, width: int) -> int:
    return _micros(stamp) // (width * 1_000_000) * width


def _ceil(stamp: datetime, width: int) -> int:
    return -(-_micros(stamp) // (width * 1_000_000)) * width


def _when(epoch: int) -> datetime:
    return EPOCH + timedelta(seconds=epoch)


async def coverage(
    session: AsyncSession, *, plugin_id: str, metric: str, booleans: bool
) -> dict[str, Coverage]:
    """Per tier name, what the tier holds of ``metric`` rolled with the same ``booleans``."""
    stmt = select(
        RollupMark.tier, RollupMark.until, RollupMark.kept_from, RollupMark.metrics
    ).where(RollupMark.plugin_id == plugin_id)
    out: dict[str, Coverage] = {}
    by_name = {tier.name: tier for tier in TIERS}
    for name, until, kept_from, metrics in (await session.execute(stmt)).all():
        tier = by_name.get(name)
        declared = (metrics or {}).get(metric)
        if tier is None or declared is None or bool(declared[1]) != booleans:
            continue
        lo = max(tier.ceil(kept_from), int(declared[0]))
        if lo < until:
            out[tier.name] = Coverage(tier, lo, until)
    return out


def choose(
    covered: dict[str, Coverage], *, start: datetime, end: datetime, step: int
) -> list[Coverage]:
    """The tiers to read, coarsest first; empty: raw rows only."""
    minute = covered.get(MINUTE.name)
    hour = covered.get(HOUR.name)
    tiers = []
    if hour is not None and step % HOUR.width == 0:
        past_minutes = minute is None or _floor(start, 1) < minute.lo
        if end - start > LONG_RANGE or past_minutes:
            tiers.append(hour)
    if minute is not None and step % MINUTE.width == 0:
        tiers.append(minute)
    return tiers


def plan(start: datetime, end: datetime, tiers: Sequence[Coverage]) -> list[Segment]:
    """Cut [start, end) into segments, each from the coarsest tier that covers it."""
    if start >= end:
        return []
    if not tiers:
        return [Segment(None, start, end)]
    first, rest = tiers[0], tiers[1:]
    lo = max(_ceil(start, first.tier.width), first.lo)
    hi = min(_floor(end, first.tier.width), first.hi)
    if lo >= hi:
        return plan(start, end, rest)
    return [
        *plan(start, _when(lo), rest),
        Segment(first, _when(lo), _when(hi)),
        *plan(_when(hi), end, rest),
    ]


def tier_select(
    segment: Segment,
    *,
    plugin_id: str,
    metric: str,
    step: int,
    host: str | None,
    items: Sequence[str] | None = None,
    per_item: bool = False,
) -> Select[Any]:
    """The tier's aggregate per output bucket over the segment.

    Columns: (item, when ``per_item``), bucket, count, sum, min, max.
    """
    assert segment.source is not None
    model = segment.source.tier.model
    bucket = (model.bucket // step * step).label("bucket")
    columns: list[Any] = [
        bucket,
        func.sum(model.count).label("count"),
        func.sum(model.sum).label("sum"),
        func.min(model.min).label("min"),
        func.max(model.max).label("max"),
    ]
    group: list[Any] = [bucket]
    if per_item:
        columns.insert(0, MetricSeries.item)
        group.insert(0, MetricSeries.item)
    stmt = (
        select(*columns)
        .join(MetricSeries, MetricSeries.id == model.series_id)
        .where(
            MetricSeries.plugin_id == plugin_id,
            MetricSeries.metric == metric,
            model.bucket >= _micros(segment.lo) // 1_000_000,
            model.bucket < _micros(segment.hi) // 1_000_000,
        )
        .group_by(*group)
    )
    if host is not None:
        stmt = stmt.where(MetricSeries.host == host)
    if not per_item:
        stmt = stmt.where(MetricSeries.item == "")
    elif items is not None:
        stmt = stmt.where(MetricSeries.item.in_(list(items)))
    return stmt


def partial(count: Any, total: Any, lo: Any, hi: Any) -> Partial:
    """A bucket's partial from an aggregate row (``last`` unused by series)."""
    return Partial(int(count), float(total), float(lo), float(hi), float(hi))


async def item_partials(
    session: AsyncSession,
    segment: Segment,
    *,
    plugin_id: str,
    metric: str,
    step: int,
    host: str | None,
    items: Sequence[str] | None,
) -> dict[str, dict[int, Partial]]:
    """Per item, per output bucket, the tier's partials over the segment."""
    stmt = tier_select(
        segment,
        plugin_id=plugin_id,
        metric=metric,
        step=step,
        host=host,
        items=items,
        per_item=True,
    )
    out: dict[str, dict[int, Partial]] = {}
    for item, epoch, count, total, lo, hi in (await session.execute(stmt)).all():
        out.setdefault(item, {})[int(epoch)] = partial(count, total, lo, hi)
    return out
