"""The ``dns-check`` built-in plugin: do the chosen resolvers answer, fast and right?

Every configured query (name and type A, AAAA, CNAME, MX or TXT) is sent to
every configured resolver as one recursive DNS query with dnspython
(``dns.asyncquery.udp_with_fallback``: UDP, retried over TCP when truncated).
Per resolver and query it reports the latency, the answers, whether they hold
the expected values, and why a query failed: the response code (NXDOMAIN,
SERVFAIL, REFUSED...), NODATA (no record of that type), a timeout or an
unreachable resolver. With no resolvers configured it asks the host's own
(``/etc/resolv.conf``). ``assess`` turns degraded while some lookups fail,
unhealthy while all do.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from unity_sdk import (
    AlertRule,
    CollectionError,
    HealthStatus,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Requirements,
)

if TYPE_CHECKING:
    import dns.rdata

__all__ = ["DnsCheckConfig", "DnsCheckPlugin", "DnsQuery", "split_resolver"]

_QUERY = "resolvers.*.queries.*"

_METRICS = [
    MetricField(name="checks_ok", unit="count", description="Queries answered as expected"),
    MetricField(name="checks_failed", unit="count", description="Queries that failed"),
    MetricField(
        name=f"{_QUERY}.ok",
        unit="bool",
        description="1 when the resolver answered with records (and the expected ones)",
    ),
    MetricField(
        name=f"{_QUERY}.latency_ms",
        unit="ms",
        description="Time to the resolver's answer (absent on timeout or error)",
    ),
    MetricField(
        name=f"{_QUERY}.answer_count",
        unit="count",
        description="Records of the asked type in the answer",
    ),
    MetricField(
        name=f"{_QUERY}.matched",
        unit="bool",
        description="1 when every expected value is among the answers (only with expected)",
    ),
    MetricField(
        name=f"{_QUERY}.answers",
        kind=MetricKind.INFO,
        description="The answers, sorted and comma-separated (MX as 'preference host')",
    ),
    MetricField(
        name=f"{_QUERY}.error",
        kind=MetricKind.INFO,
        description="NXDOMAIN, SERVFAIL, REFUSED..., NODATA, timeout, unreachable, or "
        "'unexpected answers' (absent when ok)",
    ),
]

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT"]


def split_resolver(resolver: str) -> tuple[str, int]:
    """``ip``, ``ip:port``, ``v6`` or ``[v6]:port`` as ``(ip, port)``; ValueError otherwise."""
    if resolver.startswith("["):
        host, _, rest = resolver[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif resolver.count(":") == 1:
        host, port = resolver.split(":")
    else:
        host, port = resolver, "53"
    ipaddress.ip_address(host)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{resolver!r} has no valid port")
    return host, int(port)


class DnsQuery(BaseModel):
    """One name to resolve."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=253, description="Domain name to look up.")
    type: RecordType = Field(default="A", description="Record type: A, AAAA, CNAME, MX or TXT.")
    expected: list[str] | None = Field(
        default=None,
        description="Values that must all be among the answers: addresses, names, "
        "'10 mail.example.com' for MX, the text for TXT.",
    )

    @property
    def key(self) -> str:
        return f"{self.name}/{self.type}"


class DnsCheckConfig(BaseModel):
    """Config of the ``dns-check`` plugin."""

    model_config = ConfigDict(extra="forbid")

    queries: list[DnsQuery] = Field(default_factory=list, description="The names to resolve.")
    resolvers: list[str] = Field(
        default_factory=list,
        description="Resolvers to ask, as ip or ip:port ([v6]:port); empty: the host's own.",
    )
    timeout: float = Field(default=3.0, gt=0, le=30, description="Seconds per query.")

    @field_validator("resolvers")
    @classmethod
    def _check_resolvers(cls, value: list[str]) -> list[str]:
        for resolver in value:
            try:
                split_resolver(resolver)
            except ValueError as exc:
                raise ValueError(f"resolver {resolver!r} is not ip or ip:port") from exc
        if len(set(value)) != len(value):
            raise ValueError("a resolver is listed twice")
        return value

    @field_validator("queries")
    @classmethod
    def _unique_queries(cls, value: list[DnsQuery]) -> list[DnsQuery]:
        keys = [query.key for query in value]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"queries listed twice: {', '.join(duplicates)}")
        return value


class DnsCheckPlugin(PluginBase[DnsCheckConfig]):
    """Resolves names against chosen resolvers and says how fast and how right."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="dns-check",
            name="DNS check",
            version="1.0.0",
            description="Latency, answers and failures of DNS lookups against chosen resolvers.",
            author="Unity developers",
            category=PluginCategory.NETWORK,
            tags=["dns", "resolver", "latency", "network"],
            config_schema=DnsCheckConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["dnspython"]),
            default_interval=60,
            timeout=60,
            alert_rules=[
                AlertRule(
                    id="dns-query-failing",
                    metric="resolvers.*.queries.*.ok",
                    op="==",
                    threshold=0,
                    for_seconds=60,
                    summary="DNS query {item} fails (two checks in a row)",
                ),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        resolvers = cfg.resolvers or _system_resolvers()
        pairs = [(resolver, query) for resolver in resolvers for query in cfg.queries]
        results = await asyncio.gather(
            *(_resolve(resolver, query, cfg.timeout) for resolver, query in pairs)
        )
        document: dict[str, Any] = {
            "checks_ok": sum(result["ok"] for result in results),
            "checks_failed": sum(not result["ok"] for result in results),
            "resolvers": {resolver: {"queries": {}} for resolver in resolvers},
        }
        for (resolver, query), result in zip(pairs, results, strict=True):
            document["resolvers"][resolver]["queries"][query.key] = result
        return document

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Some lookups failing: degraded; every one failing: unhealthy."""
        failed = {
            f"{query} via {resolver}": result["error"]
            for resolver, section in document["resolvers"].items()
            for query, result in section["queries"].items()
            if not result["ok"]
        }
        total = len(failed) + document["checks_ok"]
        if total == 0:
            return HealthStatus.not_applicable("no queries configured")
        if not failed:
            return HealthStatus.healthy(f"{total} lookup(s) fine")
        listing = "; ".join(f"{check}: {error}" for check, error in failed.items())
        message = f"{len(failed)} of {total} lookup(s) failed: {listing}"
        if document["checks_ok"] == 0:
            return HealthStatus.unhealthy(message, failed=failed)
        return HealthStatus.degraded(message, failed=failed)


# dnspython is imported where it is used, so a hub that never runs this plugin never loads it.
def _system_resolvers() -> list[str]:
    import dns.resolver

    try:
        nameservers = dns.resolver.Resolver(configure=True).nameservers
    except dns.resolver.NoResolverConfiguration as exc:
        raise CollectionError(
            "no resolvers configured and the host has none (/etc/resolv.conf)"
        ) from exc
    return [str(nameserver) for nameserver in nameservers]


async def _resolve(resolver: str, query: DnsQuery, timeout: float) -> dict[str, Any]:
    import dns.asyncquery
    import dns.exception
    import dns.message
    import dns.rcode
    import dns.rdatatype

    host, port = split_resolver(resolver)
    rdtype = dns.rdatatype.from_text(query.type)
    request = dns.message.make_query(query.name, rdtype)
    started = time.perf_counter()
    try:
        response, _ = await dns.asyncquery.udp_with_fallback(
            request, host, timeout=timeout, port=port
        )
    except dns.exception.Timeout:
        return {"ok": 0, "error": f"timeout after {timeout:g}s"}
    except OSError as exc:
        return {"ok": 0, "error": f"unreachable: {exc.strerror or exc}"}
    except dns.exception.DNSException as exc:
        return {"ok": 0, "error": f"bad response: {exc}"}
    result: dict[str, Any] = {"latency_ms": (time.perf_counter() - started) * 1000}
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        return {**result, "ok": 0, "error": dns.rcode.to_text(rcode)}
    answers = sorted(
        _text(rdata) for rrset in response.answer if rrset.rdtype == rdtype for rdata in rrset
    )
    result["answer_count"] = len(answers)
    result["answers"] = ", ".join(answers)
    error = None if answers else "NODATA"
    if query.expected is not None:
        wanted = {_normalise(value, query.type) for value in query.expected}
        got = {_normalise(value, query.type) for value in answers}
        result["matched"] = int(wanted <= got)
        if error is None and not result["matched"]:
            error = f"unexpected answers, missing {', '.join(sorted(wanted - got))}"
    if error is not None:
        result["error"] = error
    result["ok"] = int(error is None)
    return result


def _text(rdata: dns.rdata.Rdata) -> str:
    """One answer as people write it: an address, a name, 'preference host', or the text."""
    from dns.rdtypes.ANY.CNAME import CNAME
    from dns.rdtypes.ANY.MX import MX
    from dns.rdtypes.ANY.TXT import TXT
    from dns.rdtypes.IN.A import A
    from dns.rdtypes.IN.AAAA import AAAA

    if isinstance(rdata, A | AAAA):
        return str(rdata.address)
    if isinstance(rdata, CNAME):
        return rdata.target.to_text(omit_final_dot=True)
    if isinstance(rdata, MX):
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True)}"
    if isinstance(rdata, TXT):
        return b"".join(rdata.strings).decode(errors="replace")
    return rdata.to_text()


def _normalise(value: str, record_type: RecordType) -> str:
    if record_type in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return value.strip()
    if record_type == "TXT":
        return value
    return " ".join(value.strip().rstrip(".").lower().split())
