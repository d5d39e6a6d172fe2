"""An external plugin feeding a real hub over the batch API, as fast as it can.

The crash and outage tests use it to learn which samples the hub acknowledged
(answered 200) and which answers it gave meanwhile.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

__all__ = ["METADATA", "Ingest", "register", "stored_sequence_numbers"]

METADATA = {
    "id": "feeder",
    "name": "Feeder",
    "version": "1.0.0",
    "category": "custom",
    "metrics": [{"name": "seq"}],
    "default_interval": 10,
}
PER_BATCH = 5


def register(hub_url: str, admin: httpx.Client) -> str:
    """Enroll and register the feeder; its API key."""
    enrollment = admin.post("/api/enrollment-tokens", json={}).json()["token"]
    response = httpx.post(
        f"{hub_url}/api/plugins/v2/register",
        json={"metadata": METADATA, "hostname": "feeder-host"},
        headers={"Authorization": f"Bearer {enrollment}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


@dataclass
class Answer:
    status: int | None  # None: the connection failed
    at: float
    retry_after: str | None = None
    code: str | None = None


@dataclass
class Ingest:
    """Sends batches in a thread; each refused batch is retried with the same id."""

    hub_url: str
    api_key: str
    acknowledged: set[int] = field(default_factory=set)
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    def has_acknowledged(self, count: int) -> bool:
        return len(self.acknowledged) >= count

    def answered_since(self, moment: float, status: int) -> bool:
        return any(a.status == status and a.at >= moment for a in list(self.answers))

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.hub_url, headers=headers, timeout=15) as client:
            for number in itertools.count():
                seqs = list(range(number * PER_BATCH, (number + 1) * PER_BATCH))
                body = _batch(f"batch-{number:08d}", seqs)
                while not self._stop.is_set():
                    if self._send(client, body):
                        self.acknowledged.update(seqs)
                        break
                    time.sleep(0.05)
                if self._stop.is_set():
                    return

    def _send(self, client: httpx.Client, body: dict[str, Any]) -> bool:
        try:
            response = client.post("/api/plugins/v2/feeder/metrics", json=body)
        except httpx.TransportError:
            self.answers.append(Answer(None, time.monotonic()))
            return False
        code = None
        if response.status_code != 200 and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            code = response.json().get("error", {}).get("code")
        self.answers.append(
            Answer(
                response.status_code,
                time.monotonic(),
                response.headers.get("retry-after"),
                code,
            )
        )
        return response.status_code == 200


def _batch(batch_id: str, seqs: list[int]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    samples = [{"host": "feeder-host", "timestamp": now, "data": {"seq": s}} for s in seqs]
    return {"batch_id": batch_id, "samples": samples}


def stored_sequence_numbers(admin: httpx.Client) -> list[int]:
    """Every ``seq`` the hub holds for the feeder, duplicates included."""
    seqs: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = admin.get("/api/plugins/v2/feeder/metrics", params=params).json()
        seqs += [item["data"]["seq"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return seqs
