"""The ``unity`` CLI, run in-process with typer's runner against real databases
(SQLite and PostgreSQL) and a real hub listening on loopback (see conftest)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import Hub, Invoke
from tests.support.sample_plugins import CounterPlugin
from unity.cli.db import shown_url
from unity.cli.output import format_interval, relative_time
from unity.credentials import load_keyring, sealing
from unity.settings import Settings
from unity.storage import registry
from unity.storage.db import Database

SAMPLE_IDS = {
    "counter",
    "failing",
    "auth-failing",
    "hanging",
    "blocking",
    "configured",
    "json-schema",
}


def as_admin(hub: Hub, *args: str) -> list[str]:
    return ["--url", hub.url, "--token", hub.admin_token, *args]


def as_reader(hub: Hub, *args: str) -> list[str]:
    return ["--url", hub.url, "--token", hub.read_token, *args]


def json_out(cli: Invoke, *args: str) -> Any:
    """Run a ``--json`` command; stdout must be exactly one JSON document."""
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored_config(settings: Settings, plugin_id: str) -> dict[str, Any]:
    """The stored config, sealed secrets opened (a secret is never stored plain)."""

    async def read() -> dict[str, Any]:
        db = Database(settings.effective_database_url)
        try:
            async with db.session() as session:
                row = await registry.get_plugin(session, plugin_id)
                assert row is not None
                assert not isinstance(row.config.get("password"), str), "stored plain"
                keyring = load_keyring(settings, create=False)
                return sealing.open_config(keyring, plugin_id, row.config)
        finally:
            await db.dispose()

    return asyncio.run(read())


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# -- the command tree -------------------------------------------------------------


def test_help_lists_the_command_groups(cli: Invoke) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for name in ("serve", "db", "token", "plugins", "--url", "--token"):
        assert name in result.stdout


def test_serve_help_shows_its_options(cli: Invoke) -> None:
    result = cli("serve", "--help")
    assert result.exit_code == 0
    for option in ("--host", "--port", "--reload"):
        assert option in result.stdout


def test_plugins_help_lists_its_commands(cli: Invoke) -> None:
    result = cli("plugins", "--help")
    for name in ("list", "info", "enable", "disable", "run", "health", "config"):
        assert name in result.stdout


def test_a_renamed_group_still_works_with_a_one_line_notice(cli: Invoke, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    old, new = cli("plugin", "check", missing), cli("author", "check", missing)
    assert old.exit_code == new.exit_code == 1
    notice = "`unity plugin` is now `unity author`; the old name will go away.\n"
    assert old.stderr == notice + new.stderr
    assert old.stdout == new.stdout
    listed = cli("--help").stdout
    assert " author " in listed
    assert " plugin " not in listed


def test_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("unity ")


def test_usage_errors_exit_2(cli: Invoke) -> None:
    assert cli("token", "create", "--scope", "root").exit_code == 2
    assert cli("token", "create", "--expires-days", "0").exit_code == 2
    assert cli("serve", "--port", "70000").exit_code == 2


# -- db ---------------------------------------------------------------------------


def test_db_upgrade_creates_the_schema_in_a_new_sqlite_file(cli: Invoke, tmp_path: Path) -> None:
    database = tmp_path / "fresh" / "hub.db"
    result = cli("db", "upgrade", env={"UNITY_DATABASE_URL": f"sqlite:///{database}"})
    assert result.exit_code == 0, result.output
    assert str(database) in result.stdout
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"plugins", "api_tokens", "alembic_version"} <= tables


def test_db_upgrade_without_a_url_uses_the_data_dir(cli: Invoke, tmp_path: Path) -> None:
    result = cli("db", "upgrade", env={"UNITY_DATABASE_URL": None})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "unity.db").is_file()


def test_db_upgrade_is_idempotent(cli: Invoke) -> None:
    for _ in range(2):
        result = cli("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert "up to date" in result.stdout


def test_db_errors_exit_1_and_hide_the_password(cli: Invoke, closed_port: int) -> None:
    url = f"postgresql://unity:hunter2@127.0.0.1:{closed_port}/unity"
    result = cli("db", "upgrade", env={"UNITY_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "database error on postgresql+asyncpg://unity:***@127.0.0.1" in result.stderr
    assert "hunter2" not in result.output


def test_shown_url_hides_the_password() -> None:
    shown = shown_url(Database("postgresql+asyncpg://unity:hunter2@db.lan/unity"))
    assert shown == "postgresql+asyncpg://unity:***@db.lan/unity"


def test_invalid_settings_are_a_clear_error(cli: Invoke) -> None:
    result = cli("db", "upgrade", env={"UNITY_RETENTION_DAYS": "soon"})
    assert result.exit_code == 1
    assert "settings are invalid" in result.stderr
    assert "retention_days" in result.stderr


# -- tokens (on SQLite and PostgreSQL) ---------------------------------------------


def test_token_create_prints_a_working_token_once(cli: Invoke, hub: Hub) -> None:
    result = cli("token", "create", "--scope", "admin", "--name", "laptop")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("unity_")
    assert "cannot be shown again" in result.stderr
    assert token not in result.stderr
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.put(
        f"{hub.url}/api/plugins/v2/counter/config", json={}, headers=headers
    ).is_success

    token_id = token.split("_")[1]
    revoked = cli("token", "revoke", token_id)
    assert revoked.exit_code == 0, revoked.output
    answer = httpx.get(f"{hub.url}/api/plugins/v2", headers=headers)
    assert answer.status_code == 401


def test_token_create_json(cli: Invoke) -> None:
    default = json_out(cli, "token", "create")
    assert set(default) == {"id", "name", "scope", "token", "expires_at"}
    assert default["name"] == "cli"
    assert default["scope"] == "read"
    assert default["expires_at"] is None
    assert default["token"].startswith(f"unity_{default['id']}_")

    expiring = json_out(cli, "token", "create", "--expires-days", "7", "--scope", "admin")
    expires_at = datetime.fromisoformat(expiring["expires_at"])
    assert expires_at - datetime.now(UTC) == pytest.approx(
        timedelta(days=7), abs=timedelta(minutes=1)
    )
    assert expiring["scope"] == "admin"


def test_enrollment_token_with_takeover_hands_an_external_id_over(cli: Invoke, hub: Hub) -> None:
    metadata = {"id": "nas-temp", "name": "NAS", "version": "1.0.0"}

    def register(token: str) -> httpx.Response:
        return httpx.post(
            f"{hub.url}/api/plugins/v2/register",
            json={"metadata": metadata, "hostname": "nas"},
            headers={"Authorization": f"Bearer {token}"},
        )

    first = json_out(cli, "token", "create", "--enroll")
    assert first["takeover"] is None
    assert register(first["token"]).status_code == 201
    refused = register(json_out(cli, "token", "create", "--enroll")["token"])
    assert refused.status_code == 409
    assert "--takeover" in refused.json()["error"]["message"]

    unknown = cli("token", "create", "--enroll", "--takeover", "nope")
    assert unknown.exit_code == 1
    assert "no external plugin with id 'nope'" in unknown.output
    assert cli("token", "create", "--takeover", "nas-temp").exit_code == 2
    handover = cli("token", "create", "--enroll", "--takeover", "nas-temp")
    assert handover.exit_code == 0, handover.output
    assert "takes over plugin 'nas-temp'" in handover.stderr
    assert register(handover.stdout.strip()).status_code == 201


def test_token_list_never_shows_secrets(cli: Invoke) -> None:
    kept = json_out(cli, "token", "create", "--name", "kept")
    gone = json_out(cli, "token", "create", "--name", "gone", "--scope", "admin")
    assert cli("token", "revoke", gone["id"]).exit_code == 0

    live = json_out(cli, "token", "list")
    assert [t["id"] for t in live] == [kept["id"]]
    assert set(live[0]) == {
        "id",
        "name",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    every = json_out(cli, "token", "list", "--all")
    assert {t["id"] for t in every} == {kept["id"], gone["id"]}
    assert next(t for t in every if t["id"] == gone["id"])["revoked_at"] is not None

    table = cli("token", "list", "--all")
    assert table.exit_code == 0
    for text in (kept["id"], gone["id"], "kept", "gone", "LAST USED", "REVOKED"):
        assert text in table.stdout
    # Last used a moment ago: "just now", or a few seconds on a loaded machine.
    assert re.search(r"just now|\b\d+s ago", table.stdout), table.stdout
    for output in (table.stdout, json.dumps(every)):
        for issued in (kept, gone):
            assert issued["token"].split("_", 2)[2] not in output


def test_token_revoke_of_an_unknown_or_revoked_token_exits_1(cli: Invoke) -> None:
    issued = json_out(cli, "token", "create")
    assert cli("token", "revoke", issued["id"]).exit_code == 0
    for token_id in (issued["id"], "nosuchtoken0"):
        result = cli("token", "revoke", token_id)
        assert result.exit_code == 1
        assert f"no live token with id {token_id!r}" in result.stderr


def test_token_list_when_there_are_none(cli: Invoke) -> None:
    assert json_out(cli, "token", "list") == []
    result = cli("token", "list")
    assert result.exit_code == 0
    assert "unity token create" in result.stderr


# -- plugins, over HTTP against a running hub ---------------------------------------


def test_plugins_list_table_and_json(cli: Invoke, hub: Hub) -> None:
    result = cli(*as_reader(hub, "plugins", "list"))
    assert result.exit_code == 0, result.output
    for text in ("ID", "CATEGORY", "ENABLED", "STATE", "HEALTH", "LAST RUN", "INTERVAL"):
        assert text in result.stdout
    for plugin_id in SAMPLE_IDS:
        assert plugin_id in result.stdout
    assert "1m" in result.stdout  # the samples' 60-second interval
    assert result.stderr == ""

    listed = json_out(cli, *as_reader(hub, "plugins", "list"))
    assert {p["id"] for p in listed["items"]} == SAMPLE_IDS
    assert listed["load_failures"] == []


class SyncCollector(CounterPlugin):
    """Broken on purpose: ``collect_data`` must be async, so the loader skips it."""

    def collect_data(self) -> dict[str, Any]:  # type: ignore[override]
        return {}


@pytest.mark.parametrize("plugin_classes", [[CounterPlugin, SyncCollector]])
def test_plugins_list_warns_about_load_failures(cli: Invoke, hub: Hub) -> None:
    result = cli(*as_reader(hub, "plugins", "list"))
    assert result.exit_code == 0, result.output
    assert "counter" in result.stdout
    assert "Warning: 1 plugin(s) failed to load" in result.stderr
    assert "must be an async method" in result.stderr
    listed = json_out(cli, *as_reader(hub, "plugins", "list"))
    assert [p["id"] for p in listed["items"]] == ["counter"]
    assert len(listed["load_failures"]) == 1


def test_enable_then_list_shows_it_enabled(cli: Invoke, hub: Hub) -> None:
    result = cli(*as_admin(hub, "plugins", "enable", "counter"))
    assert result.exit_code == 0, result.output
    assert "Enabled counter" in result.stdout

    enabled = json_out(cli, *as_admin(hub, "plugins", "list", "--enabled"))
    assert [p["id"] for p in enabled["items"]] == ["counter"]
    disabled = json_out(cli, *as_admin(hub, "plugins", "list", "--disabled"))
    assert {p["id"] for p in disabled["items"]} == SAMPLE_IDS - {"counter"}
    table = cli(*as_admin(hub, "plugins", "list")).stdout
    counter_line = next(line for line in table.splitlines() if line.startswith("counter"))
    assert "yes" in counter_line

    result = cli(*as_admin(hub, "plugins", "disable", "counter", "--json"))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["enabled"] is False


def test_list_filters_by_category_and_external(cli: Invoke, hub: Hub) -> None:
    assert json_out(cli, *as_admin(hub, "plugins", "list", "--category", "system"))["items"] == []
    assert json_out(cli, *as_admin(hub, "plugins", "list", "--external"))["items"] == []
    custom = json_out(cli, *as_admin(hub, "plugins", "list", "--category", "custom"))
    assert {p["id"] for p in custom["items"]} == SAMPLE_IDS
    empty = cli(*as_admin(hub, "plugins", "list", "--category", "system"))
    assert empty.exit_code == 0
    assert "No plugins match" in empty.stderr


def test_plugins_info(cli: Invoke, hub: Hub) -> None:
    result = cli(*as_reader(hub, "plugins", "info", "counter"))
    assert result.exit_code == 0, result.output
    for text in ("Counter", "test plugin counter", "disks.*.used", "bytes", "never"):
        assert text in result.stdout

    detail = json_out(cli, *as_reader(hub, "plugins", "info", "counter"))
    assert detail["id"] == "counter"
    assert detail["metadata"]["id"] == "counter"


def test_info_of_an_unknown_plugin_exits_1(cli: Invoke, hub: Hub) -> None:
    result = cli(*as_reader(hub, "plugins", "info", "nope"))
    assert result.exit_code == 1
    assert "no plugin with id 'nope'" in result.stderr
    assert result.stdout == ""


def test_health_checks_now_and_exits_by_the_answer(cli: Invoke, hub: Hub) -> None:
    ok = json_out(cli, *as_admin(hub, "plugins", "health", "counter"))
    assert ok["status"] == "healthy"
    assert ok["checked_at"] is not None, "the check ran now"
    cached = json_out(cli, *as_admin(hub, "plugins", "health", "counter", "--cached"))
    assert cached["checked_at"] == ok["checked_at"]
    text = cli(*as_admin(hub, "plugins", "health", "counter"))
    assert text.exit_code == 0
    assert "counter: healthy" in text.stdout
    slow = cli(
        *as_admin(hub, "plugins", "config", "set", "configured", "url=http://x", "mode=slow")
    )
    assert slow.exit_code == 0, slow.output
    degraded = cli(*as_admin(hub, "plugins", "health", "configured"))
    assert degraded.exit_code == 1
    assert "degraded" in degraded.stdout
    assert "running in slow mode" in degraded.stdout


def test_run_shows_the_collected_document(cli: Invoke, hub: Hub) -> None:
    result = cli(*as_admin(hub, "plugins", "run", "counter"))
    assert result.exit_code == 0, result.output
    assert "counter: success in" in result.stdout
    assert '"value": 42.5' in result.stdout

    run = json_out(cli, *as_admin(hub, "plugins", "run", "counter"))
    assert run["status"] == "success"
    assert run["data"]["runs"] == 2
    assert run["data"]["value"] == 42.5

    listed = cli(*as_admin(hub, "plugins", "list")).stdout
    counter_line = next(line for line in listed.splitlines() if line.startswith("counter"))
    assert "never" not in counter_line  # the last run is shown relative, e.g. "just now"


def test_a_failed_run_shows_the_error_and_exits_1(cli: Invoke, hub: Hub) -> None:
    result = cli(*as_admin(hub, "plugins", "run", "failing"))
    assert result.exit_code == 1
    assert "failing: failed" in result.stdout
    assert "the service answered 500" in result.stderr


def test_config_set_with_an_invalid_value_saves_nothing(cli: Invoke, hub: Hub) -> None:
    assert (
        cli(*as_admin(hub, "plugins", "config", "set", "configured", "url=http://nas")).exit_code
        == 0
    )
    before = json_out(cli, *as_admin(hub, "plugins", "config", "get", "configured"))

    result = cli(
        *as_admin(hub, "plugins", "config", "set", "configured", "port=99999", "mode=turbo")
    )
    assert result.exit_code == 1
    assert "invalid config for plugin 'configured'" in result.stderr
    field_lines = [line.strip() for line in result.stderr.splitlines()]
    assert any(line.startswith("port: ") for line in field_lines)
    assert any(line.startswith("mode: ") for line in field_lines)
    assert json_out(cli, *as_admin(hub, "plugins", "config", "get", "configured")) == before

    replaced = cli(*as_admin(hub, "plugins", "config", "set", "configured", "port=81", "--replace"))
    assert replaced.exit_code == 1
    assert "url: Field required" in replaced.stderr


def test_config_set_merges(cli: Invoke, hub: Hub, settings: Settings) -> None:
    first = cli(
        *as_admin(
            hub, "plugins", "config", "set", "configured", "url=http://nas", "password=s3cret"
        )
    )
    assert first.exit_code == 0, first.output

    merged = json_out(cli, *as_admin(hub, "plugins", "config", "set", "configured", "port=9090"))
    assert merged.keys() == {"url", "password", "port"}
    assert (merged["url"], merged["port"]) == ("http://nas", 9090)
    assert json_out(cli, *as_reader(hub, "plugins", "config", "get", "configured")) == merged
    assert stored_config(settings, "configured")["password"] == "s3cret"

    table = cli(*as_reader(hub, "plugins", "config", "get", "configured"))
    assert table.exit_code == 0
    for text in ("FIELD", "url", '"http://nas"', "9090", '"fast" (default)'):
        assert text in table.stdout


def test_secret_fields_read_back_masked(cli: Invoke, hub: Hub, settings: Settings) -> None:
    args = ("plugins", "config", "set", "configured", "url=http://nas", "password=s3cret")
    first = cli(*as_admin(hub, *args))
    assert first.exit_code == 0, first.output
    assert "s3cret" not in first.output
    config = json_out(cli, *as_reader(hub, "plugins", "config", "get", "configured"))
    assert config["password"] == "********"
    merged = json_out(cli, *as_admin(hub, "plugins", "config", "set", "configured", "port=1"))
    assert merged["password"] == "********"
    assert stored_config(settings, "configured")["password"] == "s3cret"


def test_config_values_are_json_when_they_parse(cli: Invoke, hub: Hub) -> None:
    config = json_out(
        cli, *as_admin(hub, "plugins", "config", "set", "json-schema", "count=5", 'hosts=["a"]')
    )
    assert config == {"count": 5, "hosts": ["a"]}
    config = json_out(
        cli,
        *as_admin(hub, "plugins", "config", "set", "configured", "url=http://x", "port=81"),
    )
    assert config == {"url": "http://x", "port": 81}

    number = cli(*as_admin(hub, "plugins", "config", "set", "configured", "url=8080"))
    assert number.exit_code == 1
    assert "url: Input should be a valid string" in number.stderr
    quoted = json_out(cli, *as_admin(hub, "plugins", "config", "set", "configured", 'url="8080"'))
    assert quoted["url"] == "8080"


def test_config_set_from_a_file_with_replace(cli: Invoke, hub: Hub, tmp_path: Path) -> None:
    assert (
        cli(
            *as_admin(hub, "plugins", "config", "set", "configured", "url=http://a", "port=1")
        ).exit_code
        == 0
    )
    path = tmp_path / "configured.json"
    path.write_text(json.dumps({"url": "http://b", "mode": "slow"}))
    config = json_out(
        cli,
        *as_admin(hub, "plugins", "config", "set", "configured", "--file", str(path), "--replace"),
    )
    assert config == {"url": "http://b", "mode": "slow"}
    given_wins = json_out(
        cli,
        *as_admin(hub, "plugins", "config", "set", "configured", "-f", str(path), "mode=fast"),
    )
    assert given_wins == {"url": "http://b", "mode": "fast"}


def test_config_set_usage_errors_exit_2(cli: Invoke, hub: Hub, tmp_path: Path) -> None:
    bad_file = tmp_path / "list.json"
    bad_file.write_text("[1, 2]")
    for args in (
        ("configured",),
        ("configured", "no-equals-sign"),
        ("configured", "=1"),
        ("configured", "--file", str(bad_file)),
        ("configured", "--file", str(tmp_path / "missing.json")),
    ):
        result = cli(*as_admin(hub, "plugins", "config", "set", *args))
        assert result.exit_code == 2, (args, result.output)


def test_enabling_an_unconfigured_plugin_shows_the_missing_fields(cli: Invoke, hub: Hub) -> None:
    result = cli(*as_admin(hub, "plugins", "enable", "configured"))
    assert result.exit_code == 1
    assert "url: Field required" in result.stderr


def test_a_read_token_gets_a_clear_403(cli: Invoke, hub: Hub) -> None:
    assert cli(*as_reader(hub, "plugins", "list")).exit_code == 0
    result = cli(*as_reader(hub, "plugins", "enable", "counter"))
    assert result.exit_code == 1
    assert "this token's scope is 'read'; 'admin' needed" in result.stderr
    assert "unity token create --scope admin" in result.stderr
    assert json_out(cli, *as_reader(hub, "plugins", "info", "counter"))["enabled"] is False


def test_a_bad_token_gets_a_clear_401(cli: Invoke, hub: Hub) -> None:
    result = cli("--url", hub.url, "--token", "unity_nope", "plugins", "list")
    assert result.exit_code == 1
    assert "credential is invalid, expired or revoked" in result.stderr
    assert "--token or UNITY_TOKEN" in result.stderr


def test_a_missing_token_says_how_to_get_one(cli: Invoke, hub: Hub) -> None:
    result = cli("--url", hub.url, "plugins", "list")
    assert result.exit_code == 1
    assert "no hub token" in result.stderr
    assert "unity token create --scope admin" in result.stderr


def test_a_wrong_url_says_the_hub_is_not_reachable(cli: Invoke, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    result = cli("--url", url, "--token", "unity_x", "plugins", "list")
    assert result.exit_code == 1
    assert f"the hub is not reachable at {url}" in result.stderr
    assert "unity serve" in result.stderr
    assert result.stdout == ""


def test_url_and_token_come_from_the_environment(cli: Invoke, hub: Hub) -> None:
    by_url = cli("plugins", "list", env={"UNITY_URL": hub.url, "UNITY_TOKEN": hub.read_token})
    assert by_url.exit_code == 0, by_url.output
    by_settings = cli(
        "plugins", "list", env={"UNITY_PORT": str(hub.port), "UNITY_TOKEN": hub.read_token}
    )
    assert by_settings.exit_code == 0, by_settings.output


def test_a_url_without_scheme_is_a_clear_error(cli: Invoke, hub: Hub) -> None:
    result = cli("--url", hub.url.removeprefix("http://"), "--token", "x", "plugins", "list")
    assert result.exit_code == 1
    assert "must start with http://" in result.stderr


def test_a_server_that_is_not_a_hub(cli: Invoke, hub: Hub) -> None:
    result = cli("--url", f"{hub.url}/nothing-here", "--token", hub.read_token, "plugins", "list")
    assert result.exit_code == 1
    assert f"{hub.url}/nothing-here has no /nothing-here/api/plugins/v2" in result.stderr
    assert "is it the address of a Unity hub?" in result.stderr


# -- serve, as a real process -----------------------------------------------------


@pytest.mark.e2e
def test_serve_runs_the_hub_until_interrupted(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "UNITY_DATA_DIR": str(tmp_path),
        "UNITY_DATABASE_URL": "",
        "UNITY_AUTOENABLE": "[]",
        "UNITY_LOG_LEVEL": "info",
    }
    env.pop("UNITY_CONFIG_FILE", None)
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "unity.cli.main", "serve", "--port", str(port), "--reload"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").is_success:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    output = log.read_text()
    assert process.returncode == 0, output
    assert f"on http://127.0.0.1:{port}" in output
    assert "shown only this once" in output  # the bootstrap admin token
    assert "watching" in output  # --reload: the plugin source watcher runs
    assert " INFO    uvicorn.access: " in output  # one concise format for every logger


# -- formatting -------------------------------------------------------------------


def test_relative_time() -> None:
    now = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    assert relative_time(None) == "-"
    assert relative_time(None, empty="never") == "never"
    assert relative_time("2025-01-02T11:59:48Z", now=now) == "12s ago"
    assert relative_time("2025-01-02T11:55:00+00:00", now=now) == "5m ago"
    assert relative_time(datetime(2025, 1, 2, 9, 0), now=now) == "3h ago"
    assert relative_time(now + timedelta(days=7), now=now) == "in 7d"
    assert relative_time(now, now=now) == "just now"


def test_format_interval() -> None:
    assert format_interval(None) == "-"
    assert format_interval(30) == "30s"
    assert format_interval(90) == "90s"
    assert format_interval(300) == "5m"
    assert format_interval(7200) == "2h"
    assert format_interval(0.5) == "0.5s"
