"""The agent's run loop: what the hub assigns runs here, and what it collects gets there.

:func:`run_agent` keeps three things going on one event loop until ``stop``:

- **the poll** (:meth:`unity_agent.agent.Agent.poll_once`, every ``poll_seconds`` and at
  start): ``GET /assignments``; each assigned catalogue plugin gets an
  :class:`~unity_agent.scheduler.Instance` with its config checked by the SDK
  rulebook (:func:`unity_sdk.validate_config`); a changed assignment replaces
  its instance (``on_disable`` of the old, ``on_enable`` of the new). What
  cannot run (unknown plugin, bad config, missing extra, failing
  ``on_enable``) is reported in ``AgentStatus.problems`` and tried again at
  the next poll; the others keep running. Then ``POST /status``.
- **the instances**, each on its own timer and thread (:mod:`unity_agent.scheduler`),
  spooling every document (:mod:`unity_agent.spool`).
- **the sender** (:mod:`unity_agent.sender`): the spool to the hub in batches,
  and each instance's health when it changes.
- **discovery** (:mod:`unity_agent.discovery`, at start and every
  ``discovery_seconds``; 0: never): what runs on this host, as proposals.

The last assignments are kept in the spool, so an agent restarted while its
hub is down runs what it ran before. A refused key (``HubAuthError``: revoked)
stops the agent: :func:`run_agent` raises it after a clean stop.

``python -m unity_agent.runtime --data-dir DIR`` runs it until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unity_agent import __version__
from unity_agent.agent import Agent
from unity_agent.discovery import Scan
from unity_agent.identity import (
    AgentIdentity,
    IdentityError,
    default_data_dir,
    load_identity,
    ssl_context,
)
from unity_agent.scheduler import Timing
from unity_agent.spool import DEFAULT_MAX_SAMPLES, SPOOL_FILE, Spool
from unity_catalogue.platform import host_platform
from unity_sdk import DEFAULT_DISCOVERY_SECONDS, HubAuthError, HubClient, PluginBase

if TYPE_CHECKING:
    import httpx

__all__ = ["main", "run_agent", "serve"]

log = logging.getLogger("unity_agent")


async def run_agent(
    identity: AgentIdentity,
    data_dir: Path,
    *,
    stop: asyncio.Event,
    plugins: Sequence[type[PluginBase[Any]]] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    spool_samples: int = DEFAULT_MAX_SAMPLES,
    timing: Timing | None = None,
    discovery_seconds: float = DEFAULT_DISCOVERY_SECONDS,
    scan: Scan | None = None,
) -> None:
    """Run the agent until ``stop`` is set; ``HubAuthError`` when the hub refuses its key.

    ``plugins`` defaults to the catalogue (``unity_catalogue.BUILTIN_PLUGINS``);
    ``transport`` replaces the network in tests (``httpx.MockTransport``).
    Discovery scans at start and every ``discovery_seconds`` (0: never); ``scan``
    replaces the catalogue's scan of ``plugins``
    (:func:`unity_agent.discovery.catalogue_scan`).
    """
    if plugins is None:
        from unity_catalogue import BUILTIN_PLUGINS

        plugins = BUILTIN_PLUGINS
    # Plain http never uses a TLS context: none is made (loading the system's CAs
    # would cost the agent a megabyte of memory for nothing).
    secure = identity.hub_url.lower().startswith("https:")
    hub = HubClient(
        identity.hub_url,
        identity.api_key,
        verify=ssl_context(identity) if secure else False,
        transport=transport,
        # The agent's loops retry (the poll, the sender's backoff) and log an outage
        # once: one request never waits, nor logs, on its own.
        max_retries=0,
    )
    spool = Spool(data_dir / SPOOL_FILE, max_samples=spool_samples)
    try:
        agent = Agent(
            hub,
            spool,
            plugins,
            platform=host_platform(identity.hostname, agent_version=__version__),
            timing=timing,
            discovery_seconds=discovery_seconds,
            scan=scan,
        )
        log.info(
            "agent %s reporting to %s; %d sample(s) spooled from before",
            identity.host_id,
            identity.hub_url,
            len(spool),
        )
        agent.restore()
        await agent.apply(list(agent.assigned.values()))
        await _serve_until(agent, stop)
    finally:
        await hub.aclose()
        spool.close()


async def _serve_until(agent: Agent, stop: asyncio.Event) -> None:
    loops = [
        asyncio.create_task(agent.poll_loop(stop), name="agent:poll"),
        asyncio.create_task(agent.sender.run(stop, on_outage=agent.outage), name="agent:send"),
    ]
    if agent.discovery.every > 0:
        loops.append(asyncio.create_task(agent.discovery.run(stop), name="agent:discovery"))
    stopping = asyncio.create_task(stop.wait(), name="agent:stop")
    tasks: list[asyncio.Task[Any]] = [*loops, stopping]
    fatal: BaseException | None = None
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in loops:
            if task.done() and not task.cancelled() and task.exception() is not None:
                fatal = task.exception()
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await agent.close(send=not isinstance(fatal, HubAuthError))
    if isinstance(fatal, HubAuthError):
        log.error(
            "the hub refused this agent's key (revoked, or the host was removed): %s. "
            "The agent stops; to report again, join anew: unity-agent join URL TOKEN",
            fatal,
        )
        raise fatal
    if fatal is not None:
        raise fatal


def serve(
    data_dir: Path,
    *,
    spool_samples: int = DEFAULT_MAX_SAMPLES,
    discovery_seconds: float = DEFAULT_DISCOVERY_SECONDS,
) -> int:
    """Run the agent of ``data_dir`` until SIGTERM or SIGINT; the exit status
    (0: stopped cleanly, 1: no identity or the hub refused the key)."""
    try:
        identity = load_identity(data_dir)
    except IdentityError as exc:
        print(f"unity-agent: {exc}", file=sys.stderr)
        return 1

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(
            identity,
            data_dir,
            stop=stop,
            spool_samples=spool_samples,
            discovery_seconds=discovery_seconds,
        )

    try:
        asyncio.run(main())
    except HubAuthError as exc:
        print(f"unity-agent: the hub refused this agent's key: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m unity_agent.runtime",
        description="Run the Unity agent of a data directory (joined before) until stopped.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where agent.json and the spool are (default: $UNITY_AGENT_DIR, "
        "/var/lib/unity-agent as root, else ~/.local/state/unity-agent)",
    )
    parser.add_argument(
        "--spool-samples",
        type=int,
        default=DEFAULT_MAX_SAMPLES,
        help="samples kept while the hub is unreachable (oldest dropped first)",
    )
    parser.add_argument(
        "--discovery-seconds",
        type=float,
        default=DEFAULT_DISCOVERY_SECONDS,
        help="how often to look for services to propose (default: %(default)g; 0: never)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every run")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO: one line per batch is noise here.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return serve(
        args.data_dir or default_data_dir(),
        spool_samples=args.spool_samples,
        discovery_seconds=args.discovery_seconds,
    )


if __name__ == "__main__":
    sys.exit(main())
