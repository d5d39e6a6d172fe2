"""The ``journalctl`` plugin: the real journalctl on journal files we write, and recorded JSON."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from services_support import (
    FakeRunner,
    Recorded,
    UnprivilegedRunner,
    check_class,
    collect_checked,
    make,
    require_command,
)

from unity_catalogue.journalctl import JournalctlPlugin
from unity_sdk import DependencyMissingError, HealthState

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
FIELDS = "--output-fields=MESSAGE,PRIORITY,UNIT,_SYSTEMD_UNIT,SYSLOG_IDENTIFIER,_COMM"
QUERY = f"journalctl -o json --no-pager --since=-3600s -p err {FIELDS} -n 20000"
BOOT_ID = "8f1c2d3e4b5a49788796a5b4c3d2e1f0"


def export_entry(seconds_ago: float, fields: dict[str, str | bytes], index: int) -> bytes:
    """One entry in the journal export format; bytes values use its binary encoding."""
    now = time.time_ns() // 1000
    lines = [
        f"__CURSOR=s=0;i={index}\n".encode(),
        f"__REALTIME_TIMESTAMP={now - int(seconds_ago * 1e6)}\n".encode(),
        f"__MONOTONIC_TIMESTAMP={1_000_000 + index}\n".encode(),
        f"_BOOT_ID={BOOT_ID}\n".encode(),
    ]
    for key, value in fields.items():
        if isinstance(value, bytes):
            lines.append(key.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n")
        else:
            lines.append(f"{key}={value}\n".encode())
    return b"".join(lines) + b"\n"


# Oldest first, as journald writes them: (seconds ago, fields).
ENTRIES: list[tuple[float, dict[str, str | bytes]]] = [
    (7200, {"PRIORITY": "3", "_SYSTEMD_UNIT": "nginx.service", "MESSAGE": "too old to count"}),
    (900, {"PRIORITY": "2", "SYSLOG_IDENTIFIER": "kernel", "MESSAGE": "EXT4-fs error (sdb1)"}),
    (600, {"PRIORITY": "3", "_SYSTEMD_UNIT": "nginx.service", "MESSAGE": "upstream refused"}),
    (500, {"PRIORITY": "6", "_SYSTEMD_UNIT": "nginx.service", "MESSAGE": "info: not an error"}),
    (400, {"PRIORITY": "3", "_SYSTEMD_UNIT": "nginx.service", "MESSAGE": "x" * 300}),
    (
        300,
        {
            "PRIORITY": "3",
            "_SYSTEMD_UNIT": "init.scope",
            "SYSLOG_IDENTIFIER": "systemd",
            "UNIT": "backup.service",
            "MESSAGE": "Failed to start backup.service.",
        },
    ),
    (200, {"PRIORITY": "3", "_COMM": "restic", "MESSAGE": b"\x1b[31mFatal: no repo\x1b[0m"}),
]


@pytest.fixture
def journal_dir() -> Iterator[Path]:
    """A directory holding a real journal file with ENTRIES, written by systemd-journal-remote."""
    require_command("journalctl")
    if not JOURNAL_REMOTE.exists():
        require_command("systemd-journal-remote")
    path = Path(tempfile.mkdtemp(prefix="unity-journal-"))
    path.chmod(0o755)
    export = b"".join(export_entry(ago, fields, i) for i, (ago, fields) in enumerate(ENTRIES))
    subprocess.run(
        [str(JOURNAL_REMOTE), f"--output={path}/remote.journal", "-"],
        input=export,
        capture_output=True,
        check=True,
    )
    yield path
    shutil.rmtree(path)


def test_metadata() -> None:
    metadata = check_class(JournalctlPlugin, "journalctl", "system")
    assert metadata.supports_remote
    assert metadata.requires.commands == ["journalctl"]


async def test_real_journal_counts_errors(journal_dir: Path) -> None:
    plugin = make(JournalctlPlugin, directory=str(journal_dir), max_entries=3, message_length=50)
    document = await collect_checked(plugin)
    assert document["window"] == 3600
    assert document["total"] == 5
    assert document["by_priority"] == {"emerg": 0, "alert": 0, "crit": 1, "err": 4, "warning": 0}
    assert document["by_unit"] == {
        "nginx.service": 2,
        "backup.service": 1,
        "kernel": 1,
        "restic": 1,
    }
    assert document["truncated"] == 0
    recent = document["recent"]
    assert [entry["unit"] for entry in recent] == ["restic", "backup.service", "nginx.service"]
    assert recent[0]["message"] == "\x1b[31mFatal: no repo\x1b[0m"
    assert recent[0]["priority"] == "err"
    assert recent[0]["timestamp"] == pytest.approx(time.time() - 200, abs=60)
    assert recent[2]["message"] == "x" * 49 + "…"
    assert (await plugin.health_check()).status is HealthState.HEALTHY


async def test_real_journal_units_window_and_priority(journal_dir: Path) -> None:
    only_nginx = make(JournalctlPlugin, directory=str(journal_dir), units=["nginx.service"])
    assert (await collect_checked(only_nginx))["by_unit"] == {"nginx.service": 2}
    recent_only = make(JournalctlPlugin, directory=str(journal_dir), window=450)
    assert (await collect_checked(recent_only))["total"] == 3
    critical = make(JournalctlPlugin, directory=str(journal_dir), priority="crit", max_entries=0)
    document = await collect_checked(critical)
    assert document["by_unit"] == {"kernel": 1}
    assert document["recent"] == []


async def test_real_journal_without_permission(journal_dir: Path) -> None:
    require_command("setpriv")
    plugin = make(JournalctlPlugin, runner=UnprivilegedRunner(), directory=str(journal_dir))
    with pytest.raises(DependencyMissingError, match="insufficient permissions"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "systemd-journal or adm group" in health.message


async def test_real_system_journal_of_this_machine() -> None:
    require_command("journalctl")
    plugin = make(JournalctlPlugin)
    document = await collect_checked(plugin)
    health = await plugin.health_check()
    if not any(
        Path(p).is_dir() and any(Path(p).rglob("*.journal"))
        for p in ("/var/log/journal", "/run/log/journal")
    ):
        # This container has no journald: zero counts and a health check that says why.
        assert document["total"] == 0
        assert document["by_unit"] == {}
        assert health.status is HealthState.DEGRADED
        assert health.message.startswith("journalctl found no journal files on the target")
    else:
        assert health.status is not HealthState.UNHEALTHY


async def test_recorded_nas_errors() -> None:
    runner = FakeRunner("journalctl", {QUERY: Recorded("errors.jsonl")})
    document = await collect_checked(make(JournalctlPlugin, runner=runner))
    assert document["total"] == 8
    assert document["by_priority"]["crit"] == 1
    assert document["by_priority"]["err"] == 7
    assert document["by_unit"] == {
        "kernel": 2,
        "nginx.service": 2,
        "restic-backup.service": 2,
        "docker.service": 1,
        "smartd.service": 1,
    }
    newest = document["recent"][0]
    assert newest == {
        "unit": "docker.service",
        "priority": "err",
        "message": "",
        "timestamp": 1715593051.0,
    }
    assert document["recent"][1]["unit"] == "restic-backup.service"
    assert document["recent"][2]["message"] == "\x1b[31mFatal: unable to open repo\x1b[0m"
    assert len(document["recent"]) == 8
    assert document["recent"][-1]["unit"] == "smartd.service"
    assert document["recent"][4]["message"].endswith("…")
    assert len(document["recent"][4]["message"]) == 200


@pytest.mark.parametrize(
    ("stderr", "state", "message"),
    [
        ("no-journal-files.stderr", HealthState.DEGRADED, "found no journal files"),
        ("partial-access.stderr", HealthState.DEGRADED, "sees only the hub user's own messages"),
        ("", HealthState.HEALTHY, ""),
    ],
)
async def test_recorded_health(stderr: str, state: HealthState, message: str) -> None:
    probe = "journalctl -n 0 --no-pager"
    runner = FakeRunner("journalctl", {probe: Recorded("no-entries.txt", stderr)})
    health = await make(JournalctlPlugin, runner=runner).health_check()
    assert health.status is state
    assert message in health.message


async def test_recorded_insufficient_permissions() -> None:
    answer = Recorded("", "insufficient-permissions.stderr", 1)
    plugin = make(JournalctlPlugin, runner=FakeRunner("journalctl", {QUERY: answer}))
    with pytest.raises(DependencyMissingError, match="insufficient permissions"):
        await plugin.collect_data()


async def test_journalctl_missing() -> None:
    plugin = make(JournalctlPlugin, runner=FakeRunner("journalctl", {}))
    with pytest.raises(DependencyMissingError, match="journalctl is not installed"):
        await plugin.collect_data()
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY
