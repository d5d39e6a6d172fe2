"""Real receivers on loopback for the notification tests: an HTTP server that
records what webhook, ntfy- and Gotify-style senders post, an SMTP server
(aiosmtpd), and Debian's Prometheus Alertmanager."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.support.processes import free_port

__all__ = ["Alertmanager", "HttpReceiver", "MailReceiver", "alertmanager", "http_receiver"]


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


@dataclass
class HttpReceiver:
    port: int
    requests: list[Posted] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                received.append(Posted(self.path, dict(self.headers), body))
                answer = b'{"id": 1, "status": "ok"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@contextmanager
def http_receiver(port: int | None = None) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(port or free_port())
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


class MailReceiver:
    """aiosmtpd on loopback, keeping every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    @staticmethod
    def text_of(message: Message) -> str:
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode()
        raise AssertionError("no text/plain part")


def alertmanager_binary() -> str:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        reason = (
            "prometheus-alertmanager is not installed "
            "(apt-get install prometheus-alertmanager; scripts/test does)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI forwards to a real Alertmanager: {reason}")
        pytest.skip(reason)
    return binary


@dataclass
class Alertmanager:
    url: str

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=10)
        answer.raise_for_status()
        alerts: list[dict[str, Any]] = answer.json()
        return alerts


@contextmanager
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """A real Alertmanager on a free loopback port, with a temp config and storage."""
    binary = alertmanager_binary()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: nowhere\n  group_wait: 1h\nreceivers:\n  - name: nowhere\n"
    )
    storage = tmp_path / "am-data"
    storage.mkdir()
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    manager = Alertmanager(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                if httpx.get(f"{manager.url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "alertmanager.log").read_text()
            time.sleep(0.2)
        yield manager
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
