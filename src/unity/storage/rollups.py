"""Rollup tiers: every declared numeric metric per minute and per hour.

A background pass (:class:`Rollups`) folds closed buckets of raw documents
into the 1-minute tier and closed hours of that tier into the 1-hour tier,
storing count, sum, min, max and last per series (plugin, metric, host and,
for a ``*`` path, item). Each plugin's :class:`RollupMark` says how far its
tier is rolled, so each raw row is read once; a pass commits its rows and
its mark together, and upserts whole buckets, so running it again never
counts a sample twice.

Late samples -- rows stored after their bucket was rolled, such as a batch
an external agent replays -- are found by id: rows above the mark's
``raw_id`` but older than its ``until``. Their buckets are recomputed from
the raw rows (on PostgreSQL the id horizon is read under a SHARE lock, so no
row below it is still uncommitted). Samples older than a plugin's raw
retention are left alone: their bucket's other raw rows are already gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, exists, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from unity.settings import Settings
from unity.storage import registry
from unity.storage.buckets import Partial, as_number, numbers
from unity.storage.db import Database, is_unavailable
from unity.storage.dialects import dialect_insert
from unity.storage.leases import ROLLUP_LEASE, HubLeases
from unity.storage.models import MetricSeries, PluginMetric, RollupHour, RollupMark, RollupMinute
from unity.storage.tiers import HOUR, MINUTE, TIERS, Tier
from unity.storage.types import utcnow
from unity_sdk import MetricDisplay, MetricField

__all__ = ["Rolled", "Rollups", "purge_tiers", "roll_plugin", "rolled_metrics"]

log = logging.getLogger(__name__)

# A bucket counts as closed this long after it ends: samples are stamped when
# collected and stored a moment later.
SETTLE = 15
# Seconds of raw history one transaction rolls while catching up.
CHUNK = 6 * 3600


SeriesKey = tuple[str, str, str]  # metric, host, item
Buckets = dict[tuple[SeriesKey, int], Partial]


@dataclass(frozen=True)
class Rolled:
    """A declared metric the tiers keep; ``booleans``: true/false count as 1/0."""

    name: str
    path: tuple[str, ...]
    booleans: bool


def rolled_metrics(metadata: dict[str, Any]) -> list[Rolled]:
    """The numeric (gauge, counter) and state metrics of a plugin's stored metadata."""
    out = []
    for declared in metadata.get("metrics", []):
        try:
            field = MetricField.model_validate(declared)
        except ValidationError:
            continue
        state = field.shown_as is MetricDisplay.STATE
        if field.numeric or state:
            out.append(Rolled(field.name, field.path, state))
    return out


