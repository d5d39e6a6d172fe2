"""The HTTP server of ``unity serve``: uvicorn, hardened against slow and many clients.

uvicorn times out idle keep-alive connections but not a request that never
finishes its headers, and it accepts connections until the process runs out
of file descriptors; then even a health probe cannot get in. So:

* each connection has ``header_timeout`` seconds to send complete request
  headers (from when it opens, or from the first byte of its next request);
  slower ones get 408 and are closed. Bodies have their own deadline, in
  :mod:`unity.api.limits`;
* past ``max_connections`` open connections, requests are answered 503 with
  ``Retry-After`` and their connections closed;
* at start the soft descriptor limit is raised to the hard limit, so the cap,
  not the descriptor table, is what refuses clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import sys
import time
from typing import Any, ClassVar

import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from unity.api.errors import error_response
from unity.settings import Settings

__all__ = ["guarded_protocol", "raise_fd_limit", "run"]

log = logging.getLogger(__name__)

# Descriptors the hub needs besides client connections: database, plugins, logs.
RESERVED_FDS = 128
CAP_WARNING_INTERVAL = 60.0
SWITCH_INTERVAL = 0.001


def _timeout_response(seconds: float) -> bytes:
    body = error_response(408, f"request headers not received within {seconds:g} s").body
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + bytes(body)


async def _over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(
        503,
        "the hub has too many open connections; retry later",
        headers={"Retry-After": "1", "Connection": "close"},
    )
    await response(scope, receive, send)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a connection cap."""

    header_timeout: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 1000
    _last_cap_warning: ClassVar[float] = float("-inf")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Read this connection's request, answer it 503, close: the client learns why.
            self.app = _over_capacity
            self._warn_at_capacity()
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        # Started once per request: trickling bytes does not extend the deadline.
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_timeout_response(self.header_timeout))
            self.transport.close()

    @classmethod
    def _warn_at_capacity(cls) -> None:
        now = time.monotonic()
        if now - cls._last_cap_warning >= CAP_WARNING_INTERVAL:
            cls._last_cap_warning = now
            log.warning(
                "%d connections open: answering 503 to new ones (UNITY_MAX_CONNECTIONS)",
                cls.max_connections,
            )


def guarded_protocol(settings: Settings) -> type[GuardedProtocol]:
    """A protocol class carrying ``settings``' header timeout and connection cap."""
    return type(
        "UnityHttpProtocol",
        (GuardedProtocol,),
        {"header_timeout": settings.header_timeout, "max_connections": settings.max_connections},
    )


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft descriptor limit to the hard one; the limit now in force.

    Warns when it stays below ``wanted`` (connections plus the hub's own needs).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the descriptor limit from %d to %d: %s", soft, target, exc)
    if soft < wanted:
        log.warning(
            "the descriptor limit (%d) is below UNITY_MAX_CONNECTIONS + %d (%d): raise it "
            "(ulimit -n, LimitNOFILE=) or lower UNITY_MAX_CONNECTIONS",
            soft,
            RESERVED_FDS,
            wanted,
        )
    return soft


def run(app: FastAPI, settings: Settings, log_level: int) -> bool:
    """Serve ``app`` until interrupted; False when it never started."""
    raise_fd_limit(settings.max_connections + RESERVED_FDS)
    # Thread-mode plugins share the interpreter lock with the event loop. A plugin
    # thread busy in Python code keeps it for up to the switch interval each time
    # the loop wants it back; 1 ms instead of 5 ms keeps the API and the other
    # plugins on time next to a CPU-hungry plugin (docs/operations.md).
    sys.setswitchinterval(SWITCH_INTERVAL)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # The grace period counts from here: the app's shutdown gets what is left.
            app.state.shutdown_started = time.monotonic()
            await super().shutdown(sockets=sockets)

    # log_config=None: uvicorn's loggers propagate to the hub's handler, one format.
    # proxy_headers=False: only UNITY_TRUSTED_PROXIES decides whose X-Forwarded-For
    # counts (see unity.api.clients); uvicorn would otherwise trust 127.0.0.1.
    # Open requests get half the shutdown grace period; the plugins' shutdown the rest.
    # ws="none": the hub serves no WebSocket, so uvicorn need not load a library for one.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,
        proxy_headers=False,
        http=guarded_protocol(settings),
        ws="none",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds / 2)),
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )
    server = Server(config)
    # As uvicorn.run does: Ctrl-C after a clean shutdown is a normal exit.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return bool(server.started)
