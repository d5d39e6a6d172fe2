"""Series: a declared metric's values along its dotted path, bucketed per step.

One series per metric, or one per item for a ``*`` path (``disks.*.percent``).
Where a rollup tier covers the range (see :mod:`unity.storage.tiers`) the
answer is read from it, and the newest samples, not rolled up yet, from the
raw documents (``plugin_metrics``); the two merge into exactly what the raw
documents alone would give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Select, case, cast, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from unity.storage import tiers
from unity.storage.buckets import (
    Partial,
    SeriesPoint,
    fill_buckets,
    filled,
    merge_into,
    numbers,
    walk,
)
from unity.storage.models import PluginMetric

__all__ = ["SeriesPoint", "fill_buckets", "item_series", "series", "walk"]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _epoch(dialect: str, column: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", column)
    # Whole seconds of the stored text: strftime would round the fraction first,
    # moving the last half millisecond of a bucket into the next one.
    return cast(func.strftime("%s", func.substr(column, 1, 19)), Float)


def _numeric_value(dialect: str, path: Sequence[str], *, booleans: bool) -> ColumnElement[Any]:
    """The field as a float, NULL where it is missing or not a number.

    With ``booleans``, ``true`` and ``false`` count as 1 and 0 (state metrics).
    """
    node = PluginMetric.data[tuple(path)]
    if dialect == "postgresql":
        kind = func.jsonb_typeof(node)
        is_number = kind == "number"
        is_boolean = kind == "boolean"
    else:
        json_path = "$" + "".join(f'."{part}"' for part in path)
        kind = func.json_type(PluginMetric.data, json_path)
        is_number = kind.in_(("integer", "real"))
        is_boolean = kind.in_(("true", "false"))
    if booleans:
        boolean = case((node.as_boolean(), 1.0), else_=0.0)
        return case((is_number, node.as_float()), (is_boolean, boolean), else_=None)
    return case((is_number, node.as_float()), else_=None)


async def _segments(
    session: AsyncSession,
    *,
    plugin_id: str,
    metric: str,
    start: datetime,
    end: datetime,
    step: int,
    booleans: bool,
) -> list[tiers.Segment]:
    covered = await tiers.coverage(session, plugin_id=plugin_id, metric=metric, booleans=booleans)
    chosen = tiers.choose(covered, start=start, end=end, step=step)
    return tiers.plan(start, end, chosen)


def _raw_select(
    dialect: str,
    *,
    plugin_id: str,
    path: Sequence[str],
    lo: datetime,
    hi: datetime,
    step: int,
    host: str | None,
    booleans: bool,
) -> Select[Any]:
    """Per bucket, the aggregate of the raw documents in [lo, hi).

    The value is computed once per row in a subquery; the OFFSET keeps both
    databases from folding it into the aggregates, which would extract the
    field once per aggregate.
    """
    bucket = func.floor(_epoch(dialect, PluginMetric.timestamp) / step) * step
    rows = (
        select(
            cast(bucket, BigInteger).label("bucket"),
            _numeric_value(dialect, path, booleans=booleans).label("value"),
        )
        .where(
            PluginMetric.plugin_id == plugin_id,
            PluginMetric.timestamp >= lo,
            PluginMetric.timestamp < hi,
        )
        .offset(0)
    )
    if host is not None:
        rows = rows.where(PluginMetric.host == host)
    inner = rows.subquery()
    value = inner.c.value
    return select(
        inner.c.bucket, func.count(value), func.sum(value), func.min(value), func.max(value)
    ).group_by(inner.c.bucket)


async def series(
    session: AsyncSession,
    *,
    plugin_id: str,
    path: Sequence[str],
    start: datetime,
    end: datetime,
    step: int,
    host: str | None = None,
    booleans: bool = False,
) -> list[SeriesPoint]:
    """Average, min, max and count of one numeric field per ``step`` seconds.

    Every segment of the plan is one SELECT of a UNION ALL: one round trip.
    """
    dialect = _dialect(session)
    metric = ".".join(path)
    parts: list[Select[Any]] = []
    for segment in await _segments(
        session,
        plugin_id=plugin_id,
        metric=metric,
        start=start,
        end=end,
        step=step,
        booleans=booleans,
    ):
        if segment.source is None:
            parts.append(
                _raw_select(
                    dialect,
                    plugin_id=plugin_id,
                    path=path,
                    lo=segment.lo,
                    hi=segment.hi,
                    step=step,
                    host=host,
                    booleans=booleans,
                )
            )
        else:
            parts.append(
                tiers.tier_select(segment, plugin_id=plugin_id, metric=metric, step=step, host=host)
            )
    merged: dict[int, Partial] = {}
    if parts:
        stmt = parts[0] if len(parts) == 1 else union_all(*parts)
        for bucket, count, total, lo_v, hi_v in (await session.execute(stmt)).all():
            if count:
                merge_into(merged, int(bucket), tiers.partial(count, total, lo_v, hi_v))
    return filled(merged, start=start, end=end, step=step)


async def _raw_item_partials(
    session: AsyncSession,
    *,
    plugin_id: str,
    path: Sequence[str],
    lo: datetime,
    hi: datetime,
    step: int,
    host: str | None,
    wanted: set[str] | None,
    booleans: bool,
) -> dict[str, dict[int, Partial]]:
    """Per item, per bucket, the aggregate of the raw documents in [lo, hi).

    The database hands over only the sub-document under the fixed prefix of
    the path; the wildcards are walked here, because ``*`` matches list items
    as well as mapping keys, which neither SQLite's ``json_each`` nor
    PostgreSQL's ``jsonb_each`` does alike.
    """
    star = path.index("*")
    prefix, rest = tuple(path[:star]), path[star:]
    document = PluginMetric.data[prefix] if prefix else PluginMetric.data
    stmt = select(PluginMetric.timestamp, document).where(
        PluginMetric.plugin_id == plugin_id,
        PluginMetric.timestamp >= lo,
        PluginMetric.timestamp < hi,
    )
    if host is not None:
        stmt = stmt.where(PluginMetric.host == host)
    out: dict[str, dict[int, Partial]] = {}
    for stamp, node in (await session.execute(stmt)).all():
        aware = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
        epoch = math.floor(aware.timestamp() / step) * step
        for item, value in numbers(node, rest, booleans=booleans):
            if wanted is None or item in wanted:
                buckets = out.setdefault(item, {})
                found = buckets.get(epoch)
                if found is None:
                    buckets[epoch] = Partial.of(value)
                else:
                    found.add(value)
    return out


async def item_series(
    session: AsyncSession,
    *,
    plugin_id: str,
    path: Sequence[str],
    start: datetime,
    end: datetime,
    step: int,
    host: str | None = None,
    items: Sequence[str] | None = None,
    booleans: bool = False,
) -> dict[str, list[SeriesPoint]]:
    """One bucketed series per item of a per-item metric (a path with ``*``).

    The item is what the wildcards matched, joined by dots (``sda.read`` for
    ``disks.*.*.bytes``).
    """
    metric = ".".join(path)
    wanted = set(items) if items is not None else None
    merged: dict[str, dict[int, Partial]] = {}
    for segment in await _segments(
        session,
        plugin_id=plugin_id,
        metric=metric,
        start=start,
        end=end,
        step=step,
        booleans=booleans,
    ):
        if segment.source is None:
            found = await _raw_item_partials(
                session,
                plugin_id=plugin_id,
                path=path,
                lo=segment.lo,
                hi=segment.hi,
                step=step,
                host=host,
                wanted=wanted,
                booleans=booleans,
            )
        else:
            found = await tiers.item_partials(
                session,
                segment,
                plugin_id=plugin_id,
                metric=metric,
                step=step,
                host=host,
                items=items,
            )
        for item, partials in found.items():
            target = merged.setdefault(item, {})
            for bucket, partial in partials.items():
                merge_into(target, bucket, partial)
    return {item: filled(merged[item], start=start, end=end, step=step) for item in sorted(merged)}
