"""Who is on the other end: the client's address and its failed authentications.

The address is the connecting peer's, unless that peer is one of
``UNITY_TRUSTED_PROXIES``: then it is taken from ``X-Forwarded-For`` (and the
scheme from ``X-Forwarded-Proto``) by uvicorn's proxy-headers middleware, so
rate limits, audit entries and secure cookies see the real client. Nobody
else can move a request to another address by sending those headers.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from unity.api.errors import ApiError
from unity.auth.ratelimit import FailureLimiter, FailurePolicy, TooManyFailuresError
from unity.settings import Settings

__all__ = ["client_address", "failure_limiter", "install_client_tracking", "too_many_failures"]


def install_client_tracking(app: FastAPI, settings: Settings) -> None:
    """Give ``app`` its failed-authentication counters and, when configured, trust
    its reverse proxies' forwarding headers."""
    app.state.auth_failures = FailureLimiter(
        FailurePolicy(
            burst=settings.auth_failure_burst,
            limit=settings.auth_failure_limit,
            window=settings.auth_failure_window_seconds,
            delay=settings.auth_failure_delay_seconds,
        )
    )
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def failure_limiter(request: Request) -> FailureLimiter:
    limiter: FailureLimiter = request.app.state.auth_failures
    return limiter


def too_many_failures(exc: TooManyFailuresError) -> ApiError:
    return ApiError(
        429,
        f"too many failed authentications from this address; retry in {exc.retry_after} s",
        headers={"Retry-After": str(exc.retry_after)},
    )
