"""Series: a declared metric's values along its dotted path, bucketed per step.

Computed in the database from the stored documents (``plugin_metrics``): one
series per metric, or one per item for a ``*`` path (``disks.*.percent``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from unity.storage.models import PluginMetric

__all__ = ["SeriesPoint", "fill_buckets", "item_series", "series", "walk"]


@dataclass(frozen=True)
class SeriesPoint:
    bucket: datetime
    avg: float | None
    min: float | None
    max: float | None
    count: int


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
    """Average, min, max and count of one numeric field per ``step`` seconds."""
    dialect = _dialect(session)
    value = _numeric_value(dialect, path, booleans=booleans)
    bucket = func.floor(_epoch(dialect, PluginMetric.timestamp) / step) * step
    stmt = (
        select(
            bucket.label("bucket"),
            func.avg(value),
            func.min(value),
            func.max(value),
            func.count(value),
        )
        .where(
            PluginMetric.plugin_id == plugin_id,
            PluginMetric.timestamp >= start,
            PluginMetric.timestamp < end,
        )
        .group_by(bucket)
        .order_by(bucket)
    )
    if host is not None:
        stmt = stmt.where(PluginMetric.host == host)
    result = await session.execute(stmt)
    points = []
    for bucket_epoch, avg, lo, hi, count in result.all():
        stamp = datetime.fromtimestamp(float(bucket_epoch), tz=start.tzinfo)
        points.append(
            SeriesPoint(
                bucket=stamp,
                avg=float(avg) if avg is not None else None,
                min=float(lo) if lo is not None else None,
                max=float(hi) if hi is not None else None,
                count=int(count),
            )
        )
    return fill_buckets(points, start=start, end=end, step=step)


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


def _number(value: Any, *, booleans: bool) -> float | None:
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


def _expand(
    node: Any, path: Sequence[str], label: tuple[str, ...], *, booleans: bool
) -> Iterator[tuple[str, float]]:
    for item, value in walk(node, path, label):
        number = _number(value, booleans=booleans)
        if number is not None:
            yield item, number


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
    ``disks.*.*.bytes``). The database hands over only the sub-document under
    the fixed prefix of the path; the wildcards are walked here, because
    ``*`` matches list items as well as mapping keys, which neither SQLite's
    ``json_each`` nor PostgreSQL's ``jsonb_each`` does alike.
    """
    star = path.index("*")
    prefix, rest = tuple(path[:star]), path[star:]
    document = PluginMetric.data[prefix] if prefix else PluginMetric.data
    stmt = select(PluginMetric.timestamp, document).where(
        PluginMetric.plugin_id == plugin_id,
        PluginMetric.timestamp >= start,
        PluginMetric.timestamp < end,
    )
    if host is not None:
        stmt = stmt.where(PluginMetric.host == host)
    wanted = set(items) if items is not None else None
    buckets: dict[str, dict[int, list[float]]] = {}
    for stamp, node in (await session.execute(stmt)).all():
        aware = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
        epoch = math.floor(aware.timestamp() / step) * step
        for item, value in _expand(node, rest, (), booleans=booleans):
            if wanted is None or item in wanted:
                buckets.setdefault(item, {}).setdefault(epoch, []).append(value)
    out: dict[str, list[SeriesPoint]] = {}
    for item in sorted(buckets):
        points = [
            SeriesPoint(
                bucket=datetime.fromtimestamp(epoch, tz=start.tzinfo),
                avg=sum(values) / len(values),
                min=min(values),
                max=max(values),
                count=len(values),
            )
            for epoch, values in sorted(buckets[item].items())
        ]
        out[item] = fill_buckets(points, start=start, end=end, step=step)
    return out
