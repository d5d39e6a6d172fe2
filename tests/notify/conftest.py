"""Fixtures of the notification tests: a hub whose dispatcher runs on a clock the
test moves, and loopback receivers (:mod:`tests.notify.receivers`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.notify.receivers import MailReceiver
from unity.notify.dispatcher import Dispatcher
from unity.settings import Settings

PUBLIC_URL = "https://unity.example.test"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        hostname="test-host",
        autoenable=[],
        bootstrap_token=False,
        scheduler_jitter=0.0,
        auth_failure_burst=1_000_000,
        auth_failure_limit=1_000_000,
        public_url=PUBLIC_URL,
        notify_group_wait_seconds=30,
        notify_rate_window_seconds=60,
        notify_timeout_seconds=5,
        notify_retry_seconds=10,
        notify_max_retry_seconds=600,
        notify_max_attempts=5,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def dispatcher(app: FastAPI, settings: Settings, clock: Clock) -> Dispatcher:
    """The hub's notifier, replaced by one on the test's clock whose loop the test
    drives (``deliver_due``)."""
    await app.state.notifier.stop()
    notifier = Dispatcher(app.state.manager.credentials, settings, clock=clock, hub="hub-a")
    app.state.notifier = notifier
    return notifier


@pytest.fixture
def smtp() -> Iterator[MailReceiver]:
    receiver = MailReceiver()
    receiver.controller.start()
    try:
        yield receiver
    finally:
        receiver.controller.stop()
