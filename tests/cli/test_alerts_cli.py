"""``unity alerts`` against a real hub served on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import update

from tests.alerts.support import Clock, ProbePlugin, Recorder, run
from tests.cli.conftest import Hub, Invoke
from unity.alerts import AlertEngine
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import Plugin


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [ProbePlugin]


def _rows(output: str) -> list[str]:
    """The body lines of a table (after its header and rule)."""
    return [line for line in output.splitlines()[1:] if len(line.split()) > 2]


def admin(hub: Hub, *args: str) -> list[str]:
    return ["--url", hub.url, "--token", hub.admin_token, "alerts", *args]


async def _fire(settings: Settings) -> None:
    """What the hub's run path does: a run observed, its alert firing."""
    db = Database(settings.effective_database_url)
    try:
        async with db.session() as session:
            await session.execute(update(Plugin).values(enabled=True))

        async def metadata(plugin_id: str) -> Any:
            return ProbePlugin().get_metadata()

        engine = AlertEngine(db, settings, metadata=metadata, notifier=Recorder(), clock=Clock())
        await engine.observe(run(Clock(), {"load": 99.0, "disks": {"sda": {"percent": 99.0}}}))
    finally:
        await db.dispose()


def test_rules_add_list_disable(cli: Invoke, hub: Hub) -> None:
    added = cli(*admin(hub, "rules", "add", "probe", "load-warn", "--metric", "load",
                       "--threshold", "70", "--for", "5m"))  # fmt: skip
    assert added.exit_code == 0, added.output
    refused = cli(
        *admin(hub, "rules", "add", "probe", "bad", "--metric", "nope", "--threshold", "1")
    )
    assert refused.exit_code == 1
    assert "metric: the plugin declares no metric 'nope'" in refused.output
    assert cli(*admin(hub, "rules", "disable", "probe", "load-high")).exit_code == 0
    listed = cli(*admin(hub, "rules", "list", "--plugin", "probe"))
    lines = {line.split()[1]: line for line in _rows(listed.output)}
    assert "user" in lines["load-warn"]
    assert "300 s" in lines["load-warn"]
    assert "off" in lines["load-high"]
    assert "load > 70" in lines["load-warn"]


def test_list_ack_silence_and_maintenance(cli: Invoke, hub: Hub, settings: Settings) -> None:
    asyncio.run(_fire(settings))
    listed = cli(*admin(hub, "list"))
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in _rows(listed.output)]
    assert [(r[1], r[4]) for r in rows] == [("firing", "load-high"), ("pending", "disk-full")]
    acked = cli(*admin(hub, "ack", rows[0][0][:8], "--note", "on it"))
    assert acked.exit_code == 0, acked.output
    assert "Acknowledged load on web1 is 99% (limit 90%)" in acked.output
    assert "token:" in cli(*admin(hub, "list")).output
    silenced = cli(*admin(hub, "silence", "--for", "2h", "--host", "web1", "--label", "team=ops"))
    assert silenced.exit_code == 0, silenced.output
    shown = cli(*admin(hub, "silences")).output
    assert "host=web1" in shown
    assert "labels={'team': 'ops'}" in shown
    silence_id = silenced.output.split()[1]
    assert cli(*admin(hub, "unsilence", silence_id)).exit_code == 0
    assert "host=web1" not in cli(*admin(hub, "silences")).output
    window = cli(*admin(hub, "maintenance", "nas", "--for", "90m"))
    assert window.exit_code == 0, window.output
    assert "Maintenance 1 of nas until" in window.output
    bad = cli(*admin(hub, "silence", "--for", "soon", "--host", "x"))
    assert bad.exit_code == 2
    history = cli(*admin(hub, "history")).output
    assert "inactive → firing" in history
