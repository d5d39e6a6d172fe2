"""``tls-certificate`` against real TLS servers on loopback.

Each server is ``asyncio.start_server`` with an SSL context holding a
certificate made in the test: signed by a test CA (valid, expiring in 5 days,
expired, for another name, a wildcard) or self-signed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from applications_support import (
    CertFiles,
    TestCA,
    check_metadata,
    collect_checked,
    free_port,
    make,
    timed_collect,
)
from pydantic import ValidationError

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.tls_certificate import (
    TlsCertificateConfig,
    TlsCertificatePlugin,
    split_address,
)
from unity_sdk import CollectionError, HealthState


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


@asynccontextmanager
async def tls_server(certs: CertFiles | None) -> AsyncIterator[str]:
    """A TLS server (plain TCP when ``certs`` is None) on 127.0.0.1; yields host:port."""
    context = certs.server_context() if certs is not None else None
    server = await asyncio.start_server(_hang_up, "127.0.0.1", 0, ssl=context)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("tls-ca"))


def test_metadata_and_registration() -> None:
    check_metadata(TlsCertificatePlugin, "tls-certificate", "security")
    assert TlsCertificatePlugin in BUILTIN_PLUGINS


async def test_valid_certificate(ca: TestCA) -> None:
    certs = ca.issue("valid", valid_for=dt.timedelta(days=90))
    async with tls_server(certs) as address:
        plugin = make(TlsCertificatePlugin, endpoints=[address], ca_bundle=str(ca.bundle))
        document, seconds = await timed_collect(plugin)
        health = await plugin.health_check()
    target = document["targets"][address]
    assert target["reachable"] == 1
    assert target["status"] == "ok"
    assert target["chain_valid"] == 1
    assert target["hostname_match"] == 1
    assert target["self_signed"] == 0
    assert 89.9 < target["days_until_expiry"] <= 90
    assert target["not_after"] == certs.not_after.replace(microsecond=0).isoformat()
    assert target["issuer"] == "CN=Unity Test CA,O=Unity tests"
    assert target["subject"] == "CN=localhost,O=Unity tests"
    assert "chain_error" not in target
    assert (document["targets_ok"], document["targets_expiring"]) == (1, 0)
    assert document["targets_failing"] == 0
    assert health.status is HealthState.HEALTHY
    print(f"tls-certificate: 1 target in {seconds * 1000:.1f} ms")


async def test_server_name_and_wildcards(ca: TestCA) -> None:
    certs = ca.issue("wildcard", hosts=("*.example.test", "example.test"))
    async with tls_server(certs) as address:
        plugin = make(
            TlsCertificatePlugin,
            ca_bundle=str(ca.bundle),
            endpoints=[
                {"address": address, "server_name": "www.example.test"},
                {"address": address, "server_name": "example.test", "name": "apex"},
                {"address": address, "server_name": "a.b.example.test"},
                {"address": address, "server_name": "example.test.evil"},
                address,
            ],
        )
        document = await collect_checked(plugin)
    targets = document["targets"]
    assert targets[f"www.example.test@{address}"]["hostname_match"] == 1
    assert targets["apex"]["hostname_match"] == 1
    assert targets[f"a.b.example.test@{address}"]["hostname_match"] == 0
    assert targets[f"example.test.evil@{address}"]["hostname_match"] == 0
    assert targets[address]["hostname_match"] == 0
    assert targets[address]["chain_valid"] == 1
    assert targets[address]["status"] == "invalid"
    assert (document["targets_ok"], document["targets_failing"]) == (2, 3)


async def test_expiring_is_degraded(ca: TestCA) -> None:
    async with tls_server(ca.issue("soon", valid_for=dt.timedelta(days=5))) as address:
        plugin = make(TlsCertificatePlugin, endpoints=[address], ca_bundle=str(ca.bundle))
        document = await collect_checked(plugin)
        health = await plugin.health_check()
        relaxed = make(
            TlsCertificatePlugin, endpoints=[address], ca_bundle=str(ca.bundle), warn_days=4
        )
        relaxed_health = await relaxed.health_check()
    target = document["targets"][address]
    assert target["status"] == "expiring"
    assert target["chain_valid"] == 1
    assert 4.9 < target["days_until_expiry"] <= 5
    assert document["targets_expiring"] == 1
    assert health.status is HealthState.DEGRADED
    assert health.message == f"{address} expires in 5 days"
    assert relaxed_health.status is HealthState.HEALTHY


async def test_expired_is_unhealthy(ca: TestCA) -> None:
    async with tls_server(ca.issue("expired", expired=True)) as address:
        plugin = make(TlsCertificatePlugin, endpoints=[address], ca_bundle=str(ca.bundle))
        document = await collect_checked(plugin)
        health = await plugin.health_check()
    target = document["targets"][address]
    assert target["status"] == "expired"
    assert target["chain_valid"] == 0
    assert target["chain_error"] == "certificate has expired"
    assert -2.1 < target["days_until_expiry"] < -1.9
    assert document["targets_failing"] == 1
    assert health.status is HealthState.UNHEALTHY
    assert health.message == f"{address} expired 2 days ago"


async def test_self_signed_is_invalid(ca: TestCA) -> None:
    async with tls_server(ca.issue("self", self_signed=True)) as address:
        plugin = make(TlsCertificatePlugin, endpoints=[address], ca_bundle=str(ca.bundle))
        document = await collect_checked(plugin)
        health = await plugin.health_check()
    target = document["targets"][address]
    assert target["status"] == "invalid"
    assert target["self_signed"] == 1
    assert target["chain_valid"] == 0
    assert "self" in target["chain_error"]
    assert target["hostname_match"] == 1
    assert health.status is HealthState.UNHEALTHY
    assert health.message.startswith(f"{address} untrusted: self")


async def test_system_store_does_not_trust_the_test_ca(ca: TestCA) -> None:
    async with tls_server(ca.issue("private")) as address:
        document = await collect_checked(make(TlsCertificatePlugin, endpoints=[address]))
    target = document["targets"][address]
    assert target["chain_valid"] == 0
    assert target["chain_error"] == "unable to get local issuer certificate"


async def test_unreachable_and_not_tls() -> None:
    closed = f"127.0.0.1:{free_port()}"
    async with tls_server(None) as plain:
        plugin = make(TlsCertificatePlugin, endpoints=[closed, plain], timeout=2)
        document = await collect_checked(plugin)
        health = await plugin.health_check()
    assert document["targets"][closed]["reachable"] == 0
    assert document["targets"][closed]["error"].startswith("connection failed")
    assert document["targets"][plain]["status"] == "unreachable"
    assert document["targets"][plain]["error"].startswith(("TLS handshake failed", "connection"))
    assert document["targets_failing"] == 2
    assert health.status is HealthState.UNHEALTHY


async def test_no_targets_and_bad_bundle(tmp_path: object) -> None:
    assert await collect_checked(make(TlsCertificatePlugin)) == {
        "targets_ok": 0,
        "targets_expiring": 0,
        "targets_failing": 0,
        "targets": {},
    }
    broken = make(TlsCertificatePlugin, ca_bundle="/nonexistent/ca.pem")
    with pytest.raises(CollectionError, match="cannot load the CA bundle"):
        await broken.collect_data()
    assert (await broken.health_check()).status is HealthState.UNHEALTHY


def test_addresses() -> None:
    assert split_address("example.test:8443") == ("example.test", 8443)
    assert split_address("example.test") == ("example.test", 443)
    assert split_address("[::1]:993") == ("::1", 993)
    assert split_address("[::1]") == ("::1", 443)


@pytest.mark.parametrize(
    "config",
    [
        {"endpoints": ["host:notaport"]},
        {"endpoints": ["host:0"]},
        {"endpoints": [":443"]},
        {"endpoints": ["a:1", "a:1"]},
        {"warn_days": -1},
        {"endpoints": [{"address": "a:1", "sni": "x"}]},
    ],
)
def test_rejects_bad_config(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TlsCertificateConfig.model_validate(config)
