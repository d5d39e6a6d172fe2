"""Running commands on a target, the same way locally and over SSH.

Command-based plugins (``supports_remote=True``) never call ``subprocess``
themselves: they use ``self.runner``. The hub gives each run the runner of
its target -- :class:`LocalRunner` for the hub's own machine, an SSH runner
for a server in the inventory -- so one plugin serves both.

Example::

    result = await self.runner.run(["sensors", "-j"], timeout=10)
    data = json.loads(result.check().stdout)
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from unity_sdk.errors import CollectionError, DependencyMissingError

__all__ = ["CommandResult", "LocalRunner", "Runner"]

_NOT_FOUND = 127
_NOT_EXECUTABLE = 126


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and how it ended."""

    argv: tuple[str, ...]
    stdout: str
    stderr: str
    exit_status: int
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def check(self) -> CommandResult:
        """Return self when the command succeeded, else raise the fitting SDK error.

        Exit 127 (not found) and 126 (not executable) and "permission denied"
        raise :class:`DependencyMissingError`; anything else non-zero raises
        :class:`CollectionError` with the command's stderr.
        """
        if self.ok:
            return self
        command = self.argv[0] if self.argv else "command"
        detail = (self.stderr or self.stdout).strip().splitlines()[-1:] or [""]
        if self.exit_status == _NOT_FOUND:
            raise DependencyMissingError(f"{command} is not installed on the target")
        if self.exit_status == _NOT_EXECUTABLE or "permission denied" in detail[0].lower():
            raise DependencyMissingError(f"{command}: permission denied ({detail[0]})")
        raise CollectionError(f"{command} exited with {self.exit_status}: {detail[0]}")


@runtime_checkable
class Runner(Protocol):
    """Runs commands on one target host."""

    host: str

    async def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None
    ) -> CommandResult:
        """Run ``argv`` (no shell) and return its result; ``TimeoutError`` after ``timeout``."""
        ...


class LocalRunner:
    """Runs commands on the machine the plugin runs on."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or socket.gethostname()

    async def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None
    ) -> CommandResult:
        args = tuple(argv)
        if not args:
            raise ValueError("argv must name a command")
        if shutil.which(args[0]) is None:
            return CommandResult(args, "", f"{args[0]}: command not found", _NOT_FOUND, 0.0)
        started = time.perf_counter()
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except PermissionError as exc:
            return CommandResult(args, "", str(exc), _NOT_EXECUTABLE, 0.0)
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), timeout
            )
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        return CommandResult(
            args,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            proc.returncode if proc.returncode is not None else -1,
            time.perf_counter() - started,
        )
