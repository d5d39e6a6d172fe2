"""Real hub processes for end-to-end tests: `unity serve` on a free port."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

__all__ = ["TOKEN_RE", "Hub", "free_port", "hub_env", "soft_fd_limit", "wait_until"]

TOKEN_RE = re.compile(r"unity_[a-z0-9]{12}_[A-Za-z0-9_-]{43}")
UNITY = Path(sys.executable).with_name("unity")


def pip_install_into(package: Path, target: Path) -> None:
    """Install a plugin package (no dependencies) into a folder, as pip --target does."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def hub_env(tmp_path: Path, database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a test hub: its own data dir and port, no plugins enabled."""
    env = {
        **os.environ,
        "UNITY_DATA_DIR": str(tmp_path / "data"),
        "UNITY_DATABASE_URL": database_url,
        "UNITY_PORT": str(free_port()),
        "UNITY_AUTOENABLE": "[]",
        "UNITY_HOSTNAME": "e2e-host",
        "UNITY_CONFIG_FILE": str(tmp_path / "absent.toml"),
    }
    env.update({f"UNITY_{name.upper()}": value for name, value in settings.items()})
    return env


def soft_fd_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` lowering the child's soft descriptor limit (the hard one stays)."""

    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    return apply


class Hub:
    """A `unity serve` subprocess with its log captured to a file."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        args: tuple[str, ...] = (),
        *,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.env = env
        self.log = log
        self.args = args
        self.url = f"http://127.0.0.1:{env['UNITY_PORT']}"
        self.port = int(env["UNITY_PORT"])
        self.preexec = preexec
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(UNITY), "serve", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"hub did not answer in time:\n{self.log.read_text()}")

    def stop(self) -> None:
        """SIGTERM, then a clean shutdown (uvicorn re-raises the signal on exit)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        assert code in (0, -signal.SIGTERM), code
        assert self.log.read_text().rstrip().endswith(("Finished server process", "]"))
        assert "Application shutdown complete" in self.log.read_text()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or shut down."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None

    def rss(self) -> int:
        """Resident memory of the hub process, in bytes."""
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    @property
    def admin_token(self) -> str:
        """The admin token the first start printed."""
        tokens = sorted(set(TOKEN_RE.findall(self.log.read_text())))
        assert len(tokens) == 1, "the first start prints exactly one admin token"
        return tokens[0]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )


def wait_until(predicate: object, timeout: float = 30, interval: float = 0.2) -> None:
    """Poll ``predicate()`` until it is true; fail after ``timeout`` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
