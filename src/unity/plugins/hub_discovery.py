"""Discovery on the hub's own machine: what runs here, as proposals on the hub's host.

An agent scans its host and reports the proposals (``PUT /api/agents/v1/proposals``);
the hub does the same for the machine it runs on, without the network: at
start and then every ``UNITY_DISCOVERY_SECONDS`` (0: never) it runs
:func:`unity_catalogue.discovery.discover` over the plugin classes it loaded
(built-ins and entry-point plugins: a third-party plugin's ``discover`` takes
part as a built-in's does) and stores the scan with
:func:`unity.plugins.agents.record_proposals` for its own host
(``UNITY_HOST_ID``): new proposals open, dismissed ones stay dismissed, open
ones no longer seen are gone. Accepting one enables the hub's plugin
(:mod:`unity.plugins.proposals`).

Hubs sharing one PostgreSQL each scan their own machine (each has its own host
id), so no lease is needed. Two hubs given the same host id write the same rows:
``record_proposals`` locks the host row first, so their scans take turns.

The scan reads ``/proc`` and ``/sys`` synchronously and calls plugin code, so
it runs on a daemon thread of its own: a ``discover`` that never returns holds
neither the event loop nor the hub's exit, and no second scan starts while it
runs. Failures are logged once until a scan succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from unity.plugins.agents import record_proposals
from unity.plugins.hosts import HUB
from unity.plugins.manager import PluginManager
from unity.settings import Settings
from unity.storage.db import is_unavailable
from unity.storage.models import Host
from unity.storage.types import utcnow
from unity_sdk import MAX_PROPOSALS, PluginBase, Proposal

__all__ = ["SCAN_TIMEOUT", "HubDiscovery"]

log = logging.getLogger(__name__)

# How long one scan may take before the pass gives up waiting (the scan goes on;
# its result is stored by the next pass).
SCAN_TIMEOUT = 60.0


def _scan(classes: Sequence[type[PluginBase[Any]]]) -> list[Proposal]:
    # Imported on the scan's thread: a hub that never scans does not load it.
    from unity_catalogue.discovery import discover

    return discover(classes)


def _in_daemon_thread(work: Callable[[], list[Proposal]]) -> Future[list[Proposal]]:
    future: Future[list[Proposal]] = Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, name="unity-discovery", daemon=True).start()
    return future


class HubDiscovery:
    """Scans the hub's machine now and every ``discovery_seconds``."""

    def __init__(self, manager: PluginManager, settings: Settings) -> None:
        self.manager = manager
        self.settings = settings
        self.scans = 0  # scans stored
        self.last_open: int | None = None
        self._scan: Future[list[Proposal]] | None = None
        self._failing = False
        self._not_ours = False
        self._last_keys: list[str] | None = None

    def classes(self) -> list[type[PluginBase[Any]]]:
        """The plugin classes the hub has loaded now (a reload's new class included)."""
        return [managed.loaded.cls for managed in self.manager.plugins.values()]

    async def scan_once(self, timeout: float = SCAN_TIMEOUT) -> int | None:
        """Scan and store; the open proposals of the hub's host after it, or None
        when nothing was stored (the scan is still running, or the hub's host id
        belongs to an agent). Scan and database errors propagate."""
        if self._scan is None or self._scan.done():
            classes = self.classes()
            self._scan = _in_daemon_thread(lambda: _scan(classes))
        try:
            proposals = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(self._scan)), timeout
            )
        except TimeoutError:
            log.warning(
                "discovery on this machine is still running after %gs (a plugin's "
                "discover blocks?); its result is stored when it finishes",
                timeout,
            )
            return None
        if len(proposals) > MAX_PROPOSALS:
            log.warning("discovery found %d things; %d are kept", len(proposals), MAX_PROPOSALS)
            proposals = proposals[:MAX_PROPOSALS]
        host_id = self.settings.host_id
        async with self.manager.db.writer() as session:
            host = await session.get(Host, host_id, with_for_update=True)
            if host is None or host.kind != HUB:
                if not self._not_ours:
                    log.warning(
                        "the hub's proposals are not stored: host %r is an agent's, not "
                        "this hub's (give the hub another UNITY_HOST_ID)",
                        host_id,
                    )
                self._not_ours = True
                return None
            count = await record_proposals(session, host_id, proposals, utcnow())
        self._not_ours = False
        self.scans += 1
        self.last_open = count
        keys = [p.key for p in proposals]
        log.log(
            logging.INFO if keys != self._last_keys else logging.DEBUG,
            "discovery on this machine: %d proposal(s) (%s); %d open",
            len(keys),
            ", ".join(keys) or "nothing found",
            count,
        )
        self._last_keys = keys
        return count

    async def run(self) -> None:
        """Scan after scan until cancelled; never raises (a failure waits for the next)."""
        every = self.settings.discovery_seconds
        while True:
            try:
                await self.scan_once()
            except Exception as exc:
                # An unreachable database is logged by the database's own outage watch.
                if not self._failing and not is_unavailable(exc):
                    log.exception("discovery on this machine failed; tried again in %gs", every)
                self._failing = True
            else:
                if self._failing:
                    log.info("discovery on this machine works again")
                self._failing = False
            await asyncio.sleep(every)
