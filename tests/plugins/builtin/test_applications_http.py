"""``http-check`` against real HTTP and HTTPS servers on loopback.

The servers are the standard library's ``http.server`` in a thread; the HTTPS
one serves a certificate from a CA made for the test, so verification fails
against the system store and passes with that CA as ``ca_bundle``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from applications_support import (
    CertFiles,
    TestCA,
    check_metadata,
    collect_checked,
    free_port,
    make,
    timed_collect,
)
from pydantic import ValidationError

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.http_check import HttpCheckConfig, HttpCheckPlugin
from unity_sdk import CollectionError, HealthState

SLOW_SECONDS = 1.0


class Handler(BaseHTTPRequestHandler):
    """/ok, /error, /slow, /moved and /large, as a web app would answer them."""

    def do_GET(self) -> None:
        routes = {
            "/ok": (200, b"<html><body>hello unity</body></html>"),
            "/error": (500, b"internal error"),
            "/large": (200, b"x" * (3 * 1024 * 1024) + b"needle"),
        }
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
            routes[self.path] = (200, b"late")
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/echo-header":
            routes[self.path] = (200, self.headers.get("X-Probe", "none").encode())
        status, body = routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may have given up: the timeout test, or a body cut at MAX_BODY_BYTES.
        with suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up early is part of the tests


@contextmanager
def serve(certs: CertFiles | None = None) -> Iterator[str]:
    server = Server(("127.0.0.1", 0), Handler)
    scheme = "http"
    if certs is not None:
        server.socket = certs.server_context().wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("http-ca"))


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture(scope="module")
def https_url(ca: TestCA) -> Iterator[str]:
    with serve(ca.issue("http-server")) as url:
        yield url


def test_metadata_and_registration() -> None:
    check_metadata(HttpCheckPlugin, "http-check", "application")
    assert HttpCheckPlugin in BUILTIN_PLUGINS


async def test_up_down_slow_and_content(http_url: str) -> None:
    plugin = make(
        HttpCheckPlugin,
        endpoints=[
            {"name": "ok", "url": f"{http_url}/ok", "contains": "hello unity"},
            {"name": "head", "url": f"{http_url}/ok", "method": "HEAD"},
            {"name": "error", "url": f"{http_url}/error"},
            {"name": "error-expected", "url": f"{http_url}/error", "expected_status": [500]},
            {"name": "slow", "url": f"{http_url}/slow", "timeout": 0.3},
            {"name": "wrong-content", "url": f"{http_url}/ok", "contains": "goodbye"},
            {"name": "moved", "url": f"{http_url}/moved"},
            {"name": "followed", "url": f"{http_url}/moved", "follow_redirects": True},
            {"name": "refused", "url": f"http://127.0.0.1:{free_port()}/"},
        ],
    )
    document, seconds = await timed_collect(plugin)
    endpoints = document["endpoints"]
    assert endpoints["ok"]["up"] == 1
    assert endpoints["ok"]["status_code"] == 200
    assert endpoints["ok"]["content_matched"] == 1
    assert 0 < endpoints["ok"]["latency_ms"] < 5000
    assert "error" not in endpoints["ok"]
    assert "tls_verified" not in endpoints["ok"]
    assert endpoints["head"]["up"] == 1
    assert "content_matched" not in endpoints["head"]
    assert endpoints["error"]["up"] == 0
    assert endpoints["error"]["status_code"] == 500
    assert endpoints["error"]["error"] == "status 500, expected 200"
    assert endpoints["error-expected"]["up"] == 1
    assert endpoints["slow"] == {
        "url": f"{http_url}/slow",
        "up": 0,
        "error": "timed out after 0.3s",
    }
    assert endpoints["wrong-content"]["up"] == 0
    assert endpoints["wrong-content"]["content_matched"] == 0
    assert endpoints["wrong-content"]["error"] == "the expected content is missing from the body"
    assert endpoints["moved"]["status_code"] == 302
    assert endpoints["moved"]["up"] == 0
    assert endpoints["followed"]["status_code"] == 200
    assert endpoints["followed"]["up"] == 1
    assert endpoints["refused"]["up"] == 0
    assert endpoints["refused"]["error"].startswith("connection failed")
    assert (document["endpoints_up"], document["endpoints_down"]) == (4, 5)
    # The endpoints run side by side: the slow one bounds the whole collection.
    assert seconds < 0.3 + 1.0


async def test_large_body_is_read_up_to_the_cap(http_url: str) -> None:
    plugin = make(
        HttpCheckPlugin,
        endpoints=[{"name": "large", "url": f"{http_url}/large", "contains": "needle"}],
    )
    document = await collect_checked(plugin)
    # The marker sits past the first MiB, so it is not seen: the body is not read whole.
    assert document["endpoints"]["large"]["content_matched"] == 0


async def test_headers_are_sent(http_url: str) -> None:
    plugin = make(
        HttpCheckPlugin,
        endpoints=[
            {
                "name": "probe",
                "url": f"{http_url}/echo-header",
                "headers": {"X-Probe": "unity-42"},
                "contains": "unity-42",
            }
        ],
    )
    document = await collect_checked(plugin)
    assert document["endpoints"]["probe"]["up"] == 1


async def test_tls_untrusted_ca_is_reported_not_raised(https_url: str) -> None:
    plugin = make(HttpCheckPlugin, endpoints=[{"name": "tls", "url": f"{https_url}/ok"}])
    document = await collect_checked(plugin)
    tls = document["endpoints"]["tls"]
    assert tls["up"] == 0
    assert tls["tls_verified"] == 0
    assert tls["error"].startswith("TLS certificate verification failed")
    assert "status_code" not in tls
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY  # its only endpoint is down
    assert "tls: TLS certificate verification failed" in health.message


async def test_tls_verification_off(https_url: str) -> None:
    plugin = make(
        HttpCheckPlugin,
        endpoints=[{"name": "tls", "url": f"{https_url}/ok", "verify_tls": False}],
    )
    document = await collect_checked(plugin)
    assert document["endpoints"]["tls"]["up"] == 1
    assert document["endpoints"]["tls"]["tls_verified"] == 0


async def test_tls_with_the_ca_bundle(https_url: str, ca: TestCA) -> None:
    plugin = make(
        HttpCheckPlugin,
        ca_bundle=str(ca.bundle),
        endpoints=[
            {"name": "tls", "url": f"{https_url}/ok", "contains": "hello"},
            {"name": "by-name", "url": https_url.replace("127.0.0.1", "localhost") + "/ok"},
        ],
    )
    document, seconds = await timed_collect(plugin)
    for result in document["endpoints"].values():
        assert result["up"] == 1
        assert result["tls_verified"] == 1
        assert result["status_code"] == 200
    assert (await plugin.health_check()).status is HealthState.HEALTHY
    print(f"http-check: 2 HTTPS endpoints in {seconds * 1000:.1f} ms")


async def test_tls_hostname_mismatch(ca: TestCA) -> None:
    with serve(ca.issue("other-host", hosts=("other.test",))) as url:
        plugin = make(
            HttpCheckPlugin, ca_bundle=str(ca.bundle), endpoints=[{"name": "tls", "url": url}]
        )
        document = await collect_checked(plugin)
        assert document["endpoints"]["tls"]["up"] == 0
        assert "IP address mismatch" in document["endpoints"]["tls"]["error"]


async def test_health(http_url: str) -> None:
    healthy = make(HttpCheckPlugin, endpoints=[{"name": "ok", "url": f"{http_url}/ok"}])
    assert (await healthy.health_check()).status is HealthState.HEALTHY
    failing = make(
        HttpCheckPlugin,
        endpoints=[
            {"name": "ok", "url": f"{http_url}/ok"},
            {"name": "error", "url": f"{http_url}/error"},
        ],
    )
    health = await failing.health_check()
    assert health.status is HealthState.DEGRADED
    assert health.message == "1 of 2 endpoint(s) down: error: status 500, expected 200"
    assert health.details == {"endpoints": {"error": "status 500, expected 200"}}
    empty = make(HttpCheckPlugin)
    assert await collect_checked(empty) == {"endpoints_up": 0, "endpoints_down": 0, "endpoints": {}}


async def test_unreadable_ca_bundle(tmp_path: Path, http_url: str) -> None:
    plugin = make(
        HttpCheckPlugin,
        ca_bundle=str(tmp_path / "missing.pem"),
        endpoints=[{"name": "ok", "url": f"{http_url}/ok"}],
    )
    with pytest.raises(CollectionError, match="cannot load the CA bundle"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "cannot load the CA bundle" in health.message


@pytest.mark.parametrize(
    "config",
    [
        {"endpoints": [{"name": "a", "url": "ftp://example.test/"}]},
        {"endpoints": [{"name": "a", "url": "http://x.test/", "method": "POST"}]},
        {"endpoints": [{"name": "a", "url": "http://x.test/", "expected_status": [999]}]},
        {"endpoints": [{"name": "a", "url": "http://x.test/", "timeout": 0}]},
        {
            "endpoints": [
                {"name": "a", "url": "http://x.test/"},
                {"name": "a", "url": "http://y.test/"},
            ]
        },
    ],
)
def test_rejects_bad_config(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        HttpCheckConfig.model_validate(config)
