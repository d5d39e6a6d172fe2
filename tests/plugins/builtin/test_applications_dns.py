"""``dns-check`` against a real DNS server on loopback: dnsmasq.

dnsmasq runs on 127.0.0.1 on a free port with only local records
(``--no-resolv``: it never forwards anywhere) and ``--local=/test/`` so other
``.test`` names are NXDOMAIN. A SERVFAIL answer and a silent resolver come
from tiny UDP servers in the test, built on dnspython's wire format.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import cast

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest
from applications_support import check_metadata, collect_checked, free_port, make, timed_collect
from pydantic import ValidationError

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.dns_check import DnsCheckConfig, DnsCheckPlugin, split_resolver
from unity_sdk import HealthState

RECORDS = [
    "--address=/example.test/10.1.2.3",
    "--address=/multi.test/10.0.0.1",
    "--address=/multi.test/10.0.0.2",
    "--host-record=dual.test,10.0.0.7,fd00::7",
    "--host-record=v4only.test,10.0.0.8",
    "--cname=alias.test,dual.test",
    "--mx-host=mail.test,mx1.mail.test,10",
    "--mx-host=mail.test,mx2.mail.test,20",
    "--txt-record=mail.test,v=spf1 -all",
]


@pytest.fixture(scope="module")
def dnsmasq() -> Iterator[str]:
    """A dnsmasq answering from local records only; yields its ip:port."""
    binary = shutil.which("dnsmasq") or next(
        (path for path in ("/usr/sbin/dnsmasq",) if os.path.exists(path)), None
    )
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("dnsmasq is not installed (scripts/test installs dnsmasq-base)")
        pytest.skip("dnsmasq is not installed: apt-get install dnsmasq-base")
    port = free_port(socket.SOCK_DGRAM)
    process = subprocess.Popen(
        [
            binary,
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={port}",
            "--local=/test/",
            *RECORDS,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = dns.message.make_query("example.test", "A")
        deadline = time.monotonic() + 10
        while True:
            try:
                dns.query.udp(probe, "127.0.0.1", port=port, timeout=0.2)
                break
            except (dns.exception.Timeout, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dnsmasq did not start (exit {process.poll()})") from None
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Answering(asyncio.DatagramProtocol):
    """Answers every query with one response code."""

    def __init__(self, rcode: dns.rcode.Rcode) -> None:
        self.rcode = rcode
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(self.rcode)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def udp_server(rcode: dns.rcode.Rcode | None) -> AsyncIterator[str]:
    """A UDP DNS server answering ``rcode``, or a silent one for None; yields ip:port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        (lambda: _Answering(rcode)) if rcode is not None else asyncio.DatagramProtocol,
        local_addr=("127.0.0.1", 0),
    )
    try:
        yield f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()


def test_metadata_and_registration() -> None:
    check_metadata(DnsCheckPlugin, "dns-check", "network")
    assert DnsCheckPlugin in BUILTIN_PLUGINS


async def test_record_types_and_expectations(dnsmasq: str) -> None:
    plugin = make(
        DnsCheckPlugin,
        resolvers=[dnsmasq],
        queries=[
            {"name": "example.test", "expected": ["10.1.2.3"]},
            {"name": "www.example.test"},
            {"name": "multi.test", "expected": ["10.0.0.2", "10.0.0.1"]},
            {"name": "dual.test", "type": "AAAA", "expected": ["FD00:0::7"]},
            {"name": "alias.test", "type": "CNAME", "expected": ["DUAL.test."]},
            {"name": "alias.test", "type": "A", "expected": ["10.0.0.7"]},
            {"name": "mail.test", "type": "MX", "expected": ["10 mx1.mail.test"]},
            {"name": "mail.test", "type": "TXT", "expected": ["v=spf1 -all"]},
        ],
    )
    document, seconds = await timed_collect(plugin)
    queries = document["resolvers"][dnsmasq]["queries"]
    assert all(result["ok"] == 1 for result in queries.values()), queries
    assert all("error" not in result for result in queries.values())
    assert queries["example.test/A"]["answers"] == "10.1.2.3"
    assert queries["example.test/A"]["matched"] == 1
    assert 0 < queries["example.test/A"]["latency_ms"] < 1000
    assert queries["www.example.test/A"]["answers"] == "10.1.2.3"
    assert "matched" not in queries["www.example.test/A"]
    assert queries["multi.test/A"]["answers"] == "10.0.0.1, 10.0.0.2"
    assert queries["multi.test/A"]["answer_count"] == 2
    assert queries["dual.test/AAAA"]["answers"] == "fd00::7"
    assert queries["alias.test/CNAME"]["answers"] == "dual.test"
    assert queries["alias.test/A"]["answers"] == "10.0.0.7"
    assert queries["mail.test/MX"]["answers"] == "10 mx1.mail.test, 20 mx2.mail.test"
    assert queries["mail.test/TXT"]["answers"] == "v=spf1 -all"
    assert (document["checks_ok"], document["checks_failed"]) == (8, 0)
    assert (await plugin.health_check()).status is HealthState.HEALTHY
    print(f"dns-check: 8 queries in {seconds * 1000:.1f} ms")


async def test_failures_are_reported(dnsmasq: str) -> None:
    plugin = make(
        DnsCheckPlugin,
        resolvers=[dnsmasq],
        queries=[
            {"name": "example.test"},
            {"name": "missing.test"},
            {"name": "v4only.test", "type": "AAAA"},
            {"name": "multi.test", "expected": ["10.0.0.1", "10.0.0.9"]},
        ],
    )
    document = await collect_checked(plugin)
    queries = document["resolvers"][dnsmasq]["queries"]
    assert queries["example.test/A"]["ok"] == 1
    assert queries["missing.test/A"]["ok"] == 0
    assert queries["missing.test/A"]["error"] == "NXDOMAIN"
    assert "latency_ms" in queries["missing.test/A"]
    assert queries["v4only.test/AAAA"]["error"] == "NODATA"
    assert queries["v4only.test/AAAA"]["answer_count"] == 0
    assert queries["multi.test/A"]["matched"] == 0
    assert queries["multi.test/A"]["error"] == "unexpected answers, missing 10.0.0.9"
    assert (document["checks_ok"], document["checks_failed"]) == (1, 3)
    health = await plugin.health_check()
    assert health.status is HealthState.DEGRADED
    assert health.message.startswith("3 of 4 lookup(s) failed: missing.test/A via")
    assert health.details["failed"][f"missing.test/A via {dnsmasq}"] == "NXDOMAIN"


async def test_servfail_timeout_and_unreachable(dnsmasq: str) -> None:
    async with udp_server(dns.rcode.SERVFAIL) as servfail, udp_server(None) as silent:
        closed = f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        plugin = make(
            DnsCheckPlugin,
            resolvers=[dnsmasq, servfail, silent, closed],
            queries=[{"name": "example.test"}],
            timeout=0.5,
        )
        started = time.perf_counter()
        document = await collect_checked(plugin)
        elapsed = time.perf_counter() - started
        health = await plugin.health_check()
    resolvers = document["resolvers"]
    assert resolvers[dnsmasq]["queries"]["example.test/A"]["ok"] == 1
    assert resolvers[servfail]["queries"]["example.test/A"]["error"] == "SERVFAIL"
    assert resolvers[silent]["queries"]["example.test/A"] == {
        "ok": 0,
        "error": "timeout after 0.5s",
    }
    # dnspython does not connect its UDP socket, so no ICMP error comes back: a closed
    # port looks like a silent resolver.
    assert resolvers[closed]["queries"]["example.test/A"]["error"] == "timeout after 0.5s"
    # Every lookup runs at the same time: one timeout, not three, bounds the run.
    assert elapsed < 1.5
    assert health.status is HealthState.DEGRADED


async def test_every_lookup_failing_is_unhealthy() -> None:
    async with udp_server(None) as silent:
        plugin = make(DnsCheckPlugin, resolvers=[silent], queries=[{"name": "a.test"}], timeout=0.2)
        health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert health.message == f"1 of 1 lookup(s) failed: a.test/A via {silent}: timeout after 0.2s"


async def test_system_resolvers_when_none_configured() -> None:
    document = await collect_checked(make(DnsCheckPlugin))
    assert document["checks_ok"] == document["checks_failed"] == 0
    try:
        expected = dns.resolver.Resolver().nameservers
    except dns.resolver.NoResolverConfiguration:
        expected = []
    assert list(document["resolvers"]) == [str(server) for server in expected]


def test_resolver_addresses() -> None:
    assert split_resolver("9.9.9.9") == ("9.9.9.9", 53)
    assert split_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert split_resolver("::1") == ("::1", 53)
    assert split_resolver("[::1]:5353") == ("::1", 5353)


@pytest.mark.parametrize(
    "config",
    [
        {"resolvers": ["dns.example.test"]},
        {"resolvers": ["127.0.0.1:99999"]},
        {"resolvers": ["127.0.0.1", "127.0.0.1"]},
        {"queries": [{"name": "a.test", "type": "SRV"}]},
        {"queries": [{"name": "a.test"}, {"name": "a.test", "type": "A"}]},
        {"timeout": 0},
    ],
)
def test_rejects_bad_config(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DnsCheckConfig.model_validate(config)
