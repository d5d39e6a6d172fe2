"""End to end: the real hub refuses oversized bodies without reading them."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from tests.support.processes import Hub, hub_env

MiB = 1024 * 1024
HUGE = 256 * MiB


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One SQLite hub for the module: these tests only talk HTTP to it."""
    folder = tmp_path_factory.mktemp("hub")
    env = hub_env(folder, f"sqlite+aiosqlite:///{folder / 'unity.db'}")
    instance = Hub(env, folder / "hub.log")
    instance.start()
    yield instance
    if instance.proc is not None:
        instance.kill()


class PeakRss:
    """Samples a process's resident memory in the background; ``peak`` is the highest seen."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.peak = hub.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.hub.rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def send_huge_body(port: int, path: str, *, chunked: bool) -> tuple[int, dict[str, str], bytes]:
    """POST a 256 MiB body, stopping as soon as the hub answers; the answer."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}"
    head = f"POST {path} HTTP/1.1\r\nHost: hub\r\n{framing}\r\n\r\n"
    piece = b'{"a": "' + b"x" * (64 * 1024 - 10) + b'"},'
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        sent = 0
        deadline = time.monotonic() + 60
        while sent < HUGE and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                break
            if writable:
                try:
                    sock.sendall(frame)
                except OSError:
                    break
                sent += len(piece)
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in received or not received.endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass
    assert received, f"no answer after {sent} bytes"
    return _response(received)


@pytest.mark.e2e
@pytest.mark.parametrize("chunked", [False, True], ids=["announced", "chunked"])
@pytest.mark.parametrize(
    ("path", "statuses"),
    [("/api/credentials", {401, 413}), ("/api/plugins/v2/some-plugin/health", {401, 413})],
)
def test_a_huge_anonymous_body_is_refused_without_being_read(
    hub: Hub, path: str, statuses: set[int], chunked: bool
) -> None:
    baseline = hub.rss()
    with PeakRss(hub) as memory:
        status, headers, body = send_huge_body(hub.port, path, chunked=chunked)
    grown = (memory.peak - baseline) / MiB
    assert status in statuses, (status, body, f"grew {grown:.0f} MiB")
    assert headers["content-type"] == "application/json"
    assert set(json.loads(body)["error"]) >= {"code", "message"}
    assert grown < 8, f"the hub grew by {grown:.0f} MiB"
