"""The ``zpool-status`` built-in plugin: state, space, errors and scrubs of ZFS pools.

Parses two outputs of OpenZFS 2.x:

* ``zpool list -Hp -o name,size,allocated,free,fragmentation,capacity,dedupratio,health``:
  one tab-separated line per pool, sizes in bytes, percentages as integers,
  ``-`` where a value does not apply; ``no pools available`` without pools;
* ``zpool status -p``: per pool the ``pool:``, ``state:``, ``status:``,
  ``action:``, ``scan:`` and ``errors:`` paragraphs and the ``config:`` table
  (``NAME STATE READ WRITE CKSUM`` with tab-and-space indentation per vdev
  level; ``-p`` prints exact error counts).

Health (``assess``, after every run): a DEGRADED pool, vdev errors, data
errors or a pool fuller than ``capacity_warn`` make it degraded; FAULTED,
UNAVAIL or SUSPENDED pools make it unhealthy; a host without pools is not
applicable (nothing to monitor).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    AlertRule,
    DependencyMissingError,
    HealthStatus,
    HostFacts,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Proposal,
    Requirements,
)

from ._proposing import one_proposal

__all__ = ["ZpoolStatusConfig", "ZpoolStatusPlugin"]

_TIMEOUT = 30.0
_LIST = [
    "zpool",
    "list",
    "-Hp",
    "-o",
    "name,size,allocated,free,fragmentation,capacity,dedupratio,health",
]
_STATUS = ["zpool", "status", "-p"]
_NUMERIC = ("size", "allocated", "free", "fragmentation", "capacity")
_FAILED_STATES = {"FAULTED", "UNAVAIL", "SUSPENDED", "REMOVED"}
_KEY = re.compile(r"^\s*(pool|state|status|action|see|scan|config|errors|remove|checkpoint):\s?")
_SECTIONS = {"logs", "cache", "spares", "special", "dedup"}
_SUFFIX = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}

_METRICS = [
    MetricField(name="pools.*.state", kind=MetricKind.INFO, description="Pool state"),
    MetricField(name="pools.*.online", unit="bool", description="1 while the pool is ONLINE"),
    MetricField(name="pools.*.size", unit="bytes", description="Pool size"),
    MetricField(name="pools.*.allocated", unit="bytes", description="Space allocated"),
    MetricField(name="pools.*.free", unit="bytes", description="Space free"),
    MetricField(name="pools.*.capacity", unit="%", description="Share of the pool allocated"),
    MetricField(
        name="pools.*.fragmentation", unit="%", description="Fragmentation of the free space"
    ),
    MetricField(name="pools.*.dedup_ratio", unit="ratio", description="Deduplication ratio"),
    MetricField(
        name="pools.*.read_errors", unit="count", description="Read errors of all its vdevs"
    ),
    MetricField(
        name="pools.*.write_errors", unit="count", description="Write errors of all its vdevs"
    ),
    MetricField(
        name="pools.*.checksum_errors",
        unit="count",
        description="Checksum errors of all its vdevs",
    ),
    MetricField(name="pools.*.vdevs.*.state", kind=MetricKind.INFO, description="Vdev state"),
    MetricField(name="pools.*.vdevs.*.read_errors", unit="count", description="Read errors"),
    MetricField(name="pools.*.vdevs.*.write_errors", unit="count", description="Write errors"),
    MetricField(
        name="pools.*.vdevs.*.checksum_errors", unit="count", description="Checksum errors"
    ),
    MetricField(
        name="pools.*.scan.function", kind=MetricKind.INFO, description="scrub or resilver"
    ),
    MetricField(
        name="pools.*.scan.state",
        kind=MetricKind.INFO,
        description="in_progress, finished or canceled",
    ),
    MetricField(name="pools.*.scan.progress", unit="%", description="Progress of a running scan"),
    MetricField(
        name="pools.*.scan.errors", unit="count", description="Errors the last finished scan found"
    ),
    MetricField(name="pool_count", unit="count", description="Imported pools"),
    MetricField(name="unhealthy_count", unit="count", description="Pools that are not ONLINE"),
]


class ZpoolStatusConfig(BaseModel):
    """Config of the ``zpool-status`` plugin."""

    model_config = ConfigDict(extra="forbid")

    capacity_warn: float = Field(
        default=80.0,
        gt=0,
        le=100,
        description="Degraded when a pool is fuller than this (%); ZFS slows down past ~80 %.",
    )


class ZpoolStatusPlugin(PluginBase[ZpoolStatusConfig]):
    """Reports every imported ZFS pool of the host."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="zpool-status",
            name="ZFS pools",
            version="1.0.0",
            description="State, size, capacity, fragmentation, vdev errors and the last "
            "scrub or resilver of every ZFS pool, from zpool list and zpool status.",
            author="Unity developers",
            category=PluginCategory.STORAGE,
            tags=["zfs", "zpool", "storage", "raid", "scrub"],
            config_schema=ZpoolStatusConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["zpool"]),
            default_interval=120,
            timeout=60,
            supports_remote=True,
            alert_rules=[
                AlertRule(
                    id="zfs-degraded",
                    metric="pools.*.online",
                    op="==",
                    threshold=0,
                    severity="critical",
                    summary="ZFS pool {item} on {host} is not ONLINE",
                ),
                AlertRule(
                    id="zfs-capacity",
                    metric="pools.*.capacity",
                    threshold=80,
                    clear=75,
                    for_seconds=600,
                    summary="ZFS pool {item} on {host} is {value}% full",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """ZFS pools, as ``zpool list`` showed them."""
        pools = facts.zfs_pools
        if not pools:
            return []
        return one_proposal(
            cls,
            title=f"ZFS: {len(pools)} pool{'s' if len(pools) > 1 else ''}",
            reason="zpool list shows "
            + ", ".join(f"{pool.name} ({pool.health or 'health unknown'})" for pool in pools)
            + ".",
        )

    async def collect_data(self) -> dict[str, Any]:
        pools = _list(await self._zpool(_LIST))
        if pools:
            for name, status in _status(await self._zpool(_STATUS)).items():
                pools.setdefault(name, {"state": status["state"]}).update(status)
        for pool in pools.values():
            pool["online"] = int(pool["state"] == "ONLINE")
        return {
            "pools": pools,
            "pool_count": len(pools),
            "unhealthy_count": sum(not pool["online"] for pool in pools.values()),
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    async def _zpool(self, argv: list[str]) -> str:
        result = await self.runner.run(argv, timeout=_TIMEOUT)
        text = f"{result.stdout}\n{result.stderr}".lower()
        if not result.ok and ("modules are not loaded" in text or "/dev/zfs" in text):
            raise DependencyMissingError("the ZFS kernel module is not loaded (modprobe zfs)")
        return result.check().stdout

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Problems: degraded; FAULTED, UNAVAIL or SUSPENDED: unhealthy; no pool: not applicable."""
        cfg = self.config
        pools: dict[str, dict[str, Any]] = document["pools"]
        if not pools:
            return HealthStatus.not_applicable("no ZFS pools are imported")
        problems = [
            f"{name}: {problem}"
            for name, pool in pools.items()
            for problem in _problems(name, pool, cfg)
        ]
        failed = [name for name, pool in pools.items() if pool["state"] in _FAILED_STATES]
        if failed:
            return HealthStatus.unhealthy("; ".join(problems), pools=failed)
        if problems:
            return HealthStatus.degraded("; ".join(problems))
        filled = ", ".join(
            f"{name} {pool['capacity']}% full" if "capacity" in pool else name
            for name, pool in pools.items()
        )
        return HealthStatus.healthy(f"{len(pools)} pool(s) online: {filled}")


def _count(text: str) -> int:
    """An error count: exact with -p, but accept the human form (``1.2K``) too."""
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"([\d.]+)([KMGT])", text)
    return int(float(match[1]) * _SUFFIX[match[2]]) if match else 0


def _list(output: str) -> dict[str, dict[str, Any]]:
    pools: dict[str, dict[str, Any]] = {}
    for line in output.splitlines():
        cells = line.split("\t")
        if len(cells) != 8:
            continue
        name, *values, dedup, health = cells
        pool: dict[str, Any] = {"state": health}
        for key, value in zip(_NUMERIC, values, strict=True):
            if value.isdigit():
                pool[key] = int(value)
        ratio = dedup.rstrip("x")
        if re.fullmatch(r"\d+(\.\d+)?", ratio):
            pool["dedup_ratio"] = float(ratio)
        pools[name] = pool
    return pools


def _status(output: str) -> dict[str, dict[str, Any]]:
    """Per pool: state, status/action text, scan, vdevs and data errors."""
    pools: dict[str, dict[str, Any]] = {}
    pool: dict[str, Any] | None = None
    texts: dict[str, list[str]] = {}
    key = ""
    for line in output.splitlines():
        match = _KEY.match(line)
        if match and not line.startswith("\t"):
            key = match[1]
            rest = line[match.end() :].strip()
            if key == "pool":
                pool = pools[rest] = {"vdevs": {}}
                texts = {}
                pool["_texts"] = texts
            texts.setdefault(key, []).append(rest)
            continue
        if pool is None:
            continue
        if key == "config":
            _vdev(pool["vdevs"], line)
        elif line.strip():
            texts.setdefault(key, []).append(line.strip())
    for pool in pools.values():
        texts = pool.pop("_texts")
        pool["state"] = " ".join(texts.get("state", [""])).strip()
        for field in ("status", "action", "errors"):
            if any(texts.get(field, [])):
                pool[field] = " ".join(part for part in texts[field] if part)
        scan = _scan(" ".join(texts.get("scan", [])))
        if scan:
            pool["scan"] = scan
        # Every row (the pool's, each group's, each device's) counts its own I/O errors.
        for field in ("read_errors", "write_errors", "checksum_errors"):
            pool[field] = sum(vdev.get(field, 0) for vdev in pool["vdevs"].values())
    return pools


def _vdev(vdevs: dict[str, dict[str, Any]], line: str) -> None:
    cells = line.split()
    if not cells or cells[0] == "NAME":
        return
    name = cells[0]
    if len(cells) == 1 and name in _SECTIONS:
        return
    vdev: dict[str, Any] = {"state": cells[1] if len(cells) > 1 else ""}
    if len(cells) >= 5:
        vdev["read_errors"] = _count(cells[2])
        vdev["write_errors"] = _count(cells[3])
        vdev["checksum_errors"] = _count(cells[4])
        if len(cells) > 5:
            vdev["note"] = " ".join(cells[5:])
    vdevs[name] = vdev


def _scan(text: str) -> dict[str, Any]:
    if not text or text.startswith("none requested"):
        return {}
    function = "resilver" if text.startswith("resilver") else "scrub"
    scan: dict[str, Any] = {"function": function, "text": text}
    if "in progress" in text:
        scan["state"] = "in_progress"
        progress = re.search(r"([\d.]+)% done", text)
        if progress:
            scan["progress"] = float(progress[1])
    elif "canceled" in text:
        scan["state"] = "canceled"
    else:
        scan["state"] = "finished"
        errors = re.search(r"with (\d+) errors", text)
        if errors:
            scan["errors"] = int(errors[1])
        ended = re.search(r" on (.+)$", text)
        if ended:
            scan["ended"] = ended[1]
    return scan


def _problems(name: str, pool: dict[str, Any], cfg: ZpoolStatusConfig) -> list[str]:
    problems = []
    if pool["state"] != "ONLINE":
        vdevs = pool.get("vdevs", {})
        bad = [f"{n} {v['state']}" for n, v in vdevs.items() if n != name and _bad_vdev(v)]
        problems.append(f"{pool['state']}" + (f" ({', '.join(bad)})" if bad else ""))
    errors = sum(pool.get(f, 0) for f in ("read_errors", "write_errors", "checksum_errors"))
    if errors:
        problems.append(f"{errors} vdev I/O or checksum errors")
    if pool.get("errors", "No known data errors") != "No known data errors":
        problems.append(f"data errors: {pool['errors']}")
    if pool.get("scan", {}).get("errors"):
        problems.append(f"last {pool['scan']['function']} found {pool['scan']['errors']} errors")
    if pool.get("capacity", 0) > cfg.capacity_warn:
        problems.append(f"{pool['capacity']}% full")
    return problems


def _bad_vdev(vdev: dict[str, Any]) -> bool:
    return vdev["state"] not in ("ONLINE", "AVAIL", "INUSE", "")
