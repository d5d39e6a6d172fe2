"""Shared test helpers of the host-services plugins (tests/plugins/builtin/test_services_*.py).

- ``make`` builds a plugin the way the hub does (config validated, defaults filled in);
  ``collect_checked`` collects once and checks the document against the declared metrics.
- ``FakeRunner`` stands where the real tool would be: it answers each command with
  output recorded from the real tool (``fixtures/<plugin-id>/``).
- ``UnprivilegedRunner`` runs the real command as the ``nobody`` user, so "permission
  denied" is the real thing even when the tests run as root; ``ScopedRunner`` also
  sets environment variables (a real client pointed at a test server).
- ``serve_http`` runs a real HTTP server (uvicorn) on 127.0.0.1 or on a unix socket.
- ``require_command`` skips when a tool is missing locally and fails under CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from pydantic import BaseModel
from starlette.types import ASGIApp

from unity_sdk import (
    CommandResult,
    LocalRunner,
    PluginBase,
    PluginMetadata,
    check_document,
    check_plugin_class,
    undeclared_numbers,
)
from unity_sdk.testing import check_plugin

FIXTURES = Path(__file__).parent / "fixtures"

P = TypeVar("P", bound=PluginBase)


def make(cls: type[P], *, runner: Any = None, **config: Any) -> P:
    """An instance of ``cls`` with ``config`` validated and defaults filled in, as the hub does."""
    schema = cls().get_metadata().config_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    return cls(schema.model_validate(config).model_dump(), runner=runner)


async def collect_checked(plugin: PluginBase) -> dict[str, Any]:
    """Collect once through the SDK's harness and check the document against the declarations.

    ``check_plugin`` runs the plugin as the hub does (config validated, ``on_enable``,
    ``collect_data``, ``on_disable``) and checks the declared metrics; on top, every
    number in the document must be declared.
    """
    metadata = plugin.get_metadata()
    document = await check_plugin(plugin)
    assert check_document(metadata, document) == []
    assert undeclared_numbers(metadata, document) == []
    return document


def check_class(cls: type[PluginBase], plugin_id: str, category: str) -> PluginMetadata:
    """The checks every plugin of the group passes: loader validation and house rules."""
    metadata = check_plugin_class(cls)
    assert metadata.id == plugin_id
    assert metadata.category == category
    assert metadata.version == "1.0.0"
    assert metadata.author == "Unity developers"
    assert metadata.description
    assert metadata.tags
    assert all(f.description for f in metadata.metrics)
    assert all(f.unit for f in metadata.metrics if f.kind == "counter")
    schema = metadata.config_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    assert schema.model_config.get("extra") == "forbid"
    assert all(f.description for f in schema.model_fields.values())
    return metadata


def fixture_text(plugin_id: str, name: str) -> str:
    return (FIXTURES / plugin_id / name).read_text()


@dataclass(frozen=True)
class Recorded:
    """One recorded answer of a command: a fixture file for stdout, stderr, exit status."""

    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0


@dataclass
class FakeRunner:
    """A runner whose commands answer with recorded output of the real tool.

    ``answers`` maps an argv (joined with spaces) to a :class:`Recorded`; a
    ``Recorded.stdout`` / ``stderr`` naming a file of ``fixtures/<plugin_id>/``
    is replaced by that file's content. Unknown commands exit 127, as a missing
    tool does. Every command run is kept in ``calls``.
    """

    plugin_id: str
    answers: dict[str, Recorded]
    host: str = "recorded-host"
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def _text(self, value: str) -> str:
        path = FIXTURES / self.plugin_id / value
        return path.read_text() if value and path.is_file() else value

    async def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None
    ) -> CommandResult:
        args = tuple(argv)
        self.calls.append(args)
        answer = self.answers.get(" ".join(args))
        if answer is None:
            return CommandResult(args, "", f"{args[0]}: command not found", 127, 0.0)
        return CommandResult(
            args, self._text(answer.stdout), self._text(answer.stderr), answer.exit_status, 0.001
        )


class ScopedRunner(LocalRunner):
    """Runs each real command with extra environment variables and, optionally, as ``nobody``.

    The environment points a real client at a test server (``LXD_SOCKET``); running as
    ``nobody`` (through ``setpriv``, when the tests run as root) makes "permission
    denied" the real thing.
    """

    def __init__(self, *, env: Mapping[str, str] | None = None, unprivileged: bool = False):
        super().__init__()
        self.env = dict(env or {})
        self.unprivileged = unprivileged and os.geteuid() == 0

    async def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None
    ) -> CommandResult:
        prefix: list[str] = []
        if self.unprivileged:
            prefix += ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if self.env:
            prefix += ["env", *(f"{key}={value}" for key, value in self.env.items())]
        if not prefix:
            return await super().run(argv, timeout=timeout, stdin=stdin)
        if shutil.which(argv[0]) is None:
            return await super().run(argv, timeout=timeout, stdin=stdin)
        result = await super().run([*prefix, *argv], timeout=timeout, stdin=stdin)
        return CommandResult(
            tuple(argv), result.stdout, result.stderr, result.exit_status, result.duration
        )


class UnprivilegedRunner(ScopedRunner):
    """Runs each command as ``nobody`` when the tests run as root."""

    def __init__(self) -> None:
        super().__init__(unprivileged=True)


def require_command(name: str) -> str:
    """The path of ``name``; skip when it is missing here, fail when ``CI`` is set."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (scripts/test installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve_http(app: ASGIApp, *, uds: str | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (yields its URL) or on the unix socket ``uds``."""
    port = 0 if uds else free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        uds=uds,
        lifespan="off",
        log_level="warning",
        access_log=False,
        http="h11",
        ws="none",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            await task
            raise RuntimeError("the test HTTP server did not start")
        await asyncio.sleep(0.01)
    try:
        yield uds or f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
