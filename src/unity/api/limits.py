"""Request body limits, enforced before any route or authentication reads a byte.

FastAPI parses a declared body before the route's dependencies run, so a size
check inside a route comes too late: an anonymous 256 MiB upload would already
sit in memory. This pure ASGI middleware wraps the app outermost and

* answers 413 at once when ``Content-Length`` announces more than the limit,
* counts the bytes of a chunked (or lying) body as they arrive and stops at
  the limit,
* gives the whole body a deadline, so a client trickling it gets 408.

Refusals close the connection: the rest of the body is never read.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from unity.api.errors import error_response

__all__ = ["BodyLimit", "BodyTimeoutError", "BodyTooLargeError", "RequestLimitsMiddleware"]

_CLOSE = {"Connection": "close"}


def _too_large(limit: int) -> str:
    return f"request body is larger than {limit} bytes"


class BodyTooLargeError(HTTPException):
    """The body grew past its limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit), headers=_CLOSE)


class BodyTimeoutError(HTTPException):
    """The body did not arrive within its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"request body not received within {seconds:g} s", headers=_CLOSE)


@dataclass(frozen=True)
class BodyLimit:
    """A larger (or smaller) limit for the requests of one route."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


class RequestLimitsMiddleware:
    """Size and time limits of request bodies (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        timeout: float,
        routes: Sequence[BodyLimit] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.routes = tuple(routes)

    def _limit(self, scope: Scope) -> int:
        for route in self.routes:
            if scope["method"] == route.method and route.path.search(scope["path"]):
                return route.max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await error_response(413, _too_large(limit), headers=_CLOSE)(scope, receive, send)
            return

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        received = 0
        body_done = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # Past the body, receive() only waits for a disconnect: no deadline.
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeoutError(self.timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except (BodyTooLargeError, BodyTimeoutError) as exc:
            # Raised where no exception handler sits (a mounted app, a streaming
            # response); the routes' own handlers answer the same JSON.
            if started:
                return
            await error_response(exc.status_code, exc.detail, headers=_CLOSE)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
