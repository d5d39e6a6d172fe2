"""A small synchronous client of the hub's REST API, for the commands that need a running hub.

Every failure becomes a ``HubError`` a person can act on: the API's JSON errors
(``{"error": {"code", "message", "details"}}``, field errors one per line), a
refused connection ("start it with `unity serve`"), a timeout, a missing token.
``connect`` prints it and exits 1, so commands never handle errors themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import typer

from unity import __version__
from unity.cli.output import fail, load_settings

__all__ = ["HubClient", "HubError", "HubTarget", "connect", "default_url"]

GET_TOKEN = "create one on the hub's machine with `unity token create --scope admin`"

_HINTS = {
    401: f"pass a valid token with --token or UNITY_TOKEN; {GET_TOKEN}",
    403: f"this needs an admin token; {GET_TOKEN}",
}


class HubError(Exception):
    """A request to the hub failed; ``details`` are extra lines (field errors, hints)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


@dataclass(frozen=True)
class HubTarget:
    """Which hub to talk to and with what token: the global ``--url`` and ``--token``."""

    url: str | None = None
    token: str | None = None


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
            field = ".".join(str(part) for part in item.get("loc") or []) or "(whole config)"
            lines.append(f"{field}: {item['msg']}")
        else:
            lines.append(str(item))
    return lines


class HubClient:
    """``get``/``post``/``put`` against the hub; JSON in, JSON out, ``HubError`` on failure."""

    def __init__(self, url: str, token: str, *, timeout: float = 120.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise HubError(f"the hub URL must start with http:// or https://, not {url!r}")
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
            raise HubError(
                f"the hub is not reachable at {self.url} ({exc})",
                ["start it with `unity serve`, or point --url / UNITY_URL at a running hub"],
            ) from exc
        except httpx.TimeoutException as exc:
            raise HubError(f"the hub at {self.url} did not answer in time") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise HubError(f"the request to {self.url} failed: {exc}") from exc
        if response.is_error:
            raise self._error(response)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise HubError(
                f"{self.url} answered {method} {path} with something that is not JSON; "
                "is it a Unity hub?"
            ) from exc

    def _error(self, response: httpx.Response) -> HubError:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return HubError(
                f"{self.url} answered HTTP {response.status_code} "
                f"({response.text[:200].strip() or 'no body'}); is it a Unity hub?"
            )
        if response.status_code == 404 and error.get("message") == "Not Found":
            # The framework's answer for an unknown route, not the hub's for an unknown id.
            return HubError(
                f"{self.url} has no {response.request.url.path}; is it the address of a Unity hub?"
            )
        details = _detail_lines(error.get("details"))
        hint = _HINTS.get(response.status_code)
        if hint:
            details.append(hint)
        return HubError(str(error.get("message") or f"HTTP {response.status_code}"), details)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def connect(ctx: typer.Context) -> Iterator[HubClient]:
    """A client for the hub the global options name; a ``HubError`` inside exits 1."""
    target = ctx.find_object(HubTarget) or HubTarget()
    try:
        if not target.token:
            raise HubError(f"no hub token: pass --token or set UNITY_TOKEN; {GET_TOKEN}")
        with HubClient(target.url or default_url(), target.token) as client:
            yield client
    except HubError as exc:
        fail(exc.message, exc.details)
