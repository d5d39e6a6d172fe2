"""The upsc plugin: a real NUT upsd with the dummy-ups driver on loopback, and recorded output."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_hardware_common import (
    FIXTURES,
    FakeRunner,
    Reply,
    collect_checked,
    failing,
    health,
    make,
    recorded,
)

from unity_catalogue.upsc import UpscPlugin
from unity_sdk import (
    CollectionError,
    DependencyMissingError,
    HealthState,
    LocalRunner,
    PluginNotReadyError,
)

ID = "upsc"
UPSD = Path("/lib/nut/upsd")
DUMMY_UPS = Path("/lib/nut/dummy-ups")


def plugin_for(reply: Reply, **config: object) -> UpscPlugin:
    return make(UpscPlugin, config, FakeRunner({("upsc", "ups@localhost"): reply}))


# -- recorded output -----------------------------------------------------------


async def test_apc_on_line() -> None:
    plugin = plugin_for(recorded(ID, "apc-back-ups-online.txt"))
    document = await collect_checked(plugin)
    assert document == {
        "ups": {
            "ups": {
                "status": "OL",
                "battery_charge": 100.0,
                "battery_runtime": 2810.0,
                "battery_voltage": 13.5,
                "battery_charge_low": 10.0,
                "battery_runtime_low": 120.0,
                "load": 18.0,
                "nominal_power": 390.0,
                "input_voltage": 232.0,
                "manufacturer": "American Power Conversion",
                "model": "Back-UPS XS 700U",
                "driver": "usbhid-ups",
                "online": 1,
                "on_battery": 0,
                "low_battery": 0,
                "charging": 0,
                "replace_battery": 0,
                "overloaded": 0,
                "flags": ["online"],
            }
        }
    }
    status = await health(plugin)
    assert status.status is HealthState.HEALTHY
    assert status.message == "on line, 100 %, 47 min left"


async def test_eaton_on_battery_is_degraded() -> None:
    plugin = plugin_for(recorded(ID, "eaton-5e-on-battery.txt"))
    ups = (await collect_checked(plugin))["ups"]["ups"]
    assert ups["on_battery"] == 1
    assert ups["online"] == 0
    assert ups["flags"] == ["on_battery", "discharging"]
    assert ups["input_voltage"] == 0.0
    assert ups["output_voltage"] == 229.0
    assert ups["model"] == "5E 1100i"
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert status.message == "on battery, 64 %, 7 min left"


async def test_low_battery_is_unhealthy() -> None:
    plugin = plugin_for(recorded(ID, "eaton-5e-low-battery.txt"))
    ups = (await collect_checked(plugin))["ups"]["ups"]
    assert ups["low_battery"] == 1
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert status.message.startswith("on battery, ")
    assert ": low battery" in status.message


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("data-stale.stderr", PluginNotReadyError, "data stale"),
        ("driver-not-connected.stderr", PluginNotReadyError, "driver not connected"),
    ],
)
async def test_upsd_errors(name: str, error: type[Exception], message: str) -> None:
    plugin = plugin_for(failing(recorded(ID, name).stdout))
    with pytest.raises(error, match=message):
        await plugin.collect_data()
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert message in status.message


async def test_unknown_ups_names_the_known_ones() -> None:
    runner = FakeRunner(
        {
            ("upsc", "garage@nas.lan:3494"): failing(recorded(ID, "unknown-ups.stderr").stdout),
            ("upsc", "-l", "nas.lan:3494"): recorded(ID, "list.txt"),
        }
    )
    plugin = make(UpscPlugin, {"ups": "garage", "host": "nas.lan", "port": 3494}, runner)
    with pytest.raises(CollectionError, match=r"no UPS named 'garage' \(it knows: apc, eaton\)"):
        await plugin.collect_data()


async def test_upsc_missing_and_odd_output() -> None:
    missing = make(UpscPlugin, runner=FakeRunner({}, missing=["upsc"]))
    with pytest.raises(DependencyMissingError, match="not installed"):
        await missing.collect_data()
    odd = plugin_for(Reply("battery.charge: 50\n"))
    with pytest.raises(CollectionError, match=r"no ups\.status"):
        await odd.collect_data()


def test_config_rejects_injection() -> None:
    schema = UpscPlugin().get_metadata().config_schema
    assert isinstance(schema, type)
    with pytest.raises(ValueError, match="pattern"):
        schema.model_validate({"ups": "ups; rm -rf /"})  # type: ignore[attr-defined]


# -- a real upsd on loopback ----------------------------------------------------


@dataclass
class Nut:
    port: int
    device_file: Path
    driver: subprocess.Popen[bytes]
    upsd: subprocess.Popen[bytes]


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(check: object, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def nut() -> Iterator[Nut]:
    """upsd and the dummy-ups driver (NUT 2.8), serving UPS ``apc`` on a free loopback port."""
    _need(shutil.which("upsc") is not None, "NUT's upsc is not installed (scripts/test does)")
    _need(UPSD.exists() and DUMMY_UPS.exists(), "nut-server is not installed (scripts/test does)")
    _need(os.geteuid() == 0, "upsd and its driver must start as root to drop to user nut")
    try:
        nut_user = pwd.getpwnam("nut")
    except KeyError:
        _need(False, "the nut user (created by nut-server) does not exist")
        raise
    root = Path(tempfile.mkdtemp(prefix="unity-nut-"))
    conf, state = root / "etc", root / "state"
    conf.mkdir()
    state.mkdir()
    port = _free_port()
    (conf / "ups.conf").write_text("[apc]\n\tdriver = dummy-ups\n\tport = apc.dev\n")
    (conf / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {port}\n")
    (conf / "upsd.users").write_text("")
    device_file = conf / "apc.dev"
    shutil.copy(FIXTURES / ID / "apc-back-ups-online.txt", device_file)
    for path in (root, conf, state, *conf.iterdir()):
        os.chown(path, nut_user.pw_uid, nut_user.pw_gid)
    root.chmod(0o755)
    env = {**os.environ, "NUT_CONFPATH": str(conf), "NUT_STATEPATH": str(state)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    driver = subprocess.Popen([DUMMY_UPS, "-a", "apc", "-u", "nut", "-F"], **quiet)  # type: ignore[call-overload]
    upsd: subprocess.Popen[bytes] | None = None
    try:
        _wait_for(lambda: (state / "dummy-ups-apc").exists(), "the dummy-ups socket")
        upsd = subprocess.Popen([UPSD, "-u", "nut", "-F"], **quiet)  # type: ignore[call-overload]

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        _wait_for(listening, "upsd to listen")
        yield Nut(port, device_file, driver, upsd)
    finally:
        for process in (upsd, driver):
            if process is not None:
                _stop(process)
        shutil.rmtree(root, ignore_errors=True)


async def _status_becomes(plugin: UpscPlugin, wanted: str) -> dict[str, object]:
    """Collect until upsd reports ``wanted`` (dummy-ups re-reads its file every 2 s)."""
    deadline = time.monotonic() + 20
    while True:
        ups = (await collect_checked(plugin))["ups"]["apc"]
        if ups["status"] == wanted or time.monotonic() > deadline:
            assert ups["status"] == wanted
            return dict(ups)
        await asyncio.sleep(0.5)


async def test_real_upsd_follows_the_ups(nut: Nut) -> None:
    plugin = make(UpscPlugin, {"ups": "apc", "host": "127.0.0.1", "port": nut.port}, LocalRunner())
    ups = await _status_becomes(plugin, "OL")
    assert ups["battery_charge"] == 100.0
    assert ups["battery_runtime"] == 2810.0
    assert ups["load"] == 18.0
    assert ups["input_voltage"] == 232.0
    assert ups["driver"] == "dummy-ups"
    assert (await health(plugin)).status is HealthState.HEALTHY

    shutil.copy(FIXTURES / ID / "eaton-5e-on-battery.txt", nut.device_file)
    ups = await _status_becomes(plugin, "OB DISCHRG")
    assert ups["on_battery"] == 1
    assert ups["battery_charge"] == 64.0
    assert (await health(plugin)).status is HealthState.DEGRADED

    shutil.copy(FIXTURES / ID / "eaton-5e-low-battery.txt", nut.device_file)
    await _status_becomes(plugin, "OB DISCHRG LB")
    assert (await health(plugin)).status is HealthState.UNHEALTHY

    stranger = make(UpscPlugin, {"ups": "garage", "host": "127.0.0.1", "port": nut.port})
    with pytest.raises(CollectionError, match=r"no UPS named 'garage' \(it knows: apc\)"):
        await stranger.collect_data()

    _stop(nut.driver)
    deadline = time.monotonic() + 20
    while "driver not connected" not in (await health(plugin)).message:
        assert time.monotonic() < deadline, "upsd kept answering without its driver"
        await asyncio.sleep(0.5)
    with pytest.raises(PluginNotReadyError, match="driver not connected"):
        await plugin.collect_data()

    _stop(nut.upsd)
    with pytest.raises(PluginNotReadyError, match="cannot reach upsd"):
        await plugin.collect_data()
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert "Connection refused" in status.message
