"""The dispatcher: the hub's :class:`~unity.notify.Notifier`.

``submit`` only writes the notice to the outbox, once per channel whose
routing accepts it; it never waits on a network. The delivery loop
(:meth:`Dispatcher.run`) claims due rows (so hubs sharing one PostgreSQL
deliver each notice once), and per channel:

- groups the notices of one host (or one rule) that arrived within the group
  wait into one message;
- keeps to the channel's rate limit: when more groups are due than messages
  are left in the window, the rest go out as one digest, and when none are
  left the notices wait for the window to reopen -- a storm of alerts becomes
  a few messages and none is lost;
- retries a failed message with exponential backoff, up to
  ``UNITY_NOTIFY_MAX_ATTEMPTS`` attempts;
- writes every message to the delivery log (sent or failed, attempt, why).

Time comes from an injectable ``clock`` so tests need not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter

from unity.credentials import CredentialError, CredentialStore
from unity.notify import AlertNotice
from unity.notify import outbox as box
from unity.notify.channels import deliver
from unity.notify.errors import DeliveryError
from unity.notify.message import compose, from_json, to_json
from unity.notify.routing import group_key, matches
from unity.notify.store import ChannelStore
from unity.settings import Settings
from unity.storage.db import is_unavailable
from unity.storage.models import NotificationChannel, NotificationDelivery, NotificationOutbox
from unity.storage.types import utcnow

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

# Due rows one pass claims at most; a larger backlog is taken over the next passes.
CLAIM_LIMIT = 1000


class Dispatcher:
    """Stores notices, delivers them from the outbox, keeps the delivery log."""

    def __init__(
        self,
        credentials: CredentialStore,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        hub: str | None = None,
    ) -> None:
        self.channels = ChannelStore(credentials)
        self.db = credentials.db
        self.settings = settings
        self.clock = clock
        self.hub = hub or f"{settings.hostname}:{secrets.token_hex(3)}"
        self.registry = CollectorRegistry(auto_describe=True)
        self.sent = Counter(
            "unity_notifications_sent",
            "Notification messages delivered, by channel kind.",
            ["kind"],
            registry=self.registry,
        )
        self.failed = Counter(
            "unity_notifications_failed",
            "Notification delivery attempts that failed, by channel kind.",
            ["kind"],
            registry=self.registry,
        )
        self._task: asyncio.Task[None] | None = None

    # -- in: the alert engine --------------------------------------------------------

    async def submit(self, notice: AlertNotice) -> None:
        """Queue ``notice`` for every channel whose routing accepts it (database only)."""
        channels = [c for c in await self.channels.list_channels() if matches(c, notice)]
        if not channels:
            log.debug("no channel routes notice %s (%s)", notice.fingerprint, notice.rule_name)
            return
        now = self.clock()
        due = now + timedelta(seconds=self.settings.notify_group_wait_seconds)
        data = to_json(notice)
        async with self.db.writer() as session:
            session.add_all(
                NotificationOutbox(
                    channel_id=channel.id,
                    group_key=group_key(notice),
                    fingerprint=notice.fingerprint[:255],
                    status=notice.status,
                    severity=notice.severity,
                    notice=data,
                    state="pending",
                    created_at=now,
                    due_at=due,
                    attempts=0,
                )
                for channel in channels
            )

    # -- out: the delivery loop ------------------------------------------------------

    def start(self) -> None:
        """Start the delivery loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="unity-notify")

    async def stop(self) -> None:
        """Stop the loop; rows claimed mid-delivery return to the outbox when their
        lease ends."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception as exc:
                if is_unavailable(exc):
                    log.debug("notifications wait for the database: %s", type(exc).__name__)
                else:
                    log.exception("notification delivery pass failed")
            await asyncio.sleep(self.settings.notify_poll_seconds)

    async def deliver_due(self) -> int:
        """One pass: claim what is due and deliver it. Returns the messages attempted."""
        now = self.clock()
        token = secrets.token_hex(16)
        lease = now + timedelta(seconds=self.settings.notify_lease_seconds)
        rows = await box.claim(self.db, now=now, lease_until=lease, token=token, limit=CLAIM_LIMIT)
        by_channel: dict[int, list[NotificationOutbox]] = {}
        for row in rows:
            by_channel.setdefault(row.channel_id, []).append(row)
        counts = await asyncio.gather(
            *(self._deliver_channel(cid, batch, token, now) for cid, batch in by_channel.items())
        )
        return sum(counts)

    def _batches(
        self, channel: NotificationChannel, rows: list[NotificationOutbox], budget: int
    ) -> list[list[NotificationOutbox]]:
        if channel.kind == "alertmanager":
            return [rows]  # Alertmanager groups by itself: one request carries them all.
        groups: dict[str, list[NotificationOutbox]] = {}
        for row in rows:
            groups.setdefault(row.group_key, []).append(row)
        batches = list(groups.values())
        if len(batches) <= budget:
            return batches
        keep = batches[: budget - 1]
        return [*keep, [row for batch in batches[budget - 1 :] for row in batch]]

    async def _deliver_channel(
        self, channel_id: int, rows: list[NotificationOutbox], token: str, now: datetime
    ) -> int:
        ids = [row.id for row in rows]
        async with self.db.session() as session:
            channel = await session.get(NotificationChannel, channel_id)
        if channel is None:
            return 0
        if not channel.enabled:
            await box.drop(self.db, ids, token, reason="channel disabled")
            return 0
        window = timedelta(seconds=self.settings.notify_rate_window_seconds)
        used, oldest = await box.recent_messages(self.db, channel.id, since=now - window)
        budget = channel.rate_limit - used
        if budget <= 0:
            reopen = max((oldest or now) + window, now + timedelta(seconds=1))
            await box.release(self.db, ids, token, due_at=reopen)
            return 0
        batches = self._batches(channel, rows, budget)
        try:
            url = await self.channels.url(channel)
        except CredentialError as exc:
            for batch in batches:
                await self._failed(channel, batch, token, f"channel URL unavailable: {exc}")
            return len(batches)
        for batch in batches:
            await self._send(channel, url, batch, token)
        return len(batches)

    async def _send(
        self, channel: NotificationChannel, url: str, batch: list[NotificationOutbox], token: str
    ) -> None:
        notices = [from_json(row.notice) for row in batch]
        public_url = self.settings.public_url
        message = compose(notices, now=self.clock(), public_url=public_url)
        try:
            await deliver(
                url,
                message,
                notices,
                timeout=self.settings.notify_timeout_seconds,
                now=self.clock(),
                public_url=public_url,
            )
        except DeliveryError as exc:
            await self._failed(channel, batch, token, str(exc), title=message.title)
            return
        await box.delivered(self.db, [row.id for row in batch], token)
        await self._log(channel, "sent", batch, title=message.title)
        self.sent.labels(channel.kind).inc()

    def _retry_at(self, attempts: int) -> datetime:
        base = self.settings.notify_retry_seconds
        delay = min(base * 2 ** (attempts - 1), self.settings.notify_max_retry_seconds)
        return self.clock() + timedelta(seconds=delay)

    async def _failed(
        self,
        channel: NotificationChannel,
        batch: list[NotificationOutbox],
        token: str,
        error: str,
        *,
        title: str = "",
    ) -> None:
        retry_at = {row.attempts + 1: self._retry_at(row.attempts + 1) for row in batch}
        limit = self.settings.notify_max_attempts
        gave_up = await box.failed(
            self.db, batch, token, error=error, retry_at=retry_at, max_attempts=limit
        )
        if gave_up:
            error += f" (gave up on {gave_up} notice(s) after {limit} attempts)"
        await self._log(channel, "failed", batch, title=title, error=error)
        self.failed.labels(channel.kind).inc()
        attempt = max(row.attempts for row in batch) + 1
        log.warning(
            "notification to channel %s failed (attempt %d): %s", channel.name, attempt, error
        )

    async def _log(
        self,
        channel: NotificationChannel,
        state: str,
        batch: list[NotificationOutbox],
        *,
        title: str,
        error: str = "",
        test: bool = False,
    ) -> NotificationDelivery:
        return await box.log_delivery(
            self.db,
            NotificationDelivery(
                channel_id=channel.id,
                channel=channel.name,
                kind=channel.kind,
                at=self.clock(),
                state=state,
                attempt=max((row.attempts for row in batch), default=0) + 1,
                notices=len(batch) or 1,
                title=title[:2000],
                error=error,
                test=test,
                hub=self.hub[:255],
            ),
        )

    # -- a test message --------------------------------------------------------------

    async def send_test(self, name: str, *, actor: str) -> NotificationDelivery:
        """Send a test message to one channel now; the entry is in the delivery log.

        ``DeliveryError`` (scrubbed) when it failed."""
        channel = await self.channels.get(name)
        now = self.clock()
        notice = AlertNotice(
            fingerprint=f"test:{channel.name}",
            status="firing",
            severity="info",
            rule_id="test",
            rule_name="Test notification",
            summary=f"Unity hub {self.settings.hostname} can reach channel {channel.name}.",
            labels={"host": self.settings.hostname, "channel": channel.name},
            started_at=now,
        )
        message = compose([notice], now=now, public_url=self.settings.public_url)
        try:
            url = await self.channels.url(channel, actor=actor)
            await deliver(
                url,
                message,
                [notice],
                timeout=self.settings.notify_timeout_seconds,
                now=now,
                public_url=self.settings.public_url,
            )
        except (DeliveryError, CredentialError) as exc:
            await self._log(channel, "failed", [], title=message.title, error=str(exc), test=True)
            self.failed.labels(channel.kind).inc()
            raise DeliveryError(str(exc)) from None
        self.sent.labels(channel.kind).inc()
        return await self._log(channel, "sent", [], title=message.title, test=True)
