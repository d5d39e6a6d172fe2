"""The sender: the spool to the hub, batch by batch, oldest first; health when it changes.

Each instance's samples go through the external-plugin batch path
(``POST /api/plugins/v2/{instance_id}/metrics``) with the batch id the spool
stamped on them, so a batch resent after a lost answer, or after the agent was
killed mid-send, is stored once. Rows leave the spool only once the hub has
accepted them. A batch the hub refuses for good (422; 403 or 404: not, or no
longer, this agent's instance) is discarded and counted as rejected; a 413
sends it again in halves. While the hub is unreachable nothing is lost: the
sender waits, longer each time (up to a minute), and replays in order when it
returns. A 401 (the key is refused) ends the sender, and with it the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pydantic import ValidationError

from unity_agent.spool import Spool
from unity_sdk import (
    HealthReport,
    HealthState,
    HealthStatus,
    HubAuthError,
    HubClient,
    HubRequestError,
    HubUnavailableError,
)

__all__ = ["Sender"]

log = logging.getLogger("unity_agent")

RETRY_FIRST = 1.0
RETRY_MAX = 60.0
# Without new samples the sender still looks this often (a health report left over).
IDLE_CHECK = 30.0


class Sender:
    """Sends what the spool holds and the health reports waiting."""

    def __init__(self, hub: HubClient, spool: Spool) -> None:
        self.hub = hub
        self.spool = spool
        self.sent = 0
        self._wake = asyncio.Event()
        # Per instance: the health to report, and (state, message) last reported.
        self._health: dict[str, HealthStatus] = {}
        self._reported: dict[str, tuple[HealthState, str]] = {}

    def wake(self) -> None:
        """Something new to send."""
        self._wake.set()

    def health_changed(self, instance_id: str, status: HealthStatus) -> None:
        """Queue ``status`` when its state or message differs from the last one reported."""
        if self._reported.get(instance_id) != (status.status, status.message):
            self._health[instance_id] = status
            self._wake.set()
        else:
            self._health.pop(instance_id, None)

    async def run(
        self, stop: asyncio.Event, *, on_outage: Callable[[HubUnavailableError], None]
    ) -> None:
        """Send until ``stop``; backs off while the hub is unreachable."""
        retry = RETRY_FIRST
        while not stop.is_set():
            try:
                await self.flush()
            except HubUnavailableError as exc:
                on_outage(exc)
                await _sleep(stop, retry)
                retry = min(retry * 2, RETRY_MAX)
                continue
            retry = RETRY_FIRST
            waker = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    {waker, stopper}, timeout=IDLE_CHECK, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waker.cancel()
                stopper.cancel()
            self._wake.clear()

    async def flush(self) -> None:
        """Send every waiting batch, then the waiting health reports.

        ``HubUnavailableError`` stops the flush (everything stays for the next);
        ``HubAuthError`` for the key itself (401) propagates."""
        self._wake.clear()
        for instance_id in self.spool.instances():
            while (batch := self.spool.next_batch(instance_id)) is not None:
                batch_id, samples = batch
                try:
                    await self.hub.report_metrics(instance_id, samples, batch_id=batch_id)
                except (HubRequestError, HubAuthError) as exc:
                    if not self._refused(instance_id, batch_id, exc):
                        break
                    continue
                self.sent += self.spool.accepted(batch_id)
        for instance_id, status in list(self._health.items()):
            await self._report_health(instance_id, status)

    def _refused(
        self, instance_id: str, batch_id: str, exc: HubRequestError | HubAuthError
    ) -> bool:
        """Handle a refused batch; False when the instance's other batches wait."""
        if isinstance(exc, HubAuthError) and exc.status != 403:
            raise exc
        if exc.status == 413 and self.spool.too_large(batch_id, instance_id):
            log.warning("%s: batch too large for the hub; sending it in halves", instance_id)
            return True
        discarded = self.spool.rejected_batch(batch_id)
        log.error("the hub refused %d sample(s) of %s: %s", discarded, instance_id, exc)
        return True

    async def _report_health(self, instance_id: str, status: HealthStatus) -> None:
        buffered = self.spool.pending(instance_id)
        try:
            report = HealthReport(
                status=status.status,
                message=status.message[:2000],
                details=status.details,
                buffered=buffered,
            )
        except ValidationError:  # details too large or not storable: the state alone
            report = HealthReport(
                status=status.status, message=status.message[:2000], buffered=buffered
            )
        try:
            await self.hub.update_health(instance_id, report)
        except HubRequestError as exc:
            log.warning("the hub refused the health of %s: %s", instance_id, exc)
        except HubAuthError as exc:
            if exc.status != 403:
                raise
            log.warning("the hub refused the health of %s: %s", instance_id, exc)
        if self._health.get(instance_id) is status:
            del self._health[instance_id]
        self._reported[instance_id] = (status.status, status.message)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
