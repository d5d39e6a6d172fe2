"""Real hub processes for end-to-end tests: `unity serve` on a free port."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["TOKEN_RE", "Hub", "free_port", "wait_until"]

TOKEN_RE = re.compile(r"unity_[a-z0-9]{12}_[A-Za-z0-9_-]{43}")
UNITY = Path(sys.executable).with_name("unity")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Hub:
    """A `unity serve` subprocess with its log captured to a file."""

    def __init__(self, env: dict[str, str], log: Path, args: tuple[str, ...] = ()) -> None:
        self.env = env
        self.log = log
        self.args = args
        self.url = f"http://127.0.0.1:{env['UNITY_PORT']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(UNITY), "serve", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
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