def _epoch(stamp: datetime) -> float:
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def _when(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


async def id_horizon(session: AsyncSession) -> int:
    """The highest raw id below which every row is committed and visible."""
    if session.get_bind().dialect.name == "postgresql":
        # Waits for in-flight inserts; a later insert draws a higher id. New
        # inserts queue behind the lock, so it is given up after a moment (a
        # long purge running) and the pass tried again at the next interval.
        await session.execute(text("SET LOCAL lock_timeout = '2s'"))
        await session.execute(text("LOCK TABLE plugin_metrics IN SHARE MODE"))
    return int(await session.scalar(select(func.max(PluginMetric.id))) or 0)


def _count(out: Buckets, key: tuple[SeriesKey, int], number: float) -> None:
    found = out.get(key)
    if found is None:
        out[key] = Partial.of(number)
    else:
        found.add(number)


def aggregate(rows: Iterable[Any], metrics: Sequence[Rolled], tier: Tier) -> Buckets:
    """Partials per (series, bucket) of raw rows given oldest first."""
    out: Buckets = {}
    plain = [metric for metric in metrics if "*" not in metric.path]
    starred = [metric for metric in metrics if "*" in metric.path]
    for row in rows:
        bucket = tier.floor(_epoch(row.timestamp))
        for metric in plain:
            # The common case, looked up directly: walk() is a generator per level.
            node: Any = row.data
            for part in metric.path:
                node = node.get(part) if isinstance(node, dict) else None
            number = as_number(node, booleans=metric.booleans)
            if number is not None:
                _count(out, ((metric.name, row.host, ""), bucket), number)
        for metric in starred:
            for item, number in numbers(row.data, metric.path, booleans=metric.booleans):
                _count(out, ((metric.name, row.host, item), bucket), number)
    return out


async def _raw(
    session: AsyncSession, plugin_id: str, lo: int, hi: int, horizon: int
) -> Sequence[Any]:
    stmt = (
        select(PluginMetric.host, PluginMetric.timestamp, PluginMetric.data)
        .where(
            PluginMetric.plugin_id == plugin_id,
            PluginMetric.timestamp >= _when(lo),
            PluginMetric.timestamp < _when(hi),
            PluginMetric.id <= horizon,
        )
        .order_by(PluginMetric.timestamp, PluginMetric.id)
    )
    return (await session.execute(stmt)).all()


def _ranges(buckets: Iterable[int], width: int) -> list[tuple[int, int]]:
    """Sorted buckets as [start, end) runs of adjacent buckets."""
    runs: list[tuple[int, int]] = []
    for bucket in sorted(set(buckets)):
        if runs and runs[-1][1] == bucket:
            runs[-1] = (runs[-1][0], bucket + width)
        else:
            runs.append((bucket, bucket + width))
    return runs


class _Writer:
    """Resolves series ids (creating new series) and upserts tier rows."""

    def __init__(self, session: AsyncSession, plugin_id: str) -> None:
        self.session = session
        self.plugin_id = plugin_id
        self.ids: dict[SeriesKey, int] | None = None  # loaded on the first write

    async def load(self) -> dict[SeriesKey, int]:
        stmt = select(MetricSeries.id, MetricSeries.metric, MetricSeries.host, MetricSeries.item)
        result = await self.session.execute(stmt.where(MetricSeries.plugin_id == self.plugin_id))
        self.ids = {(metric, host, item): sid for sid, metric, host, item in result.all()}
        return self.ids

    async def write(self, tier: Tier, buckets: Buckets) -> None:
        if not buckets:
            return
        ids = self.ids if self.ids is not None else await self.load()
        missing = {key for key, _ in buckets} - ids.keys()
        if missing:
            await self.session.execute(
                insert(MetricSeries),
                [
                    {"plugin_id": self.plugin_id, "metric": m, "host": h, "item": i}
                    for m, h, i in sorted(missing)
                ],
            )
            ids = await self.load()
        rows = [
            {
                "series_id": ids[key],
                "bucket": bucket,
                "count": p.count,
                "sum": p.sum,
                "min": p.min,
                "max": p.max,
                "last": p.last,
            }
            for (key, bucket), p in buckets.items()
        ]
        await upsert(self.session, tier, rows)


async def upsert(session: AsyncSession, tier: Tier, rows: list[dict[str, Any]]) -> None:
    """Insert tier rows, replacing a bucket already there (a recomputed one)."""
    stmt = dialect_insert(session.get_bind().dialect.name)(tier.model)
    stmt = stmt.on_conflict_do_update(
        index_elements=["series_id", "bucket"],
        set_={c: stmt.excluded[c] for c in ("count", "sum", "min", "max", "last")},
    )
    for start in range(0, len(rows), 5000):
        await session.execute(stmt, rows[start : start + 5000])


async def _hours_from_minutes(session: AsyncSession, plugin_id: str, lo: int, hi: int) -> Buckets:
    """The hour tier's partials for [lo, hi), folded from the minute tier."""
    stmt = (
        select(
            MetricSeries.metric,
            MetricSeries.host,
            MetricSeries.item,
            RollupMinute.bucket,
            RollupMinute.count,
            RollupMinute.sum,
            RollupMinute.min,
            RollupMinute.max,
            RollupMinute.last,
        )
        .join(MetricSeries, MetricSeries.id == RollupMinute.series_id)
        .where(
            MetricSeries.plugin_id == plugin_id,
            RollupMinute.bucket >= lo,
            RollupMinute.bucket < hi,
        )
        .order_by(RollupMinute.series_id, RollupMinute.bucket)
    )
    out: Buckets = {}
    for metric, host, item, bucket, count, total, lo_v, hi_v, last in await session.execute(stmt):
        key = ((metric, host, item), HOUR.floor(bucket))
        partial = Partial(count, total, lo_v, hi_v, last)
        found = out.get(key)
        if found is None:
            out[key] = partial
        else:
            found.merge(partial)
    return out


async def _marks(session: AsyncSession, plugin_id: str, horizon: int) -> dict[str, RollupMark]:
    stmt = select(RollupMark).where(RollupMark.plugin_id == plugin_id)
    marks = {mark.tier: mark for mark in (await session.scalars(stmt)).all()}
    if len(marks) == len(TIERS):
        return marks
    first = await session.scalar(
        select(func.min(PluginMetric.timestamp)).where(
            PluginMetric.plugin_id == plugin_id, PluginMetric.id <= horizon
        )
    )
    start = _epoch(first) if first is not None else _epoch(utcnow())
    for tier in TIERS:
        if tier.name not in marks:
            mark = RollupMark(
                plugin_id=plugin_id,
                tier=tier.name,
                until=tier.floor(start),
                raw_id=horizon,
                kept_from=0,
                metrics={},
            )
            session.add(mark)
            marks[tier.name] = mark
    return marks


def _declare(mark: RollupMark, metrics: Sequence[Rolled]) -> None:
    """Record each metric's first rolled bucket; a new or changed metric starts now."""
    known = mark.metrics or {}
    updated: dict[str, Any] = {}
    for metric in metrics:
        since, booleans = known.get(metric.name, (mark.until, metric.booleans))
        if booleans != metric.booleans:
            since = mark.until
        updated[metric.name] = [since, metric.booleans]
    if updated != known:
        mark.metrics = updated


async def roll_plugin(
    session: AsyncSession,
    *,
    plugin_id: str,
    metrics: Sequence[Rolled],
    horizon: int,
    closed: int,
    raw_from: float,
) -> bool:
    """One step for one plugin, in the caller's transaction; True when caught up.

    ``horizon``: the raw id horizon of this pass; ``closed``: the epoch before
    which minutes are closed; ``raw_from``: the plugin's raw retention cutoff.
    """
    marks = await _marks(session, plugin_id, horizon)
    minute, hour = marks[MINUTE.name], marks[HOUR.name]
    for mark in (minute, hour):
        _declare(mark, metrics)
    writer = _Writer(session, plugin_id)
    lo = minute.until
    hi = max(lo, min(MINUTE.floor(closed), lo + CHUNK))
    if minute.raw_id < horizon:
        late = await session.scalars(
            select(PluginMetric.timestamp)
            .where(
                PluginMetric.plugin_id == plugin_id,
                PluginMetric.id > minute.raw_id,
                PluginMetric.id <= horizon,
                PluginMetric.timestamp < _when(lo),
                PluginMetric.timestamp >= _when(int(raw_from)),
            )
            .distinct()
        )
        stamps = [_epoch(stamp) for stamp in late.all()]
        for tier, before in ((MINUTE, lo), (HOUR, hour.until)):
            touched = {tier.floor(s) for s in stamps}
            touched = {b for b in touched if b >= raw_from and b < before}
            for start, end in _ranges(touched, tier.width):
                rows = await _raw(session, plugin_id, start, end, horizon)
                await writer.write(tier, aggregate(rows, metrics, tier))
    if hi > lo:
        rows = await _raw(session, plugin_id, lo, hi, horizon)
        await writer.write(MINUTE, aggregate(rows, metrics, MINUTE))
    hours_end = HOUR.floor(hi)
    if hours_end > hour.until:
        await writer.write(
            HOUR, await _hours_from_minutes(session, plugin_id, hour.until, hours_end)
        )
        hour.until = hours_end
    minute.until = hi
    minute.raw_id = hour.raw_id = max(minute.raw_id, horizon)
    return hi >= MINUTE.floor(closed)


class Rollups:
    """Keeps the tiers up to date: a pass now and then every ``rollup_interval_seconds``."""

    def __init__(self, db: Database, settings: Settings, leases: HubLeases | None = None) -> None:
        self.db = db
        self.settings = settings
        self.leases = leases or HubLeases(db, settings)

    async def roll(self, now: datetime | None = None) -> int:
        """One pass over every plugin with rolled metrics; returns the plugins rolled."""
        moment = _epoch(now or utcnow())
        async with self.db.writer() as session:
            horizon = await id_horizon(session)
        async with self.db.session() as session:
            plugins = [
                (row.id, rolled_metrics(row.plugin_metadata), row.config or {})
                for row in await registry.list_plugins(session, limit=1_000_000)
            ]
        rolled = 0
        for plugin_id, metrics, config in plugins:
            if not metrics:
                continue
            days = int(config.get("retention_days") or self.settings.retention_days)
            done = False
            while not done:
                async with self.db.writer() as session:
                    done = await roll_plugin(
                        session,
                        plugin_id=plugin_id,
                        metrics=metrics,
                        horizon=horizon,
                        closed=int(moment) - SETTLE,
                        raw_from=moment - days * 86400,
                    )
            rolled += 1
        return rolled

    async def run(self) -> None:
        """Pass after pass until cancelled; a failed pass is retried at the next.

        With several hubs on one database, only the holder of the ``rollups``
        lease (kept across passes) rolls up.
        """
        while True:
            await asyncio.sleep(self.settings.rollup_interval_seconds)
            try:
                if await self.leases.claim(ROLLUP_LEASE, self.settings.rollup_interval_seconds * 3):
                    await self.roll()
            except Exception as exc:
                if "lock timeout" in str(exc):
                    log.warning("rollup pass put off: a long write held plugin_metrics")
                elif not is_unavailable(exc):
                    log.exception("rollup pass failed")


async def purge_tiers(
    session: AsyncSession, *, now: datetime, days: dict[str, int]
) -> dict[str, int]:
    """Delete each tier's buckets older than its retention (``days`` per tier name).

    Deletes series by series, so the primary key (series, bucket) finds the
    rows; sets each mark's ``kept_from``; returns the rows removed per tier.
    """
    ids = list((await session.scalars(select(MetricSeries.id))).all())
    removed: dict[str, int] = {}
    for tier in TIERS:
        cutoff = tier.ceil(_epoch(now) - days[tier.name] * 86400)
        count = 0
        for start in range(0, len(ids), 500):
            result = await session.execute(
                delete(tier.model).where(
                    tier.model.series_id.in_(ids[start : start + 500]), tier.model.bucket < cutoff
                )
            )
            count += int(getattr(result, "rowcount", 0) or 0)
        await session.execute(
            update(RollupMark)
            .where(RollupMark.tier == tier.name, RollupMark.kept_from < cutoff)
            .values(kept_from=cutoff)
        )
        removed[tier.name] = count
    # A series none of whose buckets is kept any more (a disk long gone).
    await session.execute(
        delete(MetricSeries).where(
            ~exists().where(RollupMinute.series_id == MetricSeries.id),
            ~exists().where(RollupHour.series_id == MetricSeries.id),
        )
    )
    return removed
