"""Leases of the plugins' scheduled runs: each run happens on exactly one hub.

Several ``unity serve`` processes may share one PostgreSQL database. Each
keeps its own timers; when a plugin's timer fires, the hub claims the lease
``plugin:<id>`` (one statement, see :mod:`unity.storage.leases`) and runs
the plugin only if it won. The winner keeps the plugin: every run renews its
lease for the delay until its next run plus some slack, so the other hubs'
timers find it held. A hub that stops renewing (it was killed, or the plugin
is stuck) loses the lease when it expires, and the next timer of another
hub to fire takes the plugin over, at most one interval after the run that
was missed. A hub that stops cleanly, or disables a plugin, releases at once.

Why row leases rather than advisory locks: a session advisory lock lives on
one pooled connection (a pool hands connections round, a pooler in
transaction mode breaks them), and it cannot say how long it holds; a row
with an expiry is visible (``SELECT * FROM hub_leases`` shows which hub runs
what), timed by the database's clock, and costs one statement per run.

On SQLite there is one hub: every claim is granted at once, without a query.
"""

from __future__ import annotations

from unity.settings import Settings
from unity.storage import leases as store
from unity.storage.db import Database

__all__ = ["LEASE_SLACK_SECONDS", "Leases"]

# Added to a lease beyond the jittered delay: event-loop lateness and database latency.
LEASE_SLACK_SECONDS = 2.0


def run_lease(plugin_id: str) -> str:
    return f"plugin:{plugin_id}"


class Leases(store.HubLeases):
    """This hub's claims: the plugins' scheduled runs, and any other shared work."""

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self._held: set[str] = set()

    def holds(self, plugin_id: str) -> bool:
        """Whether this hub ran the plugin's last scheduled run (always, on SQLite)."""
        return not self.shared or plugin_id in self._held

    def _run_seconds(self, delay: float) -> float:
        return delay * (1 + self.settings.scheduler_jitter) + LEASE_SLACK_SECONDS

    async def claim_run(self, plugin_id: str, delay: float) -> bool:
        """Whether this hub takes the scheduled run now due; ``delay`` is the time to
        the plugin's next one, which the lease covers."""
        if not self.shared:
            return True
        won = await self.claim(run_lease(plugin_id), self._run_seconds(delay))
        if won:
            self._held.add(plugin_id)
        else:
            self._held.discard(plugin_id)
        return won

    async def renew_run(self, plugin_id: str, delay: float) -> None:
        """Keep the plugin while a long run of this hub overruns its interval."""
        if plugin_id not in self._held:
            return
        async with self.db.session() as session:
            kept = await store.renew(
                session,
                name=run_lease(plugin_id),
                holder=self.hub_id,
                seconds=self._run_seconds(delay),
            )
        if not kept:
            self._held.discard(plugin_id)

    async def release_run(self, plugin_id: str) -> None:
        """Give the plugin up (disabled here): another hub may take it at once."""
        if plugin_id not in self._held:
            return
        self._held.discard(plugin_id)
        async with self.db.session() as session:
            await store.release(session, holder=self.hub_id, names=[run_lease(plugin_id)])

    async def release_all(self) -> None:
        self._held.clear()
        await super().release_all()
