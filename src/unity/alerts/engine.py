"""The alert engine: evaluates each recorded run against its plugin's rules.

The hub calls :meth:`AlertEngine.observe` after every recorded run and every
state change (see :mod:`unity.plugins.observe`). Rules are compiled once per
plugin and kept until a rule or override changes; an evaluation that changes
nothing touches no database. :meth:`AlertEngine.tick` (every
``UNITY_ALERT_EVAL_SECONDS``, from :meth:`AlertEngine.start`) moves pending
alerts to firing once their ``for`` has passed, raises and clears
``no_data`` alerts, repeats firing ones every ``UNITY_ALERT_REPEAT_SECONDS``,
picks up what other hubs on the same database did, and trims the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from unity.alerts.lifecycle import Instance, Lifecycle, load_active
from unity.alerts.rules import CompiledRule, RuleError, compile_rule, effective_rules, fingerprint
from unity.alerts.rules import render_summary as _render
from unity.alerts.store import (
    RuleConfig,
    Suppressions,
    load_rule_config,
    load_suppressions,
    purge_history,
    rules_signature,
)
from unity.notify import Notifier
from unity.plugins.observe import RunObserved, StateChanged
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import LatestMetric, Plugin
from unity.storage.types import utcnow
from unity_sdk import AlertKind, PluginMetadata

__all__ = ["AlertEngine", "MetadataSource"]

log = logging.getLogger(__name__)

MetadataSource = Callable[[str], Awaitable[PluginMetadata]]
_HEALTH_OF = {"degraded": "degraded", "unhealthy": "unhealthy"}
PURGE_EVERY = timedelta(hours=1)


class AlertEngine:
    """Rules in, transitions and notices out. One per hub process."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        metadata: MetadataSource,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.metadata = metadata
        self.clock = clock
        self.lifecycle = Lifecycle(db, notifier, link=_link)
        self.suppressions = Suppressions([], set())
        self._compiled: dict[str, list[CompiledRule]] = {}
        self._config: RuleConfig | None = None
        # Counts invalidations: rules compiled across one are not cached.
        self._generation = 0
        self._signature: tuple[Any, ...] | None = None
        self._instances: dict[str, Instance] = {}
        self._keys: dict[tuple[str, str, str, str], str] = {}
        self._previous: dict[str, tuple[datetime, float]] = {}
        # (plugin, rule, host) -> fingerprints known, to find items that vanished.
        self._by_host: dict[tuple[str, str, str], set[str]] = {}
        self._last_seen: dict[tuple[str, str], datetime] = {}
        self._intervals: dict[str, float] = {}  # enabled plugins -> their interval
        # Plugins enabled since the last sync (an external plugin registering) ->
        # their metadata's interval, so a batch does not look it up again.
        self._looked_up: dict[str, float] = {}
        self._purged_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def notifier(self) -> Notifier | None:
        return self.lifecycle.notifier

    @notifier.setter
    def notifier(self, value: Notifier | None) -> None:
        self.lifecycle.notifier = value

    # -- rules --------------------------------------------------------------

    def invalidate(self, plugin_id: str | None = None) -> None:
        """Forget compiled rules (of one plugin, or all): the next run recompiles."""
        self._generation += 1
        if plugin_id is None:
            self._compiled.clear()
            self._config = None
        else:
            self._compiled.pop(plugin_id, None)
            self._config = None

    async def rules(self, plugin_id: str) -> list[CompiledRule]:
        """The enabled rules of ``plugin_id``, compiled (cached).

        The config is held locally across the awaits: a tick may invalidate it
        meanwhile (an agent's host joining), and then what was compiled from the
        old one is used for this run but not kept."""
        compiled = self._compiled.get(plugin_id)
        if compiled is not None:
            return compiled
        generation = self._generation
        config = self._config
        if config is None:
            async with self.db.session() as session:
                config = await load_rule_config(session)
            if generation == self._generation:
                self._config = config
        compiled = []
        try:
            metadata = await self.metadata(plugin_id)
        except Exception:
            metadata = None
        if metadata is not None:
            try:
                found = effective_rules(
                    metadata,
                    config.overrides_of(plugin_id),
                    config.user_rules_of(plugin_id),
                    external=plugin_id in config.external,
                )
            except RuleError as exc:
                log.warning("plugin %s: an alert rule override does not apply: %s", plugin_id, exc)
                found = []
            for effective in found:
                if not effective.enabled:
                    continue
                try:
                    compiled.append(
                        compile_rule(
                            plugin_id,
                            effective.rule,
                            metadata.metrics,
                            default=effective.source == "default",
                        )
                    )
                except RuleError as exc:
                    log.warning(
                        "plugin %s: alert rule %s skipped: %s", plugin_id, effective.rule.id, exc
                    )
        if generation == self._generation:
            self._compiled[plugin_id] = compiled
        return compiled

    # -- observing runs -----------------------------------------------------

    async def observe(self, event: RunObserved | StateChanged) -> None:
        """Evaluate the rules of the event's plugin (the hub calls this)."""
        try:
            await self._observe(event)
        except Exception:
            log.exception("alert evaluation of plugin %s failed", event.plugin_id)

    async def _observe(self, event: RunObserved | StateChanged) -> None:
        rules = await self.rules(event.plugin_id)
        now = self.clock()
        if isinstance(event, StateChanged):
            for rule in rules:
                if rule.rule.kind is AlertKind.STATE:
                    await self._state(rule, event.current.value, now)
                elif rule.rule.kind is AlertKind.HEALTH:
                    await self._state(rule, _HEALTH_OF.get(event.current.value, "healthy"), now)
            return
        # A batch holds many documents of few hosts: no data is judged per host.
        hosts = dict.fromkeys(host for host, _ in event.documents)
        for host in hosts:
            self._last_seen[(event.plugin_id, host)] = now
        for rule in rules:
            kind = rule.rule.kind
            if kind in (AlertKind.THRESHOLD, AlertKind.RATE):
                for host, document in event.documents:
                    await self._document(rule, host, document, event.at, now)
            elif kind is AlertKind.NO_DATA:
                for host in hosts:
                    await self._no_data(rule, host, 0.0, now)
            elif kind is AlertKind.STATE:
                await self._state(rule, event.state.value, now)
            elif kind is AlertKind.HEALTH:
                health = event.health.status.value if event.health is not None else None
                await self._state(rule, health or _HEALTH_OF.get(event.state.value, "healthy"), now)

    def _remember(self, inst: Instance) -> Instance:
        self._instances[inst.fingerprint] = inst
        key = (inst.plugin_id, inst.rule_id, inst.host)
        self._by_host.setdefault(key, set()).add(inst.fingerprint)
        return inst

    def _fingerprint(self, plugin_id: str, rule_id: str, host: str, item: str) -> str:
        key = (plugin_id, rule_id, host, item)
        found = self._keys.get(key)
        if found is None:
            found = self._keys[key] = fingerprint(*key)
        return found

    async def _document(
        self, rule: CompiledRule, host: str, document: dict[str, Any], at: datetime, now: datetime
    ) -> None:
        seen: set[str] = set()
        rate = rule.rule.kind is AlertKind.RATE
        for reading in rule.readings(document):
            fp = self._fingerprint(rule.plugin_id, rule.id, host, reading.item)
            seen.add(fp)
            value = reading.value
            if rate:
                previous = self._previous.get(fp)
                self._previous[fp] = (at, value)
                seconds = (at - previous[0]).total_seconds() if previous else 0.0
                if previous is None or seconds <= 0 or value < previous[1]:
                    continue  # first sample, or a counter reset: no rate yet
                value = (value - previous[1]) / seconds * rule.scale
            inst = self._instances.get(fp)
            active = inst is not None and inst.active
            holds = rule.holds(value, reading.threshold, reading.clear, active)
            if not holds and not active:
                continue
            await self._evaluate(rule, fp, host, reading.item, holds, value, reading.threshold, now)
        # An item that is gone (a disk unmounted) no longer meets the condition.
        for fp in list(self._by_host.get((rule.plugin_id, rule.id, host), ())):
            inst = self._instances[fp]
            if inst.active and fp not in seen:
                await self._evaluate(
                    rule, inst.fingerprint, host, inst.item, False, None, inst.threshold, now
                )

    async def _state(self, rule: CompiledRule, state: str, now: datetime) -> None:
        fp = self._fingerprint(rule.plugin_id, rule.id, "", "")
        holds = state in rule.rule.watched_states
        inst = self._instances.get(fp)
        if holds or (inst is not None and inst.active):
            await self._evaluate(rule, fp, "", "", holds, None, None, now, state=state)

    async def _no_data(self, rule: CompiledRule, host: str, age: float, now: datetime) -> None:
        fp = self._fingerprint(rule.plugin_id, rule.id, host, "")
        limit = rule.rule.intervals * await self._interval(rule.plugin_id)
        holds = age > limit
        inst = self._instances.get(fp)
        if holds or (inst is not None and inst.active):
            await self._evaluate(rule, fp, host, "", holds, round(age, 1), limit, now)

    async def _interval(self, plugin_id: str) -> float:
        known = self._intervals.get(plugin_id) or self._looked_up.get(plugin_id)
        if known is not None:
            return known
        try:
            interval = (await self.metadata(plugin_id)).default_interval
        except Exception:
            return 60.0
        self._looked_up[plugin_id] = interval
        return interval

    async def _evaluate(
        self,
        rule: CompiledRule,
        fp: str,
        host: str,
        item: str,
        holds: bool,
        value: float | None,
        threshold: float | None,
        now: datetime,
        *,
        state: str = "",
        retry: bool = True,
    ) -> None:
        inst = self._instances.get(fp)
        if inst is None:
            inst = self._remember(Instance(fp, rule.plugin_id, rule.id, host, item))
        inst.severity = rule.rule.severity.value
        inst.labels = dict(rule.rule.labels)
        inst.rule_name = rule.rule.title
        inst.unit = rule.unit
        if value is not None or not holds:
            inst.value = value if value is not None else inst.value
        inst.threshold = threshold
        inst.last_eval_at = now
        inst.summary = _render(
            rule.rule, rule.plugin_id, host=host, item=item, value=inst.value,
            unit=rule.unit, threshold=threshold, state=state,
        )  # fmt: skip
        target = _next_state(inst, holds, rule.rule.for_seconds, now)
        if target is None:
            inst.dirty = inst.active
            return
        won = await self.lifecycle.move(
            inst, target, now=now, value=inst.value, suppressions=self.suppressions
        )
        if not won and retry:
            await self._evaluate(
                rule, fp, host, item, holds, value, threshold, now, state=state, retry=False
            )

    # -- the periodic loop --------------------------------------------------

    async def start(self) -> None:
        """Load what is active and start the periodic :meth:`tick`."""
        await self._sync()
        self._task = asyncio.create_task(self._loop(), name="alert-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.alert_eval_seconds)
            try:
                await self.tick()
            except Exception:
                log.exception("alert engine tick failed")

    async def _sync(self) -> None:
        """Take in instances other hubs (or the API) changed; reload changed rules."""
        async with self.db.session() as session:
            signature = await rules_signature(session)
            self.suppressions = await load_suppressions(session, now=self.clock())
            enabled = (
                await session.execute(
                    select(Plugin.id, Plugin.config, Plugin.plugin_metadata, Plugin.external).where(
                        Plugin.enabled
                    )
                )
            ).all()
            self._intervals = {
                pid: float((config or {}).get("interval") or meta.get("default_interval", 60))
                for pid, config, meta, _ in enabled
            }
            self._looked_up = {}
        if signature != self._signature:
            self._signature = signature
            self.invalidate()
        elif self._config is not None:
            # An external plugin registered (or an agent's host joined) since the
            # rules were compiled: it gets the external plugins' rules too.
            joined = {pid for pid, _, _, external in enabled if external} - self._config.external
            for plugin_id in joined:
                self.invalidate(plugin_id)
        for row in await load_active(self.db):
            inst = self._instances.get(row.fingerprint)
            if inst is None:
                inst = self._remember(
                    Instance(row.fingerprint, row.plugin_id, row.rule_id, row.host, row.item)
                )
            if row.version > inst.version:
                inst.load(row)

    async def tick(self) -> None:
        """One pass: ``for`` durations, no data, repeats, vanished rules, retention."""
        await self._sync()
        now = self.clock()
        repeat = timedelta(seconds=self.settings.alert_repeat_seconds)
        await self._tick_no_data(now)
        for inst in [i for i in self._instances.values() if i.active]:
            rules = await self.rules(inst.plugin_id) if inst.plugin_id in self._intervals else []
            rule = next((r for r in rules if r.id == inst.rule_id), None)
            if rule is None:  # rule removed or switched off, or plugin disabled
                await self.lifecycle.move(
                    inst, "resolved" if inst.state == "firing" else "inactive",
                    now=now, value=inst.value, suppressions=self.suppressions,
                )  # fmt: skip
            elif inst.state == "pending":
                if _next_state(inst, True, rule.rule.for_seconds, now) == "firing":
                    await self.lifecycle.move(
                        inst, "firing", now=now, value=inst.value, suppressions=self.suppressions
                    )
            elif (
                inst.state == "firing"
                and inst.ack_at is None
                and (inst.notified_at is None or now - inst.notified_at >= repeat)
                and not self.suppressions.silenced(inst.notice_labels())
            ):
                await self.lifecycle.repeat(inst, now=now)
        await self.lifecycle.flush(list(self._instances.values()))
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY:
            self._purged_at = now
            async with self.db.writer() as session:
                await purge_history(session, now=now, days=self.settings.alert_history_days)

    async def _tick_no_data(self, now: datetime) -> None:
        watched = {}
        for plugin_id in self._intervals:
            rules = [r for r in await self.rules(plugin_id) if r.rule.kind is AlertKind.NO_DATA]
            if rules:
                watched[plugin_id] = rules
        if not watched:
            return
        async with self.db.session() as session:
            rows = await session.execute(
                select(LatestMetric.plugin_id, LatestMetric.host, LatestMetric.timestamp).where(
                    LatestMetric.plugin_id.in_(watched)
                )
            )
            latest = {(pid, host): ts for pid, host, ts in rows}
        for key, seen in self._last_seen.items():
            if key[0] in watched and (key not in latest or seen > latest[key]):
                latest[key] = seen
        for (plugin_id, host), seen in latest.items():
            age = (now - seen).total_seconds()
            for rule in watched[plugin_id]:
                await self._no_data(rule, host, age, now)

    # -- what the API changes -----------------------------------------------

    def firing_count(self) -> int:
        """Alerts firing now, as this hub last saw them (the top bar's count)."""
        return sum(1 for inst in self._instances.values() if inst.state == "firing")

    async def reload(self, fingerprint: str) -> None:
        """Re-read one instance (after the API changed it)."""
        inst = self._instances.get(fingerprint)
        if inst is not None:
            await self.lifecycle.reload(inst)

    async def refresh(self) -> None:
        """Re-read rules, silences and windows now (the API changed them)."""
        self._signature = None
        await self._sync()


def _next_state(inst: Instance, holds: bool, for_seconds: float, now: datetime) -> str | None:
    """Where an instance goes, or None to stay."""
    if holds:
        if not inst.active:
            return "firing" if for_seconds <= 0 else "pending"
        if inst.state == "pending":
            since = inst.since or now
            if (now - since).total_seconds() >= for_seconds:
                return "firing"
        return None
    if inst.state == "pending":
        return "inactive"
    if inst.state == "firing":
        return "resolved"
    return None


def _link(inst: Instance, at: datetime) -> str:
    return f"/plugins/{inst.plugin_id}?at={at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
