"""End to end: the real hub against oversized bodies and slow or too many clients."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.processes import Hub, hub_env, soft_fd_limit, wait_until

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


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that start a request and never finish its headers."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Slow: ")
        sockets.append(sock)
    return sockets


def _trickle(sockets: list[socket.socket]) -> None:
    """One more byte of header on each connection: it must not extend the deadline."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.send(b"a")


def _keep_trickling(sockets: list[socket.socket], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        _trickle(sockets)


def _what_the_hub_sent(sock: socket.socket, deadline: float) -> bytes | None:
    """What the hub sent before closing ``sock``; None if it stays open until ``deadline``."""
    received = b""
    try:
        while True:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
    except TimeoutError:
        return None
    except OSError:
        return received


@pytest.mark.e2e
def test_slow_clients_do_not_lock_out_new_ones(tmp_path: Path) -> None:
    """Hundreds of connections trickling their headers, on a hub started with a
    soft limit of 256 descriptors: probes still succeed, and the hub closes
    the slow connections once their time is up."""
    env = hub_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'unity.db'}", header_timeout="4")
    hub = Hub(env, tmp_path / "hub.log", preexec=soft_fd_limit(256))
    hub.start()
    slow = _slow_clients(hub.port, 300)
    try:
        answers = []
        for _ in range(20):
            _trickle(slow)
            try:
                answers.append(httpx.get(f"{hub.url}/healthz", timeout=5).status_code)
            except httpx.TransportError as exc:
                answers.append(type(exc).__name__)
        assert answers == [200] * 20
        # Keep trickling while waiting: the connections close all the same.
        stop = threading.Event()
        trickler = threading.Thread(target=_keep_trickling, args=(slow, stop))
        trickler.start()
        deadline = time.monotonic() + 20
        endings = [_what_the_hub_sent(sock, deadline) for sock in slow]
        stop.set()
        trickler.join()
        assert None not in endings, f"{endings.count(None)} slow connections still open"
        assert {_status(ending) for ending in endings} == {408}
    finally:
        for sock in slow:
            sock.close()
        hub.kill()


def _status(response: bytes) -> int:
    return _response(response)[0] if response else 0


@pytest.mark.e2e
def test_connections_beyond_the_cap_are_503(tmp_path: Path) -> None:
    env = hub_env(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'unity.db'}",
        max_connections="20",
        header_timeout="3",
    )
    hub = Hub(env, tmp_path / "hub.log")
    hub.start()
    slow = _slow_clients(hub.port, 20)
    try:
        refused = httpx.get(f"{hub.url}/healthz", timeout=5)
        assert refused.status_code == 503
        assert refused.headers["retry-after"].isdigit()
        assert refused.json()["error"]["code"] == "unavailable"
        # Once the slow connections have timed out there is room again.
        wait_until(lambda: httpx.get(f"{hub.url}/healthz", timeout=5).status_code == 200)
    finally:
        for sock in slow:
            sock.close()
        hub.kill()


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/api/plugins/v2/some-plugin/health"])
def test_a_stranger_is_refused_before_the_hub_waits_for_the_body(hub: Hub, path: str) -> None:
    """A body announced but never sent: the key is checked first, so the answer
    is 401 at once instead of the body deadline running out."""
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: hub\r\nContent-Length: 1000\r\n\r\n".encode())
        started = time.monotonic()
        sock.settimeout(10)
        try:
            answer = sock.recv(65536)
        except TimeoutError:
            answer = b""
    assert _status(answer) == 401, answer
    assert time.monotonic() - started < 5


@pytest.mark.e2e
def test_a_client_hanging_up_mid_body_leaves_no_error_in_the_log(hub: Hub) -> None:
    path = "/api/plugins/v2/system-info/config"
    with hub.client() as admin:
        before = admin.get(path).json()
        with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
            sock.sendall(
                f"PUT {path} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {hub.admin_token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                '{"interval": '.encode()
            )
            time.sleep(0.5)
        assert admin.get(path).json() == before  # waits for the hub to be done, too
    log = hub.log.read_text()
    assert " ERROR " not in log, log
    assert "Traceback" not in log, log
