"""`RestClient`: a small synchronous client of the hub's REST API, for the CLI.

Every failure becomes a ``RestError`` a person can act on: the API's JSON errors
(``{"error": {"code", "message", "details"}}``, field errors one per line), a
refused connection ("start it with `unity serve`"), a timeout, a missing token.
``connect`` prints it and exits 1, so commands never handle errors themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import httpx
import typer

from unity import __version__
from unity.cli.output import fail, load_settings
from unity.cli.root import HubAccess
from unity_sdk import error_lines

__all__ = ["HubAccess", "RestClient", "RestError", "connect", "default_url"]

GET_TOKEN = "create one on the hub's machine with `unity token create --scope admin`"

_HINTS = {
    401: f"pass a valid token with --token or UNITY_TOKEN; {GET_TOKEN}",
    403: f"this needs an admin token; {GET_TOKEN}",
}


class RestError(Exception):
    """A request to the hub failed; ``details`` are extra lines (field errors, hints)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


def default_url() -> str:
    """Where ``unity serve`` listens with the current settings."""
    settings = load_settings()
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _detail_lines(details: Any) -> list[str]:
    if details is None:
        return []
    if not isinstance(details, list):
        return [json.dumps(details, default=str)]
    lines = []
    for item in details:
        if isinstance(item, dict) and "msg" in item:
            lines.extend(error_lines([item], whole="(whole config)"))
        else:
            lines.append(str(item))
    return lines


class RestClient:
    """``get``/``post``/``put`` against the hub; JSON in, JSON out, ``RestError`` on failure."""

    def __init__(self, url: str, token: str, *, timeout: float = 120.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise RestError(f"the hub URL must start with http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"unity-cli/{__version__}"},
            # Runs can take as long as a plugin's timeout; connecting should be instant.
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self._request("POST", path, **({} if body is None else {"json": body}))

    def put(self, path: str, body: Any) -> Any:
        return self._request("PUT", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        """A JSON Merge Patch (RFC 7396): only the fields in ``body`` change."""
        content = json.dumps(body).encode()
        headers = {"Content-Type": "application/merge-patch+json"}
        return self._request("PATCH", path, content=content, headers=headers)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise RestError(
                f"the hub is not reachable at {self.url} ({exc})",
                ["start it with `unity serve`, or point --url / UNITY_URL at a running hub"],
            ) from exc
        except httpx.TimeoutException as exc:
            raise RestError(f"the hub at {self.url} did not answer in time") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise RestError(f"the request to {self.url} failed: {exc}") from exc
        if response.is_error:
            raise self._error(response)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RestError(
                f"{self.url} answered {method} {path} with something that is not JSON; "
                "is it a Unity hub?"
            ) from exc

    def _error(self, response: httpx.Response) -> RestError:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return RestError(
                f"{self.url} answered HTTP {response.status_code} "
                f"({response.text[:200].strip() or 'no body'}); is it a Unity hub?"
            )
        if response.status_code == 404 and error.get("message") == "Not Found":
            # The framework's answer for an unknown route, not the hub's for an unknown id.
            return RestError(
                f"{self.url} has no {response.request.url.path}; is it the address of a Unity hub?"
            )
        details = _detail_lines(error.get("details"))
        hint = _HINTS.get(response.status_code)
        if hint:
            details.append(hint)
        return RestError(str(error.get("message") or f"HTTP {response.status_code}"), details)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def connect(ctx: typer.Context) -> Iterator[RestClient]:
    """A client for the hub the global options name; a ``RestError`` inside exits 1."""
    access = ctx.find_object(HubAccess) or HubAccess()
    try:
        if not access.token:
            raise RestError(f"no hub token: pass --token or set UNITY_TOKEN; {GET_TOKEN}")
        with RestClient(access.url or default_url(), access.token) as client:
            yield client
    except RestError as exc:
        fail(exc.message, exc.details)
