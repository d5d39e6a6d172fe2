"""The ``systemctl`` plugin: the real systemctl of this machine, and recorded systemd 252."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from services_support import (
    FakeRunner,
    Recorded,
    check_class,
    collect_checked,
    make,
    require_command,
)

from unity_catalogue.systemctl import SystemctlPlugin
from unity_sdk import DependencyMissingError, HealthState, PluginNotReadyError

LIST_JSON = "systemctl list-units --state=failed --no-pager --output=json"
LIST_PLAIN = "systemctl list-units --state=failed --no-pager --plain --no-legend"
UNITS = ["nginx", "restic-backup.service", "restic-backup.timer", "grafana-server"]
PROPS = "-p Id,LoadState,ActiveState,SubState,NRestarts,ExecMainStartTimestamp --no-pager"
SHOW = f"systemctl show {' '.join(UNITS)} {PROPS} --timestamp=utc"


def recorded(answers: dict[str, Recorded] | None = None) -> FakeRunner:
    """systemd 252 on a server with two failed units, with ``answers`` replacing some."""
    defaults = {
        LIST_JSON: Recorded("failed.json"),
        "systemctl is-system-running": Recorded("degraded\n", "", 1),
        SHOW: Recorded("show-units.txt"),
    }
    return FakeRunner("systemctl", {**defaults, **(answers or {})})


def test_metadata() -> None:
    metadata = check_class(SystemctlPlugin, "systemctl", "system")
    assert metadata.supports_remote
    assert metadata.requires.commands == ["systemctl"]


async def test_real_systemctl_on_this_machine() -> None:
    require_command("systemctl")
    plugin = make(SystemctlPlugin, units=["ssh.service"])
    if Path("/run/systemd/system").is_dir():
        # A host booted with systemd (a CI virtual machine): the real document.
        document = await collect_checked(plugin)
        assert document["system_state"] in {"running", "degraded", "starting", "maintenance"}
        assert document["watched"]["total"] == 1
        return
    # A container: systemd is not PID 1, and systemctl says so.
    with pytest.raises(DependencyMissingError) as caught:
        await plugin.collect_data()
    assert str(caught.value) == (
        "systemd is not the init system on the target: System has not been booted with "
        "systemd as init system (PID 1). Can't operate."
    )
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert health.message == str(caught.value)


async def test_recorded_failed_and_chosen_units() -> None:
    runner = recorded()
    plugin = make(SystemctlPlugin, runner=runner, units=UNITS)
    document = await collect_checked(plugin)
    assert document["system_state"] == "degraded"
    assert document["failed"] == 2
    assert document["failed_units"]["nut-monitor.service"] == {
        "load": "loaded",
        "sub": "failed",
        "description": "Network UPS Tools - power device monitor and shutdown controller",
    }
    assert document["watched"] == {"total": 4, "active": 2, "failed": 1, "inactive": 1, "other": 0}
    units = document["units"]
    assert units["nginx"] == {
        "load": "loaded",
        "active": "active",
        "sub": "running",
        "restarts": 0,
        "started_at": datetime(2024, 5, 13, 9, 12, 1, tzinfo=UTC).timestamp(),
    }
    assert units["restic-backup.service"]["restarts"] == 3
    assert units["restic-backup.timer"] == {"load": "loaded", "active": "active", "sub": "waiting"}
    assert units["grafana-server"] == {
        "load": "not-found",
        "active": "inactive",
        "sub": "dead",
        "restarts": 0,
    }
    health = await plugin.health_check()
    assert health.status is HealthState.DEGRADED
    assert health.details["units"] == {
        "restic-backup.service": "failed",
        "nut-monitor.service": "failed",
        "grafana-server": "not found",
    }
    assert health.message.startswith("3 unit(s) need attention: restic-backup.service failed")


async def test_recorded_healthy_system() -> None:
    runner = recorded(
        {
            LIST_JSON: Recorded("failed-none.json"),
            "systemctl is-system-running": Recorded("running\n"),
        }
    )
    plugin = make(SystemctlPlugin, runner=runner)
    document = await collect_checked(plugin)
    assert document["failed"] == 0
    assert document["units"] == {}
    assert document["watched"]["total"] == 0
    health = await plugin.health_check()
    assert health.status is HealthState.HEALTHY
    assert health.message == "system running"
    assert not any(call[1] == "show" for call in runner.calls)


async def test_recorded_systemd_241_fallbacks() -> None:
    show = f"systemctl show nginx.service {PROPS}"
    runner = recorded(
        {
            LIST_JSON: Recorded("failed-table-systemd-241.txt"),
            LIST_PLAIN: Recorded("failed-plain-systemd-241.txt"),
            f"{show} --timestamp=utc": Recorded("", "timestamp-unknown.stderr", 1),
            show: Recorded("show-units-systemd-241.txt"),
        }
    )
    document = await collect_checked(make(SystemctlPlugin, runner=runner, units=["nginx.service"]))
    assert sorted(document["failed_units"]) == ["nut-monitor.service", "restic-backup.service"]
    assert document["failed_units"]["restic-backup.service"]["description"] == (
        "Nightly restic backup to the NAS"
    )
    # A local-time stamp is not turned into a wrong Unix time.
    assert document["units"]["nginx.service"] == {
        "load": "loaded",
        "active": "active",
        "sub": "running",
        "restarts": 0,
    }


@pytest.mark.parametrize(
    ("stderr", "error", "message"),
    [
        ("not-booted.stderr", DependencyMissingError, "systemd is not the init system"),
        ("no-bus.stderr", PluginNotReadyError, "cannot reach systemd: Failed to connect to bus"),
    ],
)
async def test_recorded_systemctl_cannot_operate(
    stderr: str, error: type[Exception], message: str
) -> None:
    plugin = make(SystemctlPlugin, runner=recorded({LIST_JSON: Recorded("", stderr, 1)}))
    with pytest.raises(error, match=message):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert message in health.message


async def test_systemctl_missing() -> None:
    plugin = make(SystemctlPlugin, runner=FakeRunner("systemctl", {}))
    with pytest.raises(DependencyMissingError, match="systemctl is not installed"):
        await plugin.collect_data()
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY
