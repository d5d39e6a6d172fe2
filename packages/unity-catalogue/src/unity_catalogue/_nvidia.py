"""Running ``nvidia-smi`` queries and parsing their CSV, shared by ``nvidia-smi`` and ``gpu``.

``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits`` prints one
line per GPU, values separated by ``", "`` in the order asked; a value the
GPU does not report is ``[N/A]`` or ``[Not Supported]`` (older drivers print
``N/A``). ``--query-compute-apps`` prints one line per process using a GPU,
nothing when there is none. Without a working driver nvidia-smi exits 9
with "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA
driver"; without GPUs it exits 6 with "No devices were found".
"""

from __future__ import annotations

import csv
from typing import Any

from unity_sdk import DependencyMissingError, PluginBase

__all__ = ["GPU_FIELDS", "PROCESS_FIELDS", "query_gpus", "query_processes"]

# nvidia-smi field -> (document key, numeric).
GPU_FIELDS = {
    "index": ("index", True),
    "name": ("name", False),
    "uuid": ("uuid", False),
    "utilization.gpu": ("utilization", True),
    "utilization.memory": ("memory_utilization", True),
    "memory.total": ("memory_total", True),
    "memory.used": ("memory_used", True),
    "temperature.gpu": ("temperature", True),
    "power.draw": ("power_draw", True),
    "power.limit": ("power_limit", True),
    "fan.speed": ("fan_speed", True),
}
PROCESS_FIELDS = {
    "pid": ("pid", True),
    "process_name": ("name", False),
    "used_memory": ("memory_used", True),
    "gpu_uuid": ("gpu_uuid", False),
}
_MISSING = {"[n/a]", "n/a", "[not supported]", "[unknown error]", "[insufficient permissions]"}
_NO_DRIVER = "couldn't communicate with the nvidia driver"
_NO_DEVICES = "no devices were found"


async def query_gpus(plugin: PluginBase[Any], timeout: float) -> list[dict[str, Any]]:
    """One dict per GPU with the keys of ``GPU_FIELDS`` whose value the GPU reports."""
    output = await _run(plugin, f"--query-gpu={','.join(GPU_FIELDS)}", timeout)
    return _parse(output, GPU_FIELDS)


async def query_processes(plugin: PluginBase[Any], timeout: float) -> list[dict[str, Any]]:
    """One dict per process using a GPU (compute apps), keys of ``PROCESS_FIELDS``."""
    output = await _run(plugin, f"--query-compute-apps={','.join(PROCESS_FIELDS)}", timeout)
    return _parse(output, PROCESS_FIELDS)


async def _run(plugin: PluginBase[Any], query: str, timeout: float) -> str:
    argv = ["nvidia-smi", query, "--format=csv,noheader,nounits"]
    result = await plugin.runner.run(argv, timeout=timeout)
    said = f"{result.stdout}\n{result.stderr}".strip()
    if not result.ok and _NO_DRIVER in said.lower():
        raise DependencyMissingError(
            "nvidia-smi couldn't communicate with the NVIDIA driver (not installed or not loaded)"
        )
    if not result.ok and _NO_DEVICES in said.lower():
        return ""
    if "insufficient permissions" in said.lower() and not result.ok:
        raise DependencyMissingError("nvidia-smi: insufficient permissions for the GPU devices")
    return result.check().stdout


def _parse(output: str, fields: dict[str, tuple[str, bool]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for cells in csv.reader(output.splitlines(), skipinitialspace=True):
        if len(cells) != len(fields):
            continue
        row: dict[str, Any] = {}
        for (key, numeric), cell in zip(fields.values(), cells, strict=True):
            value = cell.strip()
            if value.lower() in _MISSING or not value:
                continue
            if numeric:
                try:
                    number = float(value)
                except ValueError:
                    continue
                row[key] = (
                    int(number) if number.is_integer() and key in ("index", "pid") else number
                )
            else:
                row[key] = value
        rows.append(row)
    return rows
