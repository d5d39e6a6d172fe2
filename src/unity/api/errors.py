"""JSON errors: every failure answers ``{"error": {"code", "message", "details"}}``.

Bad input is always a 4xx with a message; handlers here translate the
domain errors of the manager and storage so routes stay free of try/except.
A database that is down or refusing work answers 503 with ``Retry-After``
(logged once per outage by :class:`unity.storage.db.Outage`). A request that
found no free pooled connection in time also answers 503 with ``Retry-After``
("database busy"): that is back-pressure, not an outage, so it is logged as a
warning at most once a minute and the outage state is left alone. Any other
unhandled exception answers 500 in the same envelope, and its traceback is
logged once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from unity.plugins.runtime import PluginNotFoundError, PluginStateError
from unity.storage.db import Database, DatabaseUnavailableError, is_unavailable
from unity.storage.pagination import InvalidCursorError
from unity.views import QueryError
from unity_sdk import ERROR_CODES, BatchRefusedError, ConfigError, MetadataError, error_details

log = logging.getLogger(__name__)

# Seconds a client should wait before retrying while the database is away.
RETRY_AFTER_SECONDS = 5
# Seconds a client should wait when every pooled connection was in use.
BUSY_RETRY_AFTER_SECONDS = 1
# At most one "database busy" warning per this many seconds.
BUSY_LOG_EVERY_SECONDS = 60.0

__all__ = [
    "BUSY_RETRY_AFTER_SECONDS",
    "RETRY_AFTER_SECONDS",
    "ApiError",
    "RejectNulMiddleware",
    "database_busy",
    "database_unavailable",
    "error_response",
    "install_error_handlers",
]


class ApiError(Exception):
    """Raise from a route to answer with a JSON error."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status: int, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": ERROR_CODES.get(status, "error"), "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def database_unavailable() -> JSONResponse:
    """503 telling the client to come back once the database is reachable again."""
    return error_response(
        503,
        "the database is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def database_busy() -> JSONResponse:
    """503 telling the client every connection was in use: retry shortly."""
    return error_response(
        503,
        "database busy: no free connection, retry",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
    )


class _BusyLog:
    """The pool-busy warning, once per ``BUSY_LOG_EVERY_SECONDS`` with a count:
    under load every request could hit it."""

    def __init__(self) -> None:
        self.logged_at: float | None = None
        self.suppressed = 0

    def warn(self, request: Request) -> None:
        now = time.monotonic()
        if self.logged_at is not None and now - self.logged_at < BUSY_LOG_EVERY_SECONDS:
            self.suppressed += 1
            return
        log.warning(
            "database busy: no free pooled connection for %s %s, answered 503 "
            "(%d more since the last warning)",
            request.method,
            request.url.path,
            self.suppressed,
        )
        self.logged_at, self.suppressed = now, 0


class RejectNulMiddleware:
    """Answer 400 to a URL carrying a NUL character (PostgreSQL text cannot hold one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            response = error_response(400, "NUL characters are not allowed in URLs")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(
            422, "request is not valid", error_details(exc.errors(), str_loc=True)
        )

    @app.exception_handler(ConfigError)
    async def _config_error(_: Request, exc: ConfigError) -> JSONResponse:
        return error_response(422, str(exc), exc.errors)

    @app.exception_handler(QueryError)
    async def _bad_query(_: Request, exc: QueryError) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(MetadataError)
    async def _metadata_error(_: Request, exc: MetadataError) -> JSONResponse:
        return error_response(422, str(exc), exc.errors or None)

    @app.exception_handler(BatchRefusedError)
    async def _batch_refused(_: Request, exc: BatchRefusedError) -> JSONResponse:
        return error_response(exc.status, str(exc), exc.errors or None)

    @app.exception_handler(PluginNotFoundError)
    async def _not_found(_: Request, exc: PluginNotFoundError) -> JSONResponse:
        return error_response(404, f"no plugin with id {exc.args[0]!r}")

    @app.exception_handler(PluginStateError)
    async def _conflict(_: Request, exc: PluginStateError) -> JSONResponse:
        return error_response(409, str(exc))

    @app.exception_handler(InvalidCursorError)
    async def _bad_cursor(_: Request, exc: InvalidCursorError) -> JSONResponse:
        return error_response(400, str(exc), [{"loc": ["query", "cursor"], "msg": str(exc)}])

    busy = _BusyLog()

    async def _database_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, sa_exc.TimeoutError):
            busy.warn(request)
            return database_busy()
        if not is_unavailable(exc):
            raise exc
        db: Database | None = getattr(request.app.state, "db", None)
        if db is not None:
            db.outage.failed(exc)
        return database_unavailable()

    for kind in (DatabaseUnavailableError, sa_exc.DBAPIError, sa_exc.TimeoutError):
        app.add_exception_handler(kind, _database_error)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, _: ClientDisconnect) -> Response:
        # Nobody is left to read an answer; not the hub's fault, so no traceback.
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, __: Exception) -> JSONResponse:
        # Starlette re-raises once this answer is sent; the server logs the traceback.
        return error_response(500, "internal error; the hub's log has the details")
