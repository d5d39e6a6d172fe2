"""The durable spool: bounded, ordered, idempotent batches, and it survives a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from unity_agent.spool import SPOOL_FILE, Spool
from unity_sdk import MAX_BATCH_SAMPLES

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def put(spool: Spool, instance: str, *values: int) -> None:
    for value in values:
        stamp = T0 + timedelta(seconds=value)
        spool.append(instance, "box", stamp, json.dumps({"value": value}))


def values(batch: tuple[str, list[object]] | None) -> list[int]:
    assert batch is not None
    return [sample.data["value"] for sample in batch[1]]  # type: ignore[attr-defined]


def test_batches_come_per_instance_oldest_first(tmp_path: Path) -> None:
    with Spool(tmp_path / SPOOL_FILE) as spool:
        put(spool, "a@box", 1, 2)
        put(spool, "b@box", 10)
        put(spool, "a@box", 3)
        assert spool.instances() == ["a@box", "b@box"]
        assert len(spool) == 4
        batch = spool.next_batch("a@box")
        assert values(batch) == [1, 2, 3]
        assert batch is not None
        sample = batch[1][0]
        assert (sample.host, sample.timestamp) == ("box", T0 + timedelta(seconds=1))
        assert spool.accepted(batch[0]) == 3
        assert spool.next_batch("a@box") is None
        assert spool.instances() == ["b@box"]
        assert spool.pending() == 1


def test_an_unanswered_batch_is_sent_again_under_the_same_id(tmp_path: Path) -> None:
    path = tmp_path / SPOOL_FILE
    with Spool(path) as spool:
        put(spool, "a@box", 1, 2)
        first = spool.next_batch("a@box")
        put(spool, "a@box", 3)  # arrives while the batch is out
        again = spool.next_batch("a@box")
    assert first is not None
    assert again is not None
    assert again[0] == first[0]
    assert values(again) == [1, 2]
    # A restart (the agent was killed mid-send) finds the same batch too.
    with Spool(path) as spool:
        after = spool.next_batch("a@box")
        assert after is not None
        assert after[0] == first[0]
        assert values(after) == [1, 2]
        spool.accepted(after[0])
        assert values(spool.next_batch("a@box")) == [3]


def test_full_drops_the_oldest_and_counts_them_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / SPOOL_FILE
    with Spool(path, max_samples=5) as spool:
        put(spool, "a@box", 1, 2, 3)
        put(spool, "b@box", 4, 5, 6)
        put(spool, "a@box", 7, 8)
        assert len(spool) == 5
        assert spool.dropped == 3
        assert values(spool.next_batch("a@box")) == [7, 8]
        assert values(spool.next_batch("b@box")) == [4, 5, 6]
    with Spool(path, max_samples=5) as spool:
        assert (len(spool), spool.dropped) == (5, 3)


def test_a_refused_batch_is_discarded_and_counted(tmp_path: Path) -> None:
    with Spool(tmp_path / SPOOL_FILE) as spool:
        put(spool, "a@box", 1, 2)
        batch = spool.next_batch("a@box")
        assert batch is not None
        assert spool.rejected_batch(batch[0]) == 2
        assert (len(spool), spool.rejected, spool.dropped) == (0, 2, 0)


def test_a_batch_too_large_goes_again_in_halves(tmp_path: Path) -> None:
    with Spool(tmp_path / SPOOL_FILE) as spool:
        put(spool, "a@box", *range(8))
        batch = spool.next_batch("a@box")
        assert batch is not None
        assert spool.too_large(batch[0], "a@box")
        halves = []
        while (half := spool.next_batch("a@box")) is not None:
            halves.append(values(half))
            spool.accepted(half[0])
        assert halves == [[0, 1, 2, 3], [4, 5, 6, 7]]
        put(spool, "a@box", 9)
        single = spool.next_batch("a@box")
        assert single is not None
        assert not spool.too_large(single[0], "a@box")


def test_batches_hold_at_most_the_wire_limit(tmp_path: Path) -> None:
    with Spool(tmp_path / SPOOL_FILE) as spool:
        put(spool, "a@box", *range(MAX_BATCH_SAMPLES + 5))
        assert len(values(spool.next_batch("a@box"))) == MAX_BATCH_SAMPLES


def test_the_spool_file_is_private_to_the_agent(tmp_path: Path) -> None:
    with Spool(tmp_path / "data" / SPOOL_FILE) as spool:
        put(spool, "a@box", 1)
        spool.save_state("assignments", {"secret": "in here"})
        assert spool.load_state("assignments") == {"secret": "in here"}
    for path in (tmp_path / "data").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


WRITER = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from unity_agent.spool import Spool

    spool = Spool(Path(sys.argv[1]))
    n = 0
    while True:
        n += 1
        spool.append("a@box", "box", datetime.now(UTC), json.dumps({"value": n}))
        print(n, flush=True)  # committed
    """
)


@pytest.mark.slow
def test_every_committed_sample_survives_a_sigkill(tmp_path: Path) -> None:
    path = tmp_path / SPOOL_FILE
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    committed = 0
    while committed < 300:
        committed = int(writer.stdout.readline())
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    with Spool(path) as spool:
        assert len(spool) >= committed
        seen = []
        while (batch := spool.next_batch("a@box")) is not None:
            seen.extend(values(batch))
            spool.accepted(batch[0])
    assert seen == list(range(1, len(seen) + 1))
    assert len(seen) >= committed
