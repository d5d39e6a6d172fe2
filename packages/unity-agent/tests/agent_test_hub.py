"""A small real hub for the agent's own tests: the agent endpoints on loopback.

The hub's implementation of the agent API is built elsewhere and tested end
to end against ``unity serve``; the agent package's tests stand on the SDK
alone (they never import ``unity``), so they talk to this server instead: a
real HTTP(S) server in a thread, answering ``/api/agents/v1`` as the contract
says (wire models from the SDK), with certificates made here and swappable
while it runs. It records what it was sent, so tests can assert that a
refused join sent nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from unity_sdk import (
    AGENT_API_PATH,
    Assignments,
    JoinRequest,
    JoinResponse,
    ProposalsAccepted,
    StatusAccepted,
    host_id_for,
)

GOOD_TOKEN = "unitye_good-enrollment-token"
# The hub's own machine: the one host id no agent may join as.
HUB_HOST_ID = "hub"


@dataclass(frozen=True)
class Certificate:
    """A certificate and its key, as PEM files (ssl wants files)."""

    cert_file: Path
    key_file: Path

    @property
    def der(self) -> bytes:
        return self.x509.public_bytes(serialization.Encoding.DER)

    @property
    def x509(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_file.read_bytes())

    @property
    def sha256(self) -> str:
        """The fingerprint as cryptography computes it, for comparing with the agent's."""
        return "sha256:" + self.x509.fingerprint(hashes.SHA256()).hex()


def make_certificate(
    directory: Path,
    name: str,
    *,
    lifetime: timedelta = timedelta(days=30),
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
) -> tuple[Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for localhost and 127.0.0.1: self-signed, or signed by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    certificate = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    cert_file = directory / f"{name}.crt"
    key_file = directory / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file), key


@dataclass
class HubState:
    """What the hub knows and what it was sent."""

    tokens: set[str] = field(default_factory=lambda: {GOOD_TOKEN})
    # host id -> (key secret, api key, key id)
    hosts: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    joins: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # Answer this many joins with 503 after recording them (a lost answer).
    fail_joins: int = 0
    # Refuse every agent key (the host was removed on the hub).
    refuse_keys: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what was recorded, not on a log."""

    def _reply(self, status: int, body: dict[str, Any] | str) -> None:
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, message: str) -> None:
        self._reply(status, {"error": {"message": message}})

    def _bearer(self) -> str:
        return self.headers.get("Authorization", "").removeprefix("Bearer ")

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _agent(self) -> str | None:
        """The host id of the agent key sent, or None (after answering 401)."""
        state = self.server.state
        key = self._bearer()
        for host_id, (_, api_key, _) in state.hosts.items():
            if api_key == key and not state.refuse_keys:
                return host_id
        self._error(401, "unknown or revoked agent key")
        return None

    def do_POST(self) -> None:
        state = self.server.state
        body = self._body()
        with state.lock:
            state.requests.append(("POST", self.path))
            if self.path == f"{AGENT_API_PATH}/join":
                self._join(body)
            elif self.path == f"{AGENT_API_PATH}/status":
                if host := self._agent():
                    accepted = StatusAccepted(host_id=host, received_at=datetime.now(UTC))
                    self._reply(200, accepted.model_dump_json())
            else:
                self._error(404, f"no route {self.path}")

    def do_PUT(self) -> None:
        state = self.server.state
        self._body()
        with state.lock:
            state.requests.append(("PUT", self.path))
            if self.path == f"{AGENT_API_PATH}/proposals":
                if host := self._agent():
                    self._reply(200, ProposalsAccepted(host_id=host, open=0).model_dump_json())
            else:
                self._error(404, f"no route {self.path}")

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append(("GET", self.path))
            if self.path == f"{AGENT_API_PATH}/assignments":
                if host := self._agent():
                    answer = Assignments(host_id=host, revision="r1", poll_seconds=1, instances=[])
                    self._reply(200, answer.model_dump_json())
            else:
                self._error(404, f"no route {self.path}")

    def _join(self, body: bytes) -> None:
        state = self.server.state
        state.joins.append({"token": self._bearer(), "body": json.loads(body or b"null")})
        if self._bearer() not in state.tokens:
            self._error(401, "enrollment token is unknown, expired or used up")
            return
        try:
            request = JoinRequest.model_validate_json(body)
        except ValidationError as exc:
            self._error(422, str(exc))
            return
        if state.fail_joins > 0:
            state.fail_joins -= 1
            self._error(503, "the hub is restarting")
            return
        host_id = request.host_id or host_id_for(request.platform.hostname)
        if host_id == HUB_HOST_ID:
            self._error(409, f"host id {host_id!r} is the hub's own machine")
            return
        known = state.hosts.get(host_id)
        if known is None or known[0] != request.key_secret:
            # A new host, or a join again with its id: a new key replaces the old one.
            known = (
                request.key_secret or secrets.token_urlsafe(32),
                f"unitya_{secrets.token_urlsafe(24)}",
                secrets.token_hex(8),
            )
            state.hosts[host_id] = known
        answer = JoinResponse(host_id=host_id, api_key=known[1], key_id=known[2], poll_seconds=1)
        self._reply(201, answer.model_dump_json())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: HubState
    context: ssl.SSLContext | None

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        if self.context is None:
            return connection, address
        # The handshake runs in the handler's thread, with the certificate of the moment.
        return self.context.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        ), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that refuses the certificate ends its handshake: that is the test."""


class AgentHub:
    """A running hub: ``url``, ``state``, and :meth:`use_certificate` to swap its TLS."""

    def __init__(self, certificate: Certificate | None) -> None:
        self.state = HubState()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._server.context = None
        if certificate is not None:
            self.use_certificate(certificate)
        scheme = "https" if certificate else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def use_certificate(self, certificate: Certificate) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert_file, certificate.key_file)
        self._server.context = context

    def agent_calls(self) -> list[tuple[str, str]]:
        with self.state.lock:
            return list(self.state.requests)

    @contextmanager
    def running(self) -> Iterator[AgentHub]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_runtime() -> None:
    """``run`` starts the runtime (unity_agent.runtime), which lands from its own
    branch: skip until it is there, except under CI."""
    if importlib.util.find_spec("unity_agent.runtime") is None:
        reason = "unity_agent.runtime is not there yet"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the agent: {reason}")
        pytest.skip(reason)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
