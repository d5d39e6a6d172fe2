"""What a hub or an agent says about its machine."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

import psutil

from unity_catalogue.platform import distribution, host_platform


def test_host_platform_describes_this_machine() -> None:
    facts = host_platform(agent_version="1.2.3")
    assert facts.hostname == socket.gethostname()
    assert host_platform("nas.lan").hostname == "nas.lan"
    assert facts.os == f"{platform.system()} {platform.release()}"
    assert facts.architecture == platform.machine()
    assert facts.cpu_count == os.cpu_count()
    assert facts.memory_bytes == psutil.virtual_memory().total
    assert facts.agent_version == "1.2.3"
    assert facts.python == platform.python_version()


def test_distribution_reads_os_release(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text(
        'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
    )
    assert distribution((tmp_path / "missing", release)) == "Debian GNU/Linux 12 (bookworm)"
    release.write_text("# a comment\nNAME=Alpine\nVERSION_ID=3.20.1\n")
    assert distribution((release,)) == "Alpine 3.20.1"
    assert distribution((tmp_path / "missing",)) == ""
