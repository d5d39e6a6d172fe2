"""The agent's durable spool: samples on disk until the hub has accepted them.

One SQLite file (``spool.sqlite3`` in the data directory, mode 0600: it also
keeps the last assignments, whose configs hold resolved credentials). Every
collected sample is committed as it arrives, so a killed agent loses nothing
it had collected. WAL with ``synchronous=NORMAL``: a commit survives the
process being killed; a power cut may lose the last moments before it.

Batches: :meth:`Spool.next_batch` stamps the oldest waiting rows of one
instance with a new batch id *before* they are sent, in one transaction. A
send whose answer was lost, or an agent killed mid-send, finds the same rows
under the same id next time, so the hub answers the repeat as a duplicate
instead of storing it twice. Rows are deleted only once the hub accepted their
batch (or refused it for good: counted as rejected).

Bounded: past ``max_samples`` rows the oldest are dropped, and counted
(``dropped`` survives restarts, like ``rejected``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from unity_sdk import MAX_BATCH_SAMPLES, Sample

__all__ = ["DEFAULT_MAX_SAMPLES", "SPOOL_FILE", "Spool"]

SPOOL_FILE = "spool.sqlite3"
# About 14 hours of the psutil four at 10 s (4 x 360 samples an hour) x 10 spare.
DEFAULT_MAX_SAMPLES = 50_000
# Well under the hub's default 8 MiB batch body limit (UNITY_MAX_BATCH_BYTES).
MAX_BATCH_BYTES = 4 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    host TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    data TEXT NOT NULL,
    size INTEGER NOT NULL,
    batch_id TEXT
);
CREATE INDEX IF NOT EXISTS samples_by_instance ON samples (instance_id, seq);
CREATE INDEX IF NOT EXISTS samples_by_batch ON samples (batch_id) WHERE batch_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Spool:
    """Samples per plugin instance, oldest first, at most ``max_samples`` in all."""

    def __init__(self, path: Path, *, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        if max_samples < 1:
            raise ValueError("the spool must hold at least one sample")
        self.path = path
        self.max_samples = max_samples
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._count = self._scalar("SELECT count(*) FROM samples")
        except BaseException:
            self._db.close()
            raise
        # Per instance: the most samples a batch may hold (halved after a 413).
        self._batch_limits: dict[str, int] = {}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self._count

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _scalar(self, sql: str, *args: Any) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- counters ----------------------------------------------------------------------

    def _counter(self, name: str) -> int:
        return self._scalar("SELECT value FROM counters WHERE name = ?", name)

    @staticmethod
    def _add(db: sqlite3.Connection, name: str, amount: int) -> None:
        if amount:
            db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (name, amount),
            )

    @property
    def dropped(self) -> int:
        """Samples lost to a full spool, oldest first (over the spool's life)."""
        return self._counter("dropped")

    @property
    def rejected(self) -> int:
        """Samples the hub refused for good and that were discarded."""
        return self._counter("rejected")

    # -- samples -----------------------------------------------------------------------

    def append(self, instance_id: str, host: str, timestamp: datetime, data_json: str) -> None:
        """Keep one collected sample (``data_json``: its document, already JSON)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO samples (instance_id, host, timestamp, data, size) "
                "VALUES (?, ?, ?, ?, ?)",
                (instance_id, host, timestamp.isoformat(), data_json, len(data_json)),
            )
            self._count += 1
            excess = self._count - self.max_samples
            if excess > 0:
                db.execute(
                    "DELETE FROM samples WHERE seq IN "
                    "(SELECT seq FROM samples ORDER BY seq LIMIT ?)",
                    (excess,),
                )
                self._add(db, "dropped", excess)
                self._count -= excess

    def pending(self, instance_id: str | None = None) -> int:
        """Samples waiting to be sent (of one instance, or all)."""
        if instance_id is None:
            return self._count
        return self._scalar("SELECT count(*) FROM samples WHERE instance_id = ?", instance_id)

    def instances(self) -> list[str]:
        """Instances with samples waiting, the one with the oldest sample first."""
        rows = self._db.execute(
            "SELECT instance_id FROM samples GROUP BY instance_id ORDER BY min(seq)"
        )
        return [row[0] for row in rows]

    def next_batch(self, instance_id: str) -> tuple[str, list[Sample]] | None:
        """The batch of ``instance_id`` to send now, oldest samples first, or None.

        A batch already stamped (sent before, answer unknown) comes back whole
        with its id; otherwise the oldest waiting rows get a new id here, on disk,
        before anything is sent.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT batch_id FROM samples WHERE instance_id = ? AND batch_id IS NOT NULL "
                "ORDER BY seq LIMIT 1",
                (instance_id,),
            ).fetchone()
            if row is not None:
                batch_id = str(row[0])
            else:
                seqs = self._choose(db, instance_id)
                if not seqs:
                    return None
                batch_id = uuid.uuid4().hex
                db.executemany(
                    "UPDATE samples SET batch_id = ? WHERE seq = ?", [(batch_id, s) for s in seqs]
                )
            rows = db.execute(
                "SELECT host, timestamp, data FROM samples WHERE batch_id = ? ORDER BY seq",
                (batch_id,),
            ).fetchall()
        # Validated when collected: rebuilt without validating again.
        samples = [
            Sample.model_construct(
                host=host, timestamp=datetime.fromisoformat(stamp), data=json.loads(data)
            )
            for host, stamp, data in rows
        ]
        return batch_id, samples

    def _choose(self, db: sqlite3.Connection, instance_id: str) -> list[int]:
        limit = self._batch_limits.get(instance_id, MAX_BATCH_SAMPLES)
        chosen: list[int] = []
        total = 0
        rows = db.execute(
            "SELECT seq, size FROM samples WHERE instance_id = ? ORDER BY seq LIMIT ?",
            (instance_id, limit),
        )
        for seq, size in rows:
            if chosen and total + size > MAX_BATCH_BYTES:
                break
            chosen.append(int(seq))
            total += int(size)
        return chosen

    def accepted(self, batch_id: str) -> int:
        """The hub stored the batch (or had already): its rows go. Returns how many."""
        return self._remove(batch_id, counter=None)

    def rejected_batch(self, batch_id: str) -> int:
        """The hub refused the batch for good (422...): discarded and counted."""
        return self._remove(batch_id, counter="rejected")

    def too_large(self, batch_id: str, instance_id: str) -> bool:
        """The hub said 413: the batch goes back unstamped, to be sent in halves.
        False when it was a single sample (then it can only be rejected)."""
        with self._transaction() as db:
            size = self._scalar("SELECT count(*) FROM samples WHERE batch_id = ?", batch_id)
            if size <= 1:
                return False
            db.execute("UPDATE samples SET batch_id = NULL WHERE batch_id = ?", (batch_id,))
        self._batch_limits[instance_id] = max(1, size // 2)
        return True

    def _remove(self, batch_id: str, *, counter: str | None) -> int:
        with self._transaction() as db:
            removed = db.execute("DELETE FROM samples WHERE batch_id = ?", (batch_id,)).rowcount
            if counter is not None:
                self._add(db, counter, removed)
        self._count -= removed
        return removed

    # -- the last assignments ----------------------------------------------------------

    def save_state(self, name: str, value: Any) -> None:
        """Keep a JSON value (the last assignments, so a restart while the hub is
        down still runs what it ran)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO state (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, json.dumps(value)),
            )

    def load_state(self, name: str) -> Any:
        row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])
