"""One process of simulated agents for ``benchmarks/agents_hub.py``.

``python -m benchmarks.agents_worker RESULT DATA_DIR...`` runs the real agent
(:func:`unity_agent.runtime.run_agent`) of every data directory (each joined
before: its own ``agent.json``, host id, hostname and spool) concurrently on
this process's one event loop, until SIGTERM. What the agents still hold
when they have stopped is then sent by their own sender, as their next start
would send it (:func:`_drain`), and ``RESULT`` (JSON) is written: samples
collected per instance, left in the spools at the stop and after the drain.

The only addition to the agent is a count: the spool the agent opens is a
subclass of the real one that counts every sample committed to it per
instance, so the benchmark can compare what the agents collected with what
the hub stored. Everything else (timers, worker threads, the sender, polls,
the final flush on stop) is ``unity_agent`` as it runs on a host.

Kept free of the hub's imports (``unity``, SQLAlchemy, FastAPI): these
processes are agents, and their memory and CPU are reported as such.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from unity_agent import runtime
from unity_agent.identity import load_identity
from unity_agent.sender import Sender
from unity_agent.spool import SPOOL_FILE, Spool
from unity_sdk import HubClient, HubUnavailableError

# How long the samples left at the stop may take to reach the hub.
DRAIN_SECONDS = 120.0

collected: Counter[str] = Counter()


class CountingSpool(Spool):
    """The agent's spool, counting each sample committed to it."""

    def append(self, instance_id: str, host: str, timestamp: datetime, data_json: str) -> None:
        super().append(instance_id, host, timestamp, data_json)
        collected[instance_id] += 1


async def _agents(dirs: list[Path]) -> tuple[list[str], float]:
    """Run every agent until SIGTERM: (failures, seconds run)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    identities = [load_identity(d) for d in dirs]
    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(
            runtime.run_agent(identity, folder, stop=stop)
            for identity, folder in zip(identities, dirs, strict=True)
        ),
        return_exceptions=True,
    )
    seconds = time.monotonic() - started
    failures = [
        f"{folder.name}: {type(outcome).__name__}: {outcome}"
        for folder, outcome in zip(dirs, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    ]
    return failures, seconds


def _left(dirs: list[Path]) -> dict[str, int]:
    """Samples waiting in each agent's spool."""
    left = {}
    for folder in dirs:
        with Spool(folder / SPOOL_FILE) as spool:
            left[folder.name] = len(spool)
    return left


async def _drain(dirs: list[Path]) -> None:
    """Send what the agents still held when they stopped, as their next start
    would: the agent's own sender over its spool (a batch stamped before the stop
    goes again under its id, and the hub answers a stored one as a duplicate).
    An agent gives its last send STOP_GRACE; a busy hub may need longer."""

    async def one(folder: Path) -> None:
        identity = load_identity(folder)
        async with HubClient(identity.hub_url, identity.api_key, max_retries=0) as hub:
            with Spool(folder / SPOOL_FILE) as spool:
                deadline = time.monotonic() + DRAIN_SECONDS
                while len(spool) and time.monotonic() < deadline:
                    try:
                        await Sender(hub, spool).flush()
                    except HubUnavailableError:
                        await asyncio.sleep(1.0)

    await asyncio.gather(*(one(folder) for folder in dirs))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    result, dirs = Path(argv[0]), [Path(a) for a in argv[1:]]
    # run_agent opens its spool by this name: the counting one, otherwise the same.
    runtime.Spool = CountingSpool  # type: ignore[attr-defined]
    failures, seconds = asyncio.run(_agents(dirs))
    at_stop = _left(dirs)
    clock = time.monotonic()
    asyncio.run(_drain([d for d in dirs if at_stop[d.name]]))
    drained = time.monotonic() - clock
    left = _left(dirs)
    dropped = rejected = 0
    for folder in dirs:
        with Spool(folder / SPOOL_FILE) as spool:
            dropped += spool.dropped
            rejected += spool.rejected
    result.write_text(
        json.dumps(
            {
                "agents": len(dirs),
                "seconds": seconds,
                "collected": dict(collected),
                "left_at_stop": at_stop,
                "drain_seconds": drained,
                "left": left,
                "dropped": dropped,
                "rejected": rejected,
                "failures": failures,
            }
        )
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
