"""An idle hub loads only what it uses: no client library of a plugin it does not run.

Each check runs a fresh interpreter, because this test process has imported
everything already. The heavy modules listed here are the ones the serve path
used to import on every start (issue 13): SSH and crypto, every plugin's client
library, Alembic and Mako, the CLI's rich stack, Apprise and httpx; then Jinja2
(the dashboard builds its templates on the first page), ``referencing`` and its
``attrs``/``rpds`` (only a plugin's JSON Schema config needs them) and
``websockets`` (the hub serves no WebSocket), and SQLAlchemy's PostgreSQL
dialect on SQLite (it imports every PostgreSQL driver adapter SQLAlchemy has).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from unity.cli.root import command_of
from unity.settings import DEFAULT_AUTOENABLE
from unity.storage.db import Database, alembic_config, shipped_head

HEAVY = (
    "aiomqtt",
    "alembic",
    "apprise",
    "asyncmy",
    "asyncpg",
    "asyncssh",
    "attr",
    "attrs",
    "cryptography",
    "dns",
    "httpx",
    "jinja2",
    "jsonschema",
    "mako",
    "paho",
    "pygments",
    "redis",
    "referencing",
    "rich",
    "rpds",
    "sqlalchemy.dialects.postgresql",
    "websockets",
)
# Prints the heavy modules loaded, as the interpreter exits.
_REPORT = (
    "import atexit, json, sys\n"
    f"HEAVY = {HEAVY!r}\n"
    "atexit.register(lambda: print('LOADED=' + json.dumps(sorted({h for h in HEAVY "
    "for m in list(sys.modules) if m == h or m.startswith(h + '.')})), flush=True))\n"
)


# uvicorn re-raises SIGTERM once it has shut down; exiting from it lets the report print.
_SERVE = (
    "import signal\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "sys.argv = ['unity', 'serve']\n"
    "from unity.cli.root import run\n"
    "run()\n"
)


def _loaded(stdout: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith("LOADED="))
    return list(json.loads(line.removeprefix("LOADED=")))


def _python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_app_loads_no_heavy_module() -> None:
    stdout = _python(
        _REPORT + "import unity.app, unity.server, unity.cli.serve\n"
        "from unity_catalogue import BUILTIN_PLUGINS\n"
    )
    assert _loaded(stdout) == []


def test_the_full_cli_still_loads_its_rich_tables() -> None:
    # The check above would pass if the report were broken; this one would not.
    stdout = _python(_REPORT + "import unity.cli.main\n")
    assert "rich" in _loaded(stdout)


def test_the_command_word_is_found_past_global_options() -> None:
    assert command_of(["serve", "--port", "9000"]) == "serve"
    assert command_of(["--url", "http://hub:8765", "serve"]) == "serve"
    assert command_of(["--token", "serve", "plugins", "list"]) == "plugins"
    assert command_of(["--url=http://hub:8765", "--version"]) is None
    assert command_of([]) is None


def test_the_migration_files_name_the_head_alembic_finds() -> None:
    assert shipped_head() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_a_database_behind_the_head_is_still_migrated(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'unity.db'}")
    try:
        await db.upgrade("0001")
        await db.upgrade()
    finally:
        await db.dispose()
    with sqlite3.connect(tmp_path / "unity.db") as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (shipped_head(),)
        ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _successful_runs(database: Path) -> set[str]:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as raw:
            rows = raw.execute(
                "SELECT DISTINCT plugin_id FROM plugin_executions WHERE status = 'success'"
            ).fetchall()
    except sqlite3.OperationalError:
        return set()
    return {plugin for (plugin,) in rows}


@pytest.mark.timeout(120)
def test_unity_serve_with_the_local_plugins_loads_no_heavy_module(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNITY_")}
    env.update(
        UNITY_DATA_DIR=str(tmp_path),
        UNITY_HOST="127.0.0.1",
        UNITY_PORT=str(port),
        UNITY_SCHEDULER_JITTER="0",
        UNITY_LOG_LEVEL="WARNING",
    )
    # The schema is current, as on every start but the first.
    _python("from unity.cli.main import app; app(['db', 'upgrade'])", env=env)
    hub = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _REPORT + _SERVE,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (
            _ready(port) and _successful_runs(tmp_path / "unity.db") >= set(DEFAULT_AUTOENABLE)
        ):
            assert hub.poll() is None, hub.communicate()[1]
            assert time.monotonic() < deadline, "the hub did not run its local plugins in 60 s"
            time.sleep(0.1)
    finally:
        hub.send_signal(signal.SIGTERM)
        stdout, stderr = hub.communicate(timeout=60)
    assert hub.returncode == 0, stderr
    assert _loaded(stdout) == []
