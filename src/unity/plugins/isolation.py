"""Process isolation: run one call of a plugin in a child process.

A plugin with ``isolation=process`` runs each collection and health check in
a fresh ``python -m unity.plugins.isolation`` child: it gets a new instance,
``on_enable``, the call, ``on_disable``. The hub kills the child on timeout,
so a plugin stuck in C code or a runaway allocation is really stopped. The
child's address space is capped (``memory_mb``). The request goes over stdin
and the answer comes back as one JSON line on stdout.
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
from unity.plugins.config import validate
from unity_sdk import HealthStatus, PluginBase, PluginError

__all__ = ["run_isolated"]


async def run_isolated(
    cls: type[PluginBase],
    action: str,
    stored_config: dict[str, Any],
    *,
    timeout: float,
    memory_mb: int,
) -> Any:
    """Run ``action`` (``collect`` or ``health``) of ``cls`` in a child process."""
    request = json.dumps(
        {
            "module": cls.__module__,
            "qualname": cls.__qualname__,
            "action": action,
            "config": stored_config,
            "memory_mb": memory_mb,
        }
    ).encode()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "unity.plugins.isolation",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(request), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    lines = stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        detail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise sdk_errors.CollectionError(
            f"isolated process exited with code {proc.returncode}: {detail[0]}"
        )
    answer = json.loads(lines[-1])
    if "error" in answer:
        error_type = getattr(sdk_errors, answer["error"]["type"], None)
        if not (isinstance(error_type, type) and issubclass(error_type, PluginError)):
            error_type = sdk_errors.CollectionError
        raise error_type(answer["error"]["message"])
    return answer["result"]


async def _child(request: dict[str, Any]) -> Any:
    module = importlib.import_module(request["module"])
    cls = module
    for part in request["qualname"].split("."):
        cls = getattr(cls, part)
    assert isinstance(cls, type)
    assert issubclass(cls, PluginBase)
    metadata = cls().get_metadata()
    plugin = cls(config=validate(metadata, request["config"]).plugin)
    await plugin.on_enable()
    try:
        if request["action"] == "health":
            status = await plugin.health_check()
            return HealthStatus.model_validate(status).model_dump(mode="json")
        return await plugin.collect_data()
    finally:
        await plugin.on_disable()


def main() -> None:
    request = json.loads(sys.stdin.read())
    limit = int(request.get("memory_mb", 0)) * 1024 * 1024
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = asyncio.run(_child(request))
        line = json.dumps({"result": result})
    except PluginError as exc:
        line = json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)}})
    except MemoryError:
        line = json.dumps({"error": {"type": "CollectionError", "message": "out of memory"}})
    except Exception as exc:
        line = json.dumps(
            {"error": {"type": "CollectionError", "message": f"{type(exc).__name__}: {exc}"}}
        )
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
