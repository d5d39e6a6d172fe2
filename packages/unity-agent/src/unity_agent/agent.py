"""The instances this host runs, kept to what the hub assigns.

Each poll (:meth:`Agent.poll_once`) asks for the assignments; each assigned
catalogue plugin gets an :class:`~unity_agent.scheduler.Instance` with its
config checked by the SDK rulebook (:func:`unity_sdk.validate_config`), and a
changed assignment replaces its instance (``on_disable`` of the old,
``on_enable`` of the new, as the hub does on a reload). What cannot run
(unknown plugin, bad config, missing extra, failing ``on_enable``) goes into
``AgentStatus.problems`` and is tried again at the next poll; the others keep
running. The config values are never logged: they hold resolved credentials.

The agent's status goes to the hub after a poll when it changed (platform,
problems, samples dropped, whether any wait in the spool) and otherwise every
``STATUS_EVERY_POLLS`` polls, to refresh its counters: an idle fleet makes one
call per poll, not two. The hub's staleness does not depend on it: every
call of an agent, the poll included, is a sign of life.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from unity_agent.discovery import Discovery, Scan, catalogue_scan
from unity_agent.scheduler import Instance, RunOutcome, Timing, describe
from unity_agent.sender import Sender
from unity_agent.spool import Spool
from unity_sdk import (
    DEFAULT_DISCOVERY_SECONDS,
    AgentStatus,
    Assignment,
    Assignments,
    ConfigError,
    DependencyMissingError,
    HealthStatus,
    HostPlatform,
    HubClient,
    HubError,
    HubRequestError,
    HubUnavailableError,
    PluginBase,
    check_plugin_class,
    validate_config,
)

__all__ = ["DEFAULT_POLL_SECONDS", "STATUS_EVERY_POLLS", "STOP_GRACE", "Agent"]

log = logging.getLogger("unity_agent")

# Until the hub says otherwise (Assignments.poll_seconds).
DEFAULT_POLL_SECONDS = 30.0
# How long a stopping instance gives its run in flight and on_disable; the last send too.
STOP_GRACE = 5.0
# An unchanged status is still sent after this many polls (its counters move on).
STATUS_EVERY_POLLS = 6
_ASSIGNMENTS_STATE = "assignments"


def _status_mark(status: AgentStatus) -> tuple[Any, ...]:
    """What of a status is worth a call when it changes: not its counters of samples
    sent and buffered, which move with every batch (only whether any wait)."""
    return (
        status.platform,
        status.started_at,
        tuple(sorted(status.problems.items())),
        status.dropped,
        status.buffered > 0,
    )


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, waking early when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))


class Agent:
    """The instances this host runs, and what the hub is told about them."""

    def __init__(
        self,
        hub: HubClient,
        spool: Spool,
        plugins: Sequence[type[PluginBase[Any]]],
        *,
        platform: HostPlatform,
        timing: Timing | None = None,
        discovery_seconds: float = DEFAULT_DISCOVERY_SECONDS,
        scan: Scan | None = None,
    ) -> None:
        self.hub = hub
        self.spool = spool
        self.platform = platform
        self.timing = timing or Timing()
        self.started_at = datetime.now(UTC)
        self.poll_seconds = DEFAULT_POLL_SECONDS
        self.revision: str | None = None
        self.catalogue = {cls().get_metadata().id: cls for cls in plugins}
        self.assigned: dict[str, Assignment] = {}
        self.instances: dict[str, Instance] = {}
        self.problems: dict[str, str] = {}
        self.sender = Sender(hub, spool)
        # Only the plugins this agent can run are asked what they would watch.
        self.discovery = Discovery(
            hub, scan or catalogue_scan(list(self.catalogue.values())), every=discovery_seconds
        )
        self.unreachable = False
        # What the hub was last told (see _status_mark) and the polls since.
        self._status_told: tuple[Any, ...] | None = None
        self._polls_untold = 0

    # -- assignments -----------------------------------------------------------------

    async def poll_once(self) -> None:
        """Ask for the assignments, apply them, report the agent's status.

        ``HubAuthError`` propagates (the key is refused); an unreachable hub is
        logged once per outage and the instances keep running as they are."""
        try:
            # The revision it runs: the hub answers 304 (None) while nothing changed.
            answer = await self.hub.get_assignments(self.revision)
        except HubUnavailableError as exc:
            self.outage(exc)
            await self.apply(list(self.assigned.values()))  # retry what could not start
            return
        except HubRequestError as exc:
            log.error("the hub refused the assignments request: %s", exc)
            return
        self.reachable()
        if answer is None:
            await self.apply(list(self.assigned.values()))  # retry what could not start
            await self._report_status()
            return
        self.poll_seconds = answer.poll_seconds
        if answer.revision != self.revision:
            self.spool.save_state(_ASSIGNMENTS_STATE, answer.model_dump(mode="json"))
        await self.apply(answer.instances, revision=answer.revision)
        await self._report_status()

    async def _report_status(self) -> None:
        """After a poll: the status, when it changed or is ``STATUS_EVERY_POLLS`` old."""
        status = self.status()
        mark = _status_mark(status)
        self._polls_untold += 1
        if mark == self._status_told and self._polls_untold < STATUS_EVERY_POLLS:
            return
        try:
            await self.hub.report_agent_status(status)
        except HubUnavailableError as exc:
            self.outage(exc)
            return  # told nothing: the next poll tries again
        except HubRequestError as exc:
            # Sent again when it changes, not every poll with the same refusal.
            log.error("the hub refused the agent's status: %s", exc)
        self._status_told, self._polls_untold = mark, 0

    def restore(self) -> None:
        """The assignments saved by the previous run (None at the first start)."""
        saved = self.spool.load_state(_ASSIGNMENTS_STATE)
        if saved is not None:
            with contextlib.suppress(ValueError):
                answer = Assignments.model_validate(saved)
                self.assigned = {a.instance_id: a for a in answer.instances if a.enabled}
                self.poll_seconds = answer.poll_seconds

    async def apply(
        self, assignments: Sequence[Assignment], *, revision: str | None = None
    ) -> None:
        """Make the running instances what ``assignments`` says; start again those
        that could not start before."""
        self.assigned = {a.instance_id: a for a in assignments if a.enabled}
        if revision is not None and revision != self.revision:
            log.info("assignments revision %s: %d instance(s)", revision, len(self.assigned))
            self.revision = revision
        gone = [
            instance
            for key, instance in self.instances.items()
            if self.assigned.get(key) != instance.assignment
        ]
        for instance in gone:
            del self.instances[instance.id]
        if gone:
            await asyncio.gather(*(i.stop(STOP_GRACE) for i in gone))
            log.info("stopped %s", ", ".join(i.id for i in gone))
        for key in set(self.problems) - set(self.assigned):
            del self.problems[key]
        waiting = [a for key, a in self.assigned.items() if key not in self.instances]
        await asyncio.gather(*(self._start(a) for a in waiting))

    async def _start(self, assignment: Assignment) -> None:
        key = assignment.instance_id
        try:
            plugin = self._plugin(assignment)
        except (LookupError, ConfigError) as exc:
            self._problem(key, str(exc))
            return
        instance = Instance(
            assignment,
            plugin,
            host=self.platform.hostname,
            on_sample=self._spool,
            on_health=self._health,
            timing=self.timing,
        )
        try:
            await instance.enable()
        except Exception as exc:
            missing = isinstance(exc, DependencyMissingError | ImportError)
            self._problem(
                key, f"{'missing dependency' if missing else 'on_enable failed'}: {describe(exc)}"
            )
            await instance.stop(0)
            return
        if self.assigned.get(key) != assignment:
            await instance.stop(0)  # replaced or removed while on_enable ran
            return
        self.instances[key] = instance
        self.problems.pop(key, None)
        instance.start()
        log.info("started %s (every %gs)", key, assignment.interval)

    def _plugin(self, assignment: Assignment) -> PluginBase[Any]:
        """A new plugin object for the assignment; ``LookupError`` for an unknown
        plugin, ``ConfigError`` for a config it refuses (never quoting values)."""
        cls = self.catalogue.get(assignment.plugin)
        if cls is None:
            raise LookupError(
                f"unknown plugin {assignment.plugin!r}: not in this agent's catalogue "
                f"(unity-agent {self.platform.agent_version})"
            )
        metadata = check_plugin_class(cls)
        try:
            validated = validate_config(metadata, assignment.config)
        except ConfigError as exc:
            # The fields only: a schema's message may quote the value, and configs hold
            # resolved credentials. The hub checked this config by the same rules, so
            # a refusal here means its catalogue and this agent's differ.
            fields = sorted(
                {".".join(str(p) for p in e.get("loc", ())) or "(root)" for e in exc.errors}
            )
            raise ConfigError(
                f"{exc} (fields: {', '.join(fields)}); the hub's catalogue differs from "
                f"this agent's (unity-agent {self.platform.agent_version})"
            ) from None
        if validated.targets:
            raise ConfigError("targets (other hosts over SSH) are the hub's: an agent runs locally")
        return cls(config=validated.plugin)

    def _problem(self, key: str, message: str) -> None:
        if self.problems.get(key) != message:
            log.error("cannot run %s: %s", key, message)
        self.problems[key] = message

    # -- what the instances produce ----------------------------------------------------

    def _spool(self, key: str, host: str, timestamp: datetime, data_json: str) -> None:
        self.spool.append(key, host, timestamp, data_json)
        self.sender.wake()

    def _health(self, key: str, status: HealthStatus, outcome: RunOutcome) -> None:
        if outcome.missing_dependency:
            self._problem(key, f"missing dependency: {outcome.error}")
        elif outcome.status == "success" and self.problems.get(key, "").startswith("missing"):
            del self.problems[key]
        self.sender.health_changed(key, status)

    def status(self) -> AgentStatus:
        return AgentStatus(
            platform=self.platform,
            started_at=self.started_at,
            buffered=len(self.spool),
            dropped=self.spool.dropped,
            sent=self.sender.sent,
            problems=dict(self.problems),
        )

    # -- the hub's reachability, logged once per change -------------------------------

    def outage(self, exc: HubUnavailableError) -> None:
        if not self.unreachable:
            log.warning("hub unreachable, collecting into the spool: %s", exc)
        self.unreachable = True

    def reachable(self) -> None:
        if self.unreachable:
            log.info("hub reachable again; %d sample(s) to replay", len(self.spool))
        self.unreachable = False
        self.discovery.hub_back()

    # -- the loops ---------------------------------------------------------------------

    async def poll_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll_once()
            await _wait(stop, self.poll_seconds)

    async def close(self, *, send: bool = True) -> None:
        """Stop every instance (runs in flight get ``STOP_GRACE``), then a last send
        (not when the key was refused: what is left stays spooled)."""
        instances, self.instances = list(self.instances.values()), {}
        await asyncio.gather(*(i.stop(STOP_GRACE) for i in instances))
        if send:
            with contextlib.suppress(TimeoutError, HubError):
                async with asyncio.timeout(STOP_GRACE):
                    await self.sender.flush()
        if len(self.spool):
            log.info("stopping with %d sample(s) spooled for the next start", len(self.spool))
