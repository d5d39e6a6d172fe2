"""``unity-agent run``: the runtime in the foreground, until a signal or a refusal.

The runtime (:func:`unity_agent.runtime.run_agent`) collects, buffers and
reports; this module decides when it stops. SIGTERM and SIGINT stop it
cleanly (exit 0). Two things stop it for good, with a message, because no
retry can fix them: the hub refusing the agent's key, and the hub's
certificate no longer matching the pin. The runtime sees a changed
certificate only as a hub that cannot be reached (it keeps buffering), so the
pin is checked here: before the start and every few minutes while running.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from unity_agent.errors import CommandError
from unity_agent.identity import AgentIdentity
from unity_agent.tls import check_pin
from unity_sdk import DEFAULT_DISCOVERY_SECONDS, HubAuthError

__all__ = ["CRASHED", "PIN_CHECK_SECONDS", "REFUSED_KEY", "run_until_stopped", "watch_pin"]

# EX_SOFTWARE: what a crash of `run` exits with (1 is kept for refusals).
CRASHED = 70
PIN_CHECK_SECONDS = 300.0
REFUSED_KEY = "the hub refused this agent's key (removed from the hub?)"

logger = logging.getLogger("unity_agent.supervisor")


async def watch_pin(identity: AgentIdentity, every: float) -> str:
    """Return why the pinned hub can no longer be trusted, once it cannot.

    A hub that does not answer is no reason: the agent buffers until it does."""
    while True:
        await asyncio.sleep(every)
        problem = await asyncio.to_thread(check_pin, identity)
        if problem is not None:
            return problem


async def run_until_stopped(
    identity: AgentIdentity,
    data_dir: Path,
    *,
    pin_check_seconds: float = PIN_CHECK_SECONDS,
    discovery_seconds: float = DEFAULT_DISCOVERY_SECONDS,
) -> int:
    """Run the agent until SIGTERM or SIGINT (returns 0). Raises
    :class:`CommandError` when the hub refuses the key or the certificate
    changes; the runtime is stopped first, so it flushes what it can."""
    problem = await asyncio.to_thread(check_pin, identity)
    if problem is not None:
        raise CommandError(problem)
    from unity_agent.runtime import run_agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    agent = asyncio.create_task(
        run_agent(identity, data_dir, stop=stop, discovery_seconds=discovery_seconds)
    )
    watch = (
        asyncio.create_task(watch_pin(identity, pin_check_seconds))
        if identity.pinned_certificate
        else None
    )
    try:
        await asyncio.wait([t for t in (agent, watch) if t], return_when=asyncio.FIRST_COMPLETED)
        if watch is not None and watch.done():
            logger.error("%s", watch.result())
            stop.set()
            await agent
            raise CommandError(watch.result())
        await agent
    except HubAuthError:
        raise CommandError(REFUSED_KEY) from None
    finally:
        for task in (agent, watch):
            if task is not None and not task.done():
                task.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0
