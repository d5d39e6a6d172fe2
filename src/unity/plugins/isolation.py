"""Process isolation: run one call of a plugin in a child process.

A plugin with ``isolation=process`` runs each collection and health check in
a fresh ``python -m unity.plugins._child`` process at a lower CPU priority: it
gets a new instance, ``on_enable``, the call, ``on_disable``. The hub kills the child on timeout,
so a plugin stuck in C code or a runaway allocation is really stopped. The
child's address space is capped (``memory_mb``). The request goes over stdin
and the answer comes back as one JSON line on the child's original stdout;
whatever the plugin prints (to stdout or stderr, from Python or C) goes to
stderr. The hub reads both pipes with bounds: an answer larger than the
document limit kills the child and fails the run, and only the last
``output_bytes`` of the plugin's output are kept (for the error message).

A plugin that calls ``os._exit()``, crashes the interpreter or is killed by
the kernel only ends its child: the run is recorded as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import resource
import sys
from typing import Any

import unity_sdk.errors as sdk_errors
from unity_sdk import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    HealthStatus,
    PluginBase,
    PluginError,
    encode_document,
    validate_config,
)

__all__ = ["run_isolated"]

_CHUNK = 64 * 1024
# Room for the answer's envelope around the document itself.
_ENVELOPE = 4096
_MAX_MESSAGE = 4000


async def _read_answer(stream: asyncio.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise sdk_errors.DocumentTooLargeError(
                f"the document is larger than the {limit - _ENVELOPE:,}-byte limit "
                "(UNITY_MAX_DOCUMENT_BYTES); nothing of this run was stored"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_tail(stream: asyncio.StreamReader, keep: int) -> bytes:
    """Drain ``stream``; keep only its last ``keep`` bytes (at least one line's worth)."""
    keep = max(keep, 1024)
    tail = b""
    while chunk := await stream.read(_CHUNK):
        tail = (tail + chunk)[-keep:]
    return tail


async def _exchange(
    proc: asyncio.subprocess.Process, request: bytes, answer_limit: int, output_bytes: int
) -> tuple[bytes, bytes]:
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdin.write(request)
    with contextlib.suppress(ConnectionError):
        await proc.stdin.drain()
    proc.stdin.close()
    answer, tail = await asyncio.gather(
        _read_answer(proc.stdout, answer_limit), _read_tail(proc.stderr, output_bytes)
    )
    await proc.wait()
    return answer, tail


async def run_isolated(
    cls: type[PluginBase[Any]],
    action: str,
    stored_config: dict[str, Any],
    *,
    timeout: float,
    memory_mb: int,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    output_bytes: int = 64 * 1024,
) -> Any:
    """Run ``action`` (``collect`` or ``health``) of ``cls`` in a child process."""
    request = json.dumps(
        {
            "module": cls.__module__,
            "qualname": cls.__qualname__,
            "action": action,
            "config": stored_config,
            "memory_mb": memory_mb,
            "max_document_bytes": max_document_bytes,
        }
    ).encode()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "unity.plugins._child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            _exchange(proc, request, max_document_bytes + _ENVELOPE, output_bytes), timeout
        )
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    lines = stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        detail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise sdk_errors.CollectionError(
            f"isolated process exited with code {proc.returncode}: {detail[0][:500]}"
        )
    answer = json.loads(lines[-1])
    if "error" in answer:
        error_type = getattr(sdk_errors, answer["error"]["type"], None)
        if not (isinstance(error_type, type) and issubclass(error_type, PluginError)):
            error_type = sdk_errors.CollectionError
        raise error_type(answer["error"]["message"])
    return answer["result"]


async def _child(request: dict[str, Any]) -> str:
    """The answer's ``result`` as JSON text (the document within its size limit)."""
    module = importlib.import_module(request["module"])
    cls = module
    for part in request["qualname"].split("."):
        cls = getattr(cls, part)
    assert isinstance(cls, type)
    assert issubclass(cls, PluginBase)
    metadata = cls().get_metadata()
    plugin = cls(config=validate_config(metadata, request["config"]).plugin)
    await plugin.on_enable()
    try:
        if request["action"] == "health":
            status = await plugin.health_check()
            return json.dumps(HealthStatus.model_validate(status).model_dump(mode="json"))
        limit = int(request.get("max_document_bytes") or DEFAULT_MAX_DOCUMENT_BYTES)
        return encode_document(await plugin.collect_data(), max_bytes=limit)
    finally:
        await plugin.on_disable()


def _error(kind: str, message: str) -> str:
    # The hub keeps a few thousand characters of an error; do not ship a megabyte.
    return json.dumps({"error": {"type": kind, "message": message[:_MAX_MESSAGE]}})


def main() -> None:
    # The answer keeps the original stdout; the plugin's own prints go to stderr.
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    request = json.loads(sys.stdin.read())
    limit = int(request.get("memory_mb", 0)) * 1024 * 1024
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        line = '{"result": ' + asyncio.run(_child(request)) + "}"
    except PluginError as exc:
        line = _error(type(exc).__name__, str(exc))
    except MemoryError:
        line = _error("CollectionError", "out of memory")
    except Exception as exc:
        line = _error("CollectionError", f"{type(exc).__name__}: {exc}")
    sys.stdout.flush()
    answer.write(line + "\n")
    answer.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
