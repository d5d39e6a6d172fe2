"""A plugin package installed while the hub runs is found without a restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.processes import Hub, hub_env, pip_install_into, wait_until

EXAMPLE = Path(__file__).parents[2] / "examples" / "uptime-plugin"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder on the hub's import path, standing in for its site-packages."""
    folder = tmp_path / "site"
    folder.mkdir()
    return folder


@pytest.fixture
def hub(tmp_path: Path, site: Path) -> Iterator[Hub]:
    env = hub_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'unity.db'}")
    env["PYTHONPATH"] = str(site)
    instance = Hub(env, tmp_path / "hub.log")
    instance.start()
    yield instance
    if instance.proc is not None:
        instance.proc.kill()
        instance.proc.wait()


@pytest.mark.e2e
def test_a_package_installed_while_running_is_found_by_a_rescan(hub: Hub, site: Path) -> None:
    with hub.client() as client:
        assert client.get("/api/plugins/v2/uptime").status_code == 404
        nothing = client.post("/api/plugins/v2/rescan")
        assert nothing.status_code == 200, nothing.text
        assert nothing.json() == {"added": [], "load_failures": []}

        pip_install_into(EXAMPLE, site)
        found = client.post("/api/plugins/v2/rescan").json()
        assert found["added"] == ["uptime"]
        assert found["load_failures"] == []
        detail = client.get("/api/plugins/v2/uptime").json()
        assert detail["enabled"] is False, "a new plugin waits to be enabled"
        assert client.post("/api/plugins/v2/uptime/enable").status_code == 200
        run = client.post("/api/plugins/v2/uptime/execute").json()
        assert run["status"] == "success", run
        assert run["data"]["uptime"] > 0
        # Known plugins are not loaded twice.
        assert client.post("/api/plugins/v2/rescan").json()["added"] == []

        listed = client.get("/api/plugins/v2").json()["items"]
        assert "uptime" in {p["id"] for p in listed}
    log = hub.log.read_text()
    assert "found new plugin uptime" in log


@pytest.mark.e2e
def test_reload_mode_picks_up_a_new_package_by_itself(tmp_path: Path, site: Path) -> None:
    """``unity serve --reload`` watches where packages are installed (site
    directories and PYTHONPATH folders) and rescans when one lands."""
    env = hub_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'unity.db'}")
    env["PYTHONPATH"] = str(site)
    hub = Hub(env, tmp_path / "hub.log", ("--reload",))
    hub.start()
    try:
        with hub.client() as client:
            assert client.get("/api/plugins/v2/uptime").status_code == 404
            pip_install_into(EXAMPLE, site)
            wait_until(lambda: client.get("/api/plugins/v2/uptime").status_code == 200)
        assert "found newly installed plugin uptime" in hub.log.read_text()
    finally:
        hub.stop()


@pytest.mark.e2e
def test_the_cli_rescans(hub: Hub, site: Path) -> None:
    pip_install_into(EXAMPLE, site)
    unity = Path(sys.executable).with_name("unity")
    env = {**hub.env, "UNITY_URL": hub.url, "UNITY_TOKEN": hub.admin_token}
    answer = subprocess.run(
        [str(unity), "plugins", "rescan"], env=env, capture_output=True, text=True, check=True
    )
    assert "New plugins: uptime" in answer.stdout
    again = subprocess.run(
        [str(unity), "plugins", "rescan"], env=env, capture_output=True, text=True, check=True
    )
    assert "No new plugins." in again.stdout
