"""``assess(document)`` of the application monitors, on documents from real services.

TLS servers with certificates made for the test, the standard library's HTTP
server, dnsmasq and silent resolvers on loopback, and the local PostgreSQL,
MariaDB and Redis. ``health_check`` must say what ``assess`` says.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
import test_applications_dns
import test_applications_redis
from applications_support import TestCA, collect_checked, free_port, make
from test_applications_dns import udp_server
from test_applications_http import serve
from test_applications_mysql import LOCAL as MYSQL
from test_applications_postgres import LOCAL as POSTGRES
from test_applications_redis import RedisServers
from test_applications_tls import tls_server

from unity_catalogue.dns_check import DnsCheckPlugin
from unity_catalogue.http_check import HttpCheckPlugin
from unity_catalogue.mysql import MysqlPlugin
from unity_catalogue.postgres import PostgresPlugin
from unity_catalogue.redis_server import RedisPlugin
from unity_catalogue.tls_certificate import TlsCertificatePlugin
from unity_sdk import HealthState, HealthStatus, PluginBase, PluginNotReadyError

# The fixtures of the DNS and Redis tests, fixtures of this module too.
dnsmasq = test_applications_dns.dnsmasq
servers = test_applications_redis.servers

HEALTHY, DEGRADED, UNHEALTHY = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.UNHEALTHY


def judged(plugin: PluginBase, document: dict[str, Any]) -> HealthStatus:
    status = plugin.assess(document)
    assert status is not None
    return status


async def collected(plugin: PluginBase, service: str) -> dict[str, Any]:
    """A document from a local service the suite expects (skipped without it, failed in CI)."""
    try:
        return await collect_checked(plugin)
    except PluginNotReadyError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the local {service} is not reachable: {exc}")
        pytest.skip(f"the local {service} is not reachable: {exc}")


# -- tls-certificate --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("assess-ca"))


async def test_certificate_expiring_in_five_days_is_degraded(ca: TestCA) -> None:
    async with (
        tls_server(ca.issue("soon", valid_for=dt.timedelta(days=5))) as soon,
        tls_server(ca.issue("later", valid_for=dt.timedelta(days=90))) as later,
    ):
        plugin = make(TlsCertificatePlugin, endpoints=[soon, later], ca_bundle=str(ca.bundle))
        document = await collect_checked(plugin)
        checked = await plugin.health_check()
    status = judged(plugin, document)
    assert (status.status, status.message) == (DEGRADED, f"{soon} expires in 5 days")
    assert status.details == {"targets": {soon: "expires in 5 days"}}
    assert checked == status


async def test_certificate_within_three_days_or_expired_is_unhealthy(ca: TestCA) -> None:
    async with (
        tls_server(ca.issue("urgent", valid_for=dt.timedelta(days=2))) as urgent,
        tls_server(ca.issue("gone", expired=True)) as gone,
        tls_server(ca.issue("soon", valid_for=dt.timedelta(days=5))) as soon,
    ):
        plugin = make(
            TlsCertificatePlugin, endpoints=[urgent, gone, soon], ca_bundle=str(ca.bundle)
        )
        document = await collect_checked(plugin)
    status = judged(plugin, document)
    assert status.status is UNHEALTHY
    assert status.message == f"{urgent} expires in 2 days; {gone} expired 2 days ago"
    # The merely expiring one is still listed in the details.
    assert status.details["targets"][soon] == "expires in 5 days"


async def test_certificate_marks_follow_warn_days(ca: TestCA) -> None:
    async with tls_server(ca.issue("soon", valid_for=dt.timedelta(days=5))) as soon:
        plugin = make(TlsCertificatePlugin, endpoints=[soon], ca_bundle=str(ca.bundle), warn_days=4)
        document = await collect_checked(plugin)
    status = judged(plugin, document)
    assert (status.status, status.message) == (
        HEALTHY,
        "1 certificate(s) fine, the first expires in 5 days",
    )


async def test_no_certificates_to_watch_is_not_applicable() -> None:
    plugin = make(TlsCertificatePlugin)
    status = judged(plugin, await collect_checked(plugin))
    assert (status.status, status.message) == (
        HealthState.NOT_APPLICABLE,
        "no endpoints configured",
    )


# -- http-check ---------------------------------------------------------------------------


async def test_an_endpoint_going_down_is_degraded_then_unhealthy() -> None:
    refused = f"http://127.0.0.1:{free_port()}/"
    with serve() as url:
        plugin = make(
            HttpCheckPlugin,
            endpoints=[
                {"name": "app", "url": f"{url}/ok"},
                {"name": "api", "url": f"{url}/error"},
            ],
        )
        status = judged(plugin, await collect_checked(plugin))
        assert (status.status, status.message) == (
            DEGRADED,
            "1 of 2 endpoint(s) down: api: status 500, expected 200",
        )
        assert status.details == {"endpoints": {"api": "status 500, expected 200"}}
        only_app = make(HttpCheckPlugin, endpoints=[{"name": "app", "url": f"{url}/ok"}])
        up = judged(only_app, await collect_checked(only_app))
        assert (up.status, up.message) == (HEALTHY, "1 endpoint(s) up")
    # The server is gone: every endpoint is down.
    document = await collect_checked(plugin)
    status = judged(plugin, document)
    assert status.status is UNHEALTHY
    assert status.message.startswith("all 2 endpoint(s) down: app: connection failed")
    dead = make(HttpCheckPlugin, endpoints=[{"name": "dead", "url": refused}])
    assert (await dead.health_check()) == judged(dead, await collect_checked(dead))


async def test_no_endpoints_is_not_applicable() -> None:
    plugin = make(HttpCheckPlugin)
    status = judged(plugin, await collect_checked(plugin))
    assert status.status is HealthState.NOT_APPLICABLE


# -- dns-check ----------------------------------------------------------------------------


async def test_some_lookups_failing_is_degraded_all_unhealthy(dnsmasq: str) -> None:
    async with udp_server(None) as silent:
        both = make(
            DnsCheckPlugin,
            resolvers=[dnsmasq, silent],
            queries=[{"name": "example.test"}],
            timeout=0.3,
        )
        status = judged(both, await collect_checked(both))
        alone = make(
            DnsCheckPlugin, resolvers=[silent], queries=[{"name": "example.test"}], timeout=0.3
        )
        failing = judged(alone, await collect_checked(alone))
    assert (status.status, status.message) == (
        DEGRADED,
        f"1 of 2 lookup(s) failed: example.test/A via {silent}: timeout after 0.3s",
    )
    assert (failing.status, failing.message) == (
        UNHEALTHY,
        f"1 of 1 lookup(s) failed: example.test/A via {silent}: timeout after 0.3s",
    )
    fine = make(DnsCheckPlugin, resolvers=[dnsmasq], queries=[{"name": "example.test"}])
    assert judged(fine, await collect_checked(fine)).message == "1 lookup(s) fine"


async def test_no_queries_is_not_applicable(dnsmasq: str) -> None:
    plugin = make(DnsCheckPlugin, resolvers=[dnsmasq])
    status = judged(plugin, await collect_checked(plugin))
    assert (status.status, status.message) == (
        HealthState.NOT_APPLICABLE,
        "no queries configured",
    )


# -- databases ----------------------------------------------------------------------------


async def test_postgres_connections_near_the_limit_are_degraded() -> None:
    plugin = make(PostgresPlugin, **POSTGRES)
    document = await collected(plugin, "PostgreSQL")
    status = judged(plugin, document)
    connections = document["connections"]
    assert (status.status, status.message) == (
        HEALTHY,
        f"PostgreSQL {document['version']} primary, "
        f"{connections['total']} of {connections['max']} connections",
    )
    # The same document against a mark the server is already past.
    crowded = make(PostgresPlugin, **POSTGRES, warn_connections_percent=0.001)
    status = judged(crowded, document)
    assert (status.status, status.message) == (
        DEGRADED,
        f"{connections['total']} of {connections['max']} connections in use",
    )


async def test_mysql_connections_near_the_limit_are_degraded() -> None:
    plugin = make(MysqlPlugin, **MYSQL)
    document = await collected(plugin, "MariaDB")
    assert judged(plugin, document).status is HEALTHY
    crowded = make(MysqlPlugin, **MYSQL, warn_connections_percent=0.001)
    status = judged(crowded, document)
    assert status.status is DEGRADED
    assert status.message == (
        f"{document['threads']['connected']} of {document['connections']['max']} connections in use"
    )


async def test_redis_memory_near_maxmemory_is_degraded(servers: RedisServers) -> None:
    port = servers.start("--maxmemory", "64mb")
    try:
        plugin = make(RedisPlugin, port=port)
        document = await collect_checked(plugin)
        assert judged(plugin, document).status is HEALTHY
        used = document["ratios"]["memory_of_max"]
        tight = make(RedisPlugin, port=port, warn_memory_percent=used / 2)
        status = judged(tight, document)
    finally:
        servers.stop(port)
    assert (status.status, status.message) == (DEGRADED, f"{used:.0f} % of maxmemory in use")
