"""Discovery on the agent's host: what runs here, told to the hub as proposals.

At start and then every ``discovery_seconds`` the agent scans its host
(:func:`unity_catalogue.discovery.discover`, asking only the plugins this
agent can run) and sends the whole scan with ``PUT /api/agents/v1/proposals``.
The hub opens new proposals, keeps dismissed ones dismissed and closes those
no longer seen, so every report carries everything, even when nothing changed.

The scan reads ``/proc`` and ``/sys`` synchronously, so it runs on a thread:
the instances' timers and the sender never wait for it. Nothing here stops
the agent but a refused key (the poll would stop it too): a scan that raises
is logged and tried again at the next one; a report the hub could not take
(unreachable) is kept and sent again as soon as the hub answers, sooner than
the next scan. Each kind of trouble is logged once until it clears.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from unity_sdk import (
    MAX_PROPOSALS,
    HubAuthError,
    HubClient,
    HubRequestError,
    HubUnavailableError,
    PluginBase,
    Proposal,
    ProposalReport,
)

__all__ = ["Discovery", "Scan", "catalogue_scan"]

log = logging.getLogger("unity_agent")

# While a report waits for an unreachable hub: first retry, then doubling up to this.
RETRY_FIRST = 1.0
RETRY_MAX = 60.0

Scan = Callable[[], Sequence[Proposal]]


def catalogue_scan(plugins: Sequence[type[PluginBase[Any]]]) -> Scan:
    """A scan of this host asking ``plugins`` (the catalogue's discovery)."""
    classes = list(plugins)

    def scan() -> Sequence[Proposal]:
        # Imported at the first scan: an agent told never to scan does not load it.
        from unity_catalogue.discovery import discover

        return discover(classes)

    return scan


class Discovery:
    """Scans now and then, and keeps the last scan until the hub has it."""

    def __init__(self, hub: HubClient, scan: Scan, *, every: float) -> None:
        self.hub = hub
        self.every = every
        self._scan = scan
        # The last scan, until the hub accepted it (None: nothing waiting).
        self.pending: ProposalReport | None = None
        self._hub_back = asyncio.Event()
        self._scan_failing = False
        self._send_failing = False
        self._last_keys: list[str] | None = None

    def hub_back(self) -> None:
        """The hub answers again (the poll saw it): send what waits now."""
        if self.pending is not None:
            self._hub_back.set()

    async def scan(self) -> bool:
        """Scan the host (on a thread) into :attr:`pending`; False when the scan raised."""
        try:
            proposals = list(await asyncio.to_thread(self._scan))
            if len(proposals) > MAX_PROPOSALS:
                log.warning(
                    "discovery found %d things; the hub takes %d per report, the rest are left out",
                    len(proposals),
                    MAX_PROPOSALS,
                )
                proposals = proposals[:MAX_PROPOSALS]
            report = ProposalReport(proposals=proposals)
        except Exception as exc:
            if not self._scan_failing:
                log.warning(
                    "discovery scan failed (tried again in %gs): %s",
                    self.every,
                    exc,
                    exc_info=True,
                )
            self._scan_failing = True
            return False
        if self._scan_failing:
            log.info("discovery scan works again")
        self._scan_failing = False
        self.pending = report
        return True

    async def send(self) -> bool:
        """Send the pending report; False when it waits for an unreachable hub.

        A report the hub refuses (4xx) is dropped: the same one would be refused
        again; the next scan makes a new one. A refused key (401) propagates."""
        report = self.pending
        if report is None:
            return True
        try:
            answer = await self.hub.report_proposals(report)
        except HubUnavailableError as exc:
            if not self._send_failing:
                log.warning("proposals not sent, the hub is unreachable (sent when it is): %s", exc)
            self._send_failing = True
            return False
        except (HubRequestError, HubAuthError) as exc:
            if isinstance(exc, HubAuthError) and exc.status != 403:
                raise
            log.error("the hub refused this host's proposals: %s", exc)
            self._done(report)
            return True
        self._done(report)
        keys = [p.key for p in report.proposals]
        changed = keys != self._last_keys
        self._last_keys = keys
        log.log(
            logging.INFO if changed else logging.DEBUG,
            "discovery: %d proposal(s) reported (%s); %d open on the hub",
            len(keys),
            ", ".join(keys) or "nothing found",
            answer.open,
        )
        return True

    def _done(self, report: ProposalReport) -> None:
        if self.pending is report:
            self.pending = None
        if self._send_failing:
            log.info("proposals reach the hub again")
        self._send_failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Scan now and every :attr:`every` seconds until ``stop``; a report the hub
        could not take is sent again (backing off) until it does."""
        loop = asyncio.get_running_loop()
        next_scan = loop.time()
        retry = RETRY_FIRST
        while not stop.is_set():
            if loop.time() >= next_scan:
                await self.scan()
                next_scan = loop.time() + self.every
            self._hub_back.clear()
            if await self.send():
                retry = RETRY_FIRST
                pause = next_scan - loop.time()
            else:
                pause = min(retry, next_scan - loop.time())
                retry = min(retry * 2, RETRY_MAX)
            await _wait_for_either(stop, self._hub_back, pause)


async def _wait_for_either(stop: asyncio.Event, other: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, waking early when either event is set."""
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(other.wait())}
    try:
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
