"""Rollup tiers: what the pass stores, late samples, re-runs, tier retention and
series read from the tiers equal to the raw documents, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from unity.retention import Retention
from unity.settings import Settings
from unity.storage import registry, series, tiers
from unity.storage.db import Database
from unity.storage.models import (
    MetricSeries,
    PluginMetric,
    RollupHour,
    RollupMark,
    RollupMinute,
)
from unity.storage.rollups import Rollups
from unity.storage.tiers import HOUR, MINUTE
from unity_sdk import MetricField, PluginMetadata

PLUGIN = "host-stats"
# A fixed "now", on a minute boundary plus a few seconds, so tests are exact.
NOW = datetime(2026, 11, 20, 12, 30, 40, tzinfo=UTC)
METRICS = [
    MetricField(name="cpu.percent", unit="%"),
    MetricField(name="disks.*.percent", unit="%"),
    MetricField(name="up", unit="bool"),
    MetricField(name="version", kind="info"),
]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    async with database.session() as session:
        metadata = PluginMetadata(id=PLUGIN, name="Host", version="1.0.0", metrics=METRICS)
        await registry.sync_plugin(session, metadata=metadata)
    yield database
    await database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=database_url, autoenable=[], bootstrap_token=False
    )


async def store(db: Database, rows: Iterable[tuple[str, datetime, dict[str, Any]]]) -> None:
    values = [
        {"plugin_id": PLUGIN, "host": host, "timestamp": stamp, "data": data}
        for host, stamp, data in rows
    ]
    if values:
        async with db.session() as session:
            await session.execute(insert(PluginMetric), values)


async def tier_rows(db: Database, model: Any) -> dict[tuple[str, str, str, int], tuple[Any, ...]]:
    stmt = select(
        MetricSeries.metric,
        MetricSeries.host,
        MetricSeries.item,
        model.bucket,
        model.count,
        model.sum,
        model.min,
        model.max,
        model.last,
    ).join(MetricSeries, MetricSeries.id == model.series_id)
    async with db.session() as session:
        return {
            (m, h, i, b): (c, pytest.approx(s), lo, hi, last)
            for m, h, i, b, c, s, lo, hi, last in (await session.execute(stmt)).all()
        }


def epoch(stamp: datetime) -> int:
    return int(stamp.timestamp())


async def test_tiers_hold_min_avg_max_count_last_per_series_and_item(
    db: Database, settings: Settings
) -> None:
    minute = NOW.replace(second=0) - timedelta(minutes=5)
    await store(
        db,
        [
            ("a", minute + timedelta(seconds=5), {"cpu": {"percent": 10}, "up": True}),
            ("a", minute + timedelta(seconds=35), {"cpu": {"percent": 30.5}, "up": False}),
            ("a", minute + timedelta(seconds=50), {"cpu": {"percent": "n/a"}, "version": 3}),
            (
                "b",
                minute + timedelta(seconds=20),
                {"cpu": {"percent": 7}, "disks": {"sda": {"percent": 40}, "sdb": {"percent": 2}}},
            ),
            ("b", minute + timedelta(seconds=40), {"disks": {"sda": {"percent": 50}}}),
            ("b", minute + timedelta(minutes=1), {"disks": {"sda": {"percent": 60}}}),
        ],
    )
    assert await Rollups(db, settings).roll(NOW) == 1
    rows = await tier_rows(db, RollupMinute)
    b0, b1 = epoch(minute), epoch(minute) + 60
    assert rows == {
        ("cpu.percent", "a", "", b0): (2, 40.5, 10.0, 30.5, 30.5),
        ("cpu.percent", "b", "", b0): (1, 7.0, 7.0, 7.0, 7.0),
        ("up", "a", "", b0): (2, 1.0, 0.0, 1.0, 0.0),
        ("disks.*.percent", "b", "sda", b0): (2, 90.0, 40.0, 50.0, 50.0),
        ("disks.*.percent", "b", "sdb", b0): (1, 2.0, 2.0, 2.0, 2.0),
        ("disks.*.percent", "b", "sda", b1): (1, 60.0, 60.0, 60.0, 60.0),
    }
    # The hour of these minutes is still open at NOW: nothing in the hour tier yet.
    assert await tier_rows(db, RollupHour) == {}
    later = NOW + timedelta(hours=1)
    await Rollups(db, settings).roll(later)
    hour = HOUR.floor(epoch(minute))
    assert (await tier_rows(db, RollupHour))[("disks.*.percent", "b", "sda", hour)] == (
        3,
        150.0,
        40.0,
        60.0,
        60.0,
    )


async def test_late_samples_recompute_their_buckets(db: Database, settings: Settings) -> None:
    old = NOW - timedelta(hours=3)
    await store(
        db, [("a", old + timedelta(seconds=m * 60), {"cpu": {"percent": m}}) for m in range(120)]
    )
    rollups = Rollups(db, settings)
    await rollups.roll(NOW)
    # An agent replays samples into a minute and an hour both already rolled.
    late_minute = MINUTE.floor(epoch(old)) + 600
    await store(
        db,
        [
            ("a", datetime.fromtimestamp(late_minute + 30, UTC), {"cpu": {"percent": 1000}}),
            ("a", datetime.fromtimestamp(late_minute + 10, UTC), {"cpu": {"percent": -5}}),
        ],
    )
    await rollups.roll(NOW + timedelta(minutes=1))
    minutes = await tier_rows(db, RollupMinute)
    # Minute 10 had one sample (10 at :40, still the newest); now also -5 and 1000.
    assert minutes[("cpu.percent", "a", "", late_minute)] == (3, 1005.0, -5.0, 1000.0, 10.0)
    hours = await tier_rows(db, RollupHour)
    first_hour = HOUR.floor(epoch(old))
    expected = [m for m in range(120) if HOUR.floor(epoch(old) + m * 60) == first_hour]
    assert hours[("cpu.percent", "a", "", first_hour)][:4] == (
        len(expected) + 2,
        pytest.approx(sum(expected) + 995),
        -5.0,
        1000.0,
    )


async def test_a_pass_run_again_never_counts_twice(db: Database, settings: Settings) -> None:
    start = NOW - timedelta(hours=2)
    await store(
        db,
        [("a", start + timedelta(seconds=20 * k), {"cpu": {"percent": k % 7}}) for k in range(300)],
    )
    rollups = Rollups(db, settings)
    await rollups.roll(NOW)
    first = (await tier_rows(db, RollupMinute), await tier_rows(db, RollupHour))
    await rollups.roll(NOW)
    assert (await tier_rows(db, RollupMinute), await tier_rows(db, RollupHour)) == first
    # A pass whose marks were lost (as if it died before committing them) rolls
    # the same buckets again: they are replaced, not added to.
    async with db.session() as session:
        for mark in (await session.scalars(select(RollupMark))).all():
            mark.until = HOUR.floor(epoch(start))
            mark.raw_id = 0
    await rollups.roll(NOW)
    assert (await tier_rows(db, RollupMinute), await tier_rows(db, RollupHour)) == first
    assert sum(row[0] for row in first[0].values()) == 300 - sum(
        1 for k in range(300) if start + timedelta(seconds=20 * k) >= NOW.replace(second=0)
    )


async def test_each_tier_keeps_its_own_retention(db: Database, settings: Settings) -> None:
    await store(
        db,
        [
            (
                "a",
                NOW - timedelta(days=days),
                {"cpu": {"percent": days}, "disks": {f"d{days}": {"percent": 1}}},
            )
            for days in (1, 5, 20)
        ],
    )
    await Rollups(db, settings).roll(NOW)
    settings = settings.model_copy(
        update={"rollup_minute_days": 3, "rollup_hour_days": 10, "retention_days": 400}
    )
    await Retention(db, settings).purge(NOW + timedelta(minutes=1))
    minutes = {(k[0], k[2], k[3]) for k in await tier_rows(db, RollupMinute)}
    hours = {(k[0], k[2], k[3]) for k in await tier_rows(db, RollupHour)}

    def day(days: int) -> int:
        return epoch(NOW - timedelta(days=days))

    assert minutes == {
        ("cpu.percent", "", MINUTE.floor(day(1))),
        ("disks.*.percent", "d1", MINUTE.floor(day(1))),
    }
    assert hours == {("cpu.percent", "", HOUR.floor(day(d))) for d in (1, 5)} | {
        ("disks.*.percent", f"d{d}", HOUR.floor(day(d))) for d in (1, 5)
    }
    async with db.session() as session:
        marks = {m.tier: m.kept_from for m in (await session.scalars(select(RollupMark))).all()}
        items = set((await session.scalars(select(MetricSeries.item))).all())
    assert marks[MINUTE.name] == MINUTE.ceil(epoch(NOW + timedelta(minutes=1, days=-3)))
    assert marks[HOUR.name] == HOUR.ceil(epoch(NOW + timedelta(minutes=1, days=-10)))
    # The series of the disk seen only 20 days ago has no bucket left.
    assert items == {"", "d1", "d5"}


def test_tier_choice_follows_range_and_step() -> None:
    minute = tiers.Coverage(MINUTE, lo=0, hi=epoch(NOW) // 60 * 60)
    hour = tiers.Coverage(HOUR, lo=0, hi=epoch(NOW) // 3600 * 3600)
    covered = {MINUTE.name: minute, HOUR.name: hour}
    month, day = NOW - timedelta(days=30), NOW - timedelta(days=1)
    assert tiers.choose(covered, start=month, end=NOW, step=3600) == [hour, minute]
    assert tiers.choose(covered, start=day, end=NOW, step=3600) == [minute]
    assert tiers.choose(covered, start=day, end=NOW, step=60) == [minute]
    assert tiers.choose(covered, start=month, end=NOW, step=5400) == [minute]
    assert tiers.choose(covered, start=day, end=NOW, step=90) == []
    # Past the minute tier's coverage an hourly step goes to the hour tier.
    recent = {MINUTE.name: tiers.Coverage(MINUTE, lo=epoch(day), hi=minute.hi), HOUR.name: hour}
    assert tiers.choose(recent, start=day - timedelta(hours=5), end=NOW, step=3600)[0] == hour
    plan = tiers.plan(month + timedelta(seconds=7), NOW, [hour, minute])
    assert [s.source.tier.name if s.source else "raw" for s in plan] == [
        "raw",
        "1m",
        "1h",
        "1m",
        "raw",
    ]
    assert plan[0].lo == month + timedelta(seconds=7)
    assert plan[-1].hi == NOW
    assert all(a.hi == b.lo for a, b in itertools.pairwise(plan))


def oracle(
    docs: list[tuple[str, datetime, dict[str, Any]]],
    path: list[str],
    *,
    start: datetime,
    end: datetime,
    step: int,
    host: str | None,
    booleans: bool,
) -> dict[str, dict[int, list[float]]]:
    """Values per item per bucket, straight from the documents."""
    out: dict[str, dict[int, list[float]]] = {}
    for doc_host, stamp, data in docs:
        if not (start <= stamp < end) or (host is not None and doc_host != host):
            continue
        bucket = math.floor(stamp.timestamp() / step) * step
        for item, value in series.walk(data, path):
            if isinstance(value, bool) and not booleans:
                continue
            if isinstance(value, int | float):
                out.setdefault(item, {}).setdefault(bucket, []).append(float(value))
    return out


def check(points: list[series.SeriesPoint], expected: dict[int, list[float]]) -> None:
    got = {int(p.bucket.timestamp()): p for p in points if p.count}
    assert set(got) == set(expected)
    for bucket, values in expected.items():
        point = got[bucket]
        assert point.count == len(values)
        assert point.min == min(values)
        assert point.max == max(values)
        assert point.avg == pytest.approx(sum(values) / len(values), rel=1e-9)


def random_doc(rng: random.Random) -> dict[str, Any]:
    disks = {
        name: {"percent": round(rng.uniform(0, 100), 3)}
        for name in ("sda", "sdb", "nvme0")
        if rng.random() < 0.8
    }
    cpu: Any = rng.choice([round(rng.uniform(-50, 150), 4), rng.randint(0, 100), None, "x", True])
    return {"cpu": {"percent": cpu}, "disks": disks, "up": rng.random() < 0.7}


@pytest.mark.parametrize("seed", [1, 2])
async def test_series_from_tiers_equal_the_raw_documents(
    db: Database, settings: Settings, seed: int
) -> None:
    rng = random.Random(seed)
    docs: list[tuple[str, datetime, dict[str, Any]]] = []
    for _ in range(1500):
        stamp = NOW - timedelta(seconds=rng.uniform(0, 4 * 86400))
        docs.append(
            (
                rng.choice(["a", "b"]),
                stamp.replace(microsecond=rng.randrange(0, 10**6)),
                random_doc(rng),
            )
        )
    await store(db, docs)
    rollups = Rollups(db, settings)
    rolled_at = NOW - timedelta(minutes=37)
    await rollups.roll(rolled_at)
    # Late samples (rolled by the next pass), and a tail no pass has seen.
    late = [
        (
            rng.choice(["a", "b"]),
            NOW - timedelta(seconds=rng.uniform(3600, 3 * 86400)),
            random_doc(rng),
        )
        for _ in range(40)
    ]
    await store(db, late)
    await rollups.roll(rolled_at + timedelta(seconds=30))
    tail = [
        (rng.choice(["a", "b"]), NOW - timedelta(seconds=rng.uniform(0, 1800)), random_doc(rng))
        for _ in range(60)
    ]
    await store(db, tail)
    docs += late + tail
    used: set[str] = set()
    cases = [
        (NOW - timedelta(days=4, seconds=rng.randrange(3600)), 3600),
        (NOW - timedelta(days=1, seconds=rng.randrange(3600)), 60),
        (NOW - timedelta(days=3, seconds=rng.randrange(3600)), 7200),
        (NOW - timedelta(hours=30, seconds=rng.randrange(600)), 300),
        (NOW - timedelta(hours=3, seconds=rng.randrange(600)), 90),
    ]
    async with db.session() as session:
        for start, step in cases:
            end = NOW + timedelta(minutes=1)
            for host in (None, "a"):
                for path, booleans in ((["cpu", "percent"], False), (["up"], True)):
                    expected = oracle(
                        docs, path, start=start, end=end, step=step, host=host, booleans=booleans
                    )
                    points = await series.series(
                        session,
                        plugin_id=PLUGIN,
                        path=path,
                        start=start,
                        end=end,
                        step=step,
                        host=host,
                        booleans=booleans,
                    )
                    check(points, expected.get("", {}))
                path = ["disks", "*", "percent"]
                expected = oracle(
                    docs, path, start=start, end=end, step=step, host=host, booleans=False
                )
                found = await series.item_series(
                    session, plugin_id=PLUGIN, path=path, start=start, end=end, step=step, host=host
                )
                assert sorted(found) == sorted(expected)
                for item, points in found.items():
                    check(points, expected[item])
            covered = await tiers.coverage(
                session, plugin_id=PLUGIN, metric="cpu.percent", booleans=False
            )
            for segment in tiers.plan(
                start, end, tiers.choose(covered, start=start, end=end, step=step)
            ):
                used.add(segment.source.tier.name if segment.source else "raw")
    assert used == {"raw", "1m", "1h"}


async def test_a_metric_rolled_with_other_booleans_is_read_raw(
    db: Database, settings: Settings
) -> None:
    await store(db, [("a", NOW - timedelta(minutes=m), {"up": m % 2 == 0}) for m in range(1, 30)])
    await Rollups(db, settings).roll(NOW)
    async with db.session() as session:
        start = NOW - timedelta(hours=1)
        as_state = await series.series(
            session, plugin_id=PLUGIN, path=["up"], start=start, end=NOW, step=60, booleans=True
        )
        as_number = await series.series(
            session, plugin_id=PLUGIN, path=["up"], start=start, end=NOW, step=60
        )
    assert sum(p.count for p in as_state) == 29
    assert sum(p.count for p in as_number) == 0


async def test_a_plugin_deleted_takes_its_tiers_along(db: Database, settings: Settings) -> None:
    await store(db, [("a", NOW - timedelta(minutes=5), {"cpu": {"percent": 1}})])
    await Rollups(db, settings).roll(NOW)
    assert await tier_rows(db, RollupMinute)
    async with db.session() as session:
        await session.execute(delete(PluginMetric))
        from unity.storage.models import Plugin

        await session.execute(delete(Plugin).where(Plugin.id == PLUGIN))
    assert await tier_rows(db, RollupMinute) == {}


async def test_the_hub_rolls_up_in_the_background(settings: Settings) -> None:
    from asgi_lifespan import LifespanManager

    from unity.app import create_app
    from unity.plugins.loader import PluginLoader

    settings = settings.model_copy(update={"rollup_interval_seconds": 0.2})
    app = create_app(settings, loader=PluginLoader([], group="unity.plugins.none-in-tests"))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        db: Database = app.state.db
        async with db.session() as session:
            metadata = PluginMetadata(id=PLUGIN, name="Host", version="1.0.0", metrics=METRICS)
            await registry.sync_plugin(session, metadata=metadata)
        now = datetime.now(UTC)
        await store(
            db, [("a", now - timedelta(minutes=m), {"cpu": {"percent": m}}) for m in (2, 3)]
        )
        for _ in range(100):
            if len(await tier_rows(db, RollupMinute)) == 2:
                break
            await asyncio.sleep(0.1)
        assert sorted(v[2] for v in (await tier_rows(db, RollupMinute)).values()) == [2.0, 3.0]


async def test_a_row_still_uncommitted_during_a_pass_is_not_lost(
    db: Database, settings: Settings
) -> None:
    """PostgreSQL draws ids before commit: a pass must not skip past an open insert."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: no insert is open while another commits")
    minute = NOW.replace(second=0) - timedelta(minutes=10)
    rollups = Rollups(db, settings)
    await rollups.roll(NOW - timedelta(minutes=30))
    async with db.sessionmaker() as slow:
        await slow.begin()
        await slow.execute(
            insert(PluginMetric),
            [
                {
                    "plugin_id": PLUGIN,
                    "host": "a",
                    "timestamp": minute,
                    "data": {"cpu": {"percent": 1}},
                }
            ],
        )
        # A later insert, committed first, draws the higher id.
        await store(db, [("a", minute + timedelta(seconds=5), {"cpu": {"percent": 2}})])
        rolling = asyncio.create_task(rollups.roll(NOW))
        await asyncio.sleep(0.5)
        assert not rolling.done()  # waiting for the open insert
        await slow.commit()
    await rolling
    await rollups.roll(NOW + timedelta(minutes=1))
    rows = await tier_rows(db, RollupMinute)
    assert rows[("cpu.percent", "a", "", epoch(minute))][0] == 2
