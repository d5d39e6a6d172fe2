"""``/api/credentials`` and ``/api/servers`` on the real app, and plugins that use them:
credential references in configs, remote targets over a real sshd, authorization."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from typing import Any

import httpx
from fastapi import FastAPI

from tests.credentials.helpers import certificate
from tests.credentials.sshd import SSHServer
from unity.auth.external import issue_plugin_key
from unity.storage import registry
from unity_sdk import PluginMetadata


async def add_login(client: httpx.AsyncClient, ssh: SSHServer, name: str = "nas") -> None:
    response = await client.post(
        "/api/credentials",
        json={
            "kind": "server_login",
            "name": f"{name}-login",
            "host": ssh.host,
            "port": ssh.port,
            "username": ssh.user,
            "password": ssh.password,
        },
    )
    assert response.status_code == 201, response.text
    response = await client.post("/api/servers", json={"name": name, "credential": f"{name}-login"})
    assert response.status_code == 201, response.text


async def test_create_list_get_delete(client: httpx.AsyncClient, reader: httpx.AsyncClient) -> None:
    cert, key, _ = certificate(days=3)
    for body in (
        {"kind": "password", "name": "db", "password": "s3cret", "username": "app"},
        {"kind": "ssh_key", "name": "deploy", "generate": True},
        {"kind": "tls_certificate", "name": "nas-tls", "certificate": cert, "private_key": key},
    ):
        response = await client.post("/api/credentials", json=body)
        assert response.status_code == 201, response.text
    listed = (await reader.get("/api/credentials")).json()
    assert [c["name"] for c in listed["items"]] == ["db", "deploy", "nas-tls"]
    deploy = (await reader.get("/api/credentials/deploy")).json()
    assert deploy["kind"] == "ssh_key"
    assert deploy["public"]["fingerprint"].startswith("SHA256:")
    expiring = (await reader.get("/api/credentials/expiring", params={"days": 7})).json()
    assert [c["name"] for c in expiring["items"]] == ["nas-tls"]
    assert (await reader.get("/api/credentials", params={"limit": 1})).json()["next_cursor"] == "db"

    duplicate = await client.post(
        "/api/credentials", json={"kind": "password", "name": "db", "password": "x"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "conflict"
    assert (await client.get("/api/credentials/nope")).status_code == 404
    assert (await client.delete("/api/credentials/db")).status_code == 204
    assert (await client.delete("/api/credentials/db")).status_code == 404


async def test_bad_input_is_422_never_500(client: httpx.AsyncClient) -> None:
    _, other_key, _ = certificate()
    cert, _, _ = certificate()
    bodies: list[Any] = [
        {"kind": "password", "name": "bad name!", "password": "x"},
        {"kind": "password", "name": "a", "password": ""},
        {"kind": "telepathy", "name": "a"},
        {"kind": "ssh_key", "name": "a"},
        {"kind": "ssh_key", "name": "a", "generate": True, "private_key": "x"},
        {"kind": "ssh_key", "name": "a", "private_key": "not a key"},
        {"kind": "tls_certificate", "name": "a", "certificate": cert, "private_key": other_key},
        {"kind": "tls_certificate", "name": "a", "certificate": "x", "private_key": "y"},
        {"kind": "server_login", "name": "a", "host": "h", "username": "u"},
        {"kind": "password", "name": "a", "password": "x", "unexpected": 1},
        [1, 2],
        "text",
    ]
    for body in bodies:
        response = await client.post("/api/credentials", json=body)
        assert response.status_code == 422, (body, response.text)
        assert "error" in response.json()
    response = await client.post("/api/servers", json={"name": "s", "credential": "missing"})
    assert response.status_code == 404
    await client.post("/api/credentials", json={"kind": "api_token", "name": "t", "token": "x"})
    response = await client.post("/api/servers", json={"name": "s", "credential": "t"})
    assert response.status_code == 422
    assert "needs one of" in response.json()["error"]["message"]
    assert (await client.get("/api/credentials/expiring", params={"days": -1})).status_code == 422
    assert (await client.get("/api/credentials", params={"limit": 10**6})).status_code == 422


async def test_read_tokens_cannot_reveal_or_change(
    client: httpx.AsyncClient, reader: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await client.post(
        "/api/credentials", json={"kind": "api_token", "name": "grafana", "token": "glsa_xyz"}
    )
    assert (await reader.post("/api/credentials/grafana/reveal")).status_code == 403
    assert (await reader.get("/api/credentials/audit")).status_code == 403
    assert (await reader.delete("/api/credentials/grafana")).status_code == 403
    created = await reader.post(
        "/api/credentials", json={"kind": "api_token", "name": "x", "token": "y"}
    )
    assert created.status_code == 403
    assert (await anon.get("/api/credentials")).status_code == 401
    for path in ("/api/credentials", "/api/credentials/grafana", "/api/credentials/expiring"):
        response = await reader.get(path)
        assert response.status_code == 200
        assert "glsa_xyz" not in response.text

    revealed = await client.post("/api/credentials/grafana/reveal")
    assert revealed.json()["secret"] == {"token": "glsa_xyz"}
    audit = (await client.get("/api/credentials/audit", params={"credential": "grafana"})).json()
    reveals = [e for e in audit["items"] if e["action"] == "reveal"]
    assert len(reveals) == 1
    assert reveals[0]["actor"].startswith("token:")
    assert reveals[0]["source"] == "127.0.0.1"


async def test_plugin_config_references_a_credential(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    config = {"password": {"$credential": "pg"}}
    missing = await client.put("/api/plugins/v2/secret-user/config", json=config)
    assert missing.status_code == 422
    assert missing.json()["error"]["details"] == [
        {"loc": ["password"], "msg": "no credential named 'pg'"}
    ]
    await client.post(
        "/api/credentials", json={"kind": "password", "name": "pg", "password": "pg-pass"}
    )
    not_secret = await client.put(
        "/api/plugins/v2/secret-user/config", json={**config, "url": {"$credential": "pg"}}
    )
    assert not_secret.status_code == 422
    saved = await client.put("/api/plugins/v2/secret-user/config", json=config)
    assert saved.status_code == 200, saved.text
    assert saved.json()["config"]["password"] == {"$credential": "pg"}
    shown = (await reader.get("/api/plugins/v2/secret-user/config")).json()
    assert shown["config"]["password"] == {"$credential": "pg"}
    detail = (await reader.get("/api/plugins/v2/secret-user")).json()
    assert detail["config"]["password"] == {"$credential": "pg"}

    run = (await client.post("/api/plugins/v2/secret-user/execute")).json()
    assert run["status"] == "success", run
    assert run["data"] == {"sha256": hashlib.sha256(b"pg-pass").hexdigest(), "length": 7}
    uses = (await client.get("/api/credentials/audit", params={"action": "use"})).json()
    assert [(e["actor"], e["target"]) for e in uses["items"]][:1] == [("hub", "plugin:secret-user")]
    in_use = await client.delete("/api/credentials/pg")
    assert in_use.status_code == 409
    assert "plugin:secret-user" in in_use.json()["error"]["message"]
    # Sending the reference back unchanged keeps it; the stored row holds only the reference.
    async with app.state.db.session() as session:
        row = await registry.get_plugin(session, "secret-user")
        assert row is not None
        assert row.config == config


async def test_external_plugin_reads_resolved_values_with_its_own_key(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    metadata = PluginMetadata(
        id="far-away",
        name="Far away",
        version="1.0.0",
        config_schema={
            "type": "object",
            "properties": {"token": {"type": "string", "writeOnly": True}},
        },
    )
    async with app.state.db.session() as session:
        await registry.sync_plugin(session, metadata=metadata, external=True)
        key = await issue_plugin_key(
            session, plugin_id="far-away", hostname="far", enrollment_id=None
        )
    await client.post("/api/credentials", json={"kind": "api_token", "name": "t", "token": "T0K"})
    saved = await client.put(
        "/api/plugins/v2/far-away/config", json={"token": {"$credential": "t"}}
    )
    assert saved.status_code == 200, saved.text
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key.value}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as c:
        own = (await c.get("/api/plugins/v2/far-away/config")).json()
    assert own["config"]["token"] == "T0K"
    people = (await reader.get("/api/plugins/v2/far-away/config")).json()
    assert people["config"]["token"] == {"$credential": "t"}
    audit = (await client.get("/api/credentials/audit", params={"credential": "t"})).json()
    use = next(e for e in audit["items"] if e["action"] == "use")
    assert (use["actor"], use["source"], use["target"]) == (
        "plugin:far-away",
        "127.0.0.1",
        "plugin:far-away",
    )


async def test_servers_check_pins_and_plugin_collects_remotely(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient, ssh_server: SSHServer
) -> None:
    await add_login(client, ssh_server)
    server = (await reader.get("/api/servers/nas")).json()
    assert (server["host"], server["port"], server["username"]) == (
        ssh_server.host,
        ssh_server.port,
        ssh_server.user,
    )
    assert server["host_key_fingerprint"] is None
    check = (await client.post("/api/servers/nas/check")).json()
    assert check == {
        "server": "nas",
        "fingerprint": ssh_server.host_fingerprint(),
        "algorithm": "ssh-ed25519",
        "first_contact": True,
    }
    assert (await client.post("/api/servers/nas/check")).json()["first_contact"] is False
    assert (await reader.post("/api/servers/nas/check")).status_code == 403

    bad = await client.put("/api/plugins/v2/remote-load/config", json={"targets": ["nope"]})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["targets"]
    not_remote = await client.put("/api/plugins/v2/counter/config", json={"targets": ["nas"]})
    assert not_remote.status_code == 422
    saved = await client.put(
        "/api/plugins/v2/remote-load/config", json={"targets": ["nas", "local"]}
    )
    assert saved.status_code == 200, saved.text

    run = (await client.post("/api/plugins/v2/remote-load/execute")).json()
    assert run["status"] == "success", run
    assert run["metrics_count"] == 2
    assert set(run["data"]) == {"nas", "test-host"}
    assert run["data"]["nas"]["node"] == socket.gethostname()
    assert run["data"]["nas"]["runner"] == "nas"
    metrics = (
        await reader.get("/api/plugins/v2/remote-load/metrics", params={"host": "nas"})
    ).json()
    assert [m["host"] for m in metrics["items"]] == ["nas"]
    assert metrics["items"][0]["data"]["load1"] >= 0

    in_use = await client.delete("/api/servers/nas")
    assert in_use.status_code == 409

    # Scheduled runs collect from every target too.
    await client.put("/api/plugins/v2/remote-load/config", json={"targets": ["nas"], "interval": 1})
    assert (await client.post("/api/plugins/v2/remote-load/enable")).status_code == 200
    # Under load a tick may be skipped while the previous run still holds the
    # plugin; what matters is that scheduled runs succeed and none fails.
    for _ in range(300):
        executions = (await reader.get("/api/plugins/v2/remote-load/executions")).json()
        scheduled = [e for e in executions["items"] if e["trigger"] == "schedule"]
        if any(e["status"] == "success" for e in scheduled):
            break
        await asyncio.sleep(0.1)
    assert any(e["status"] == "success" for e in scheduled), scheduled
    assert not [e for e in scheduled if e["status"] in ("failed", "timed_out")], scheduled
    await client.post("/api/plugins/v2/remote-load/disable")
    hosts = (await reader.get("/api/plugins/v2/remote-load/metrics", params={"limit": 10})).json()
    assert {m["host"] for m in hosts["items"]} == {"nas", "test-host"}


async def test_remote_failure_keeps_the_other_targets(
    client: httpx.AsyncClient, ssh_server: SSHServer
) -> None:
    await add_login(client, ssh_server)
    await client.post(
        "/api/credentials",
        json={
            "kind": "server_login",
            "name": "gone-login",
            "host": "127.0.0.1",
            "port": 1,
            "username": "x",
            "password": "p",
        },
    )
    await client.post("/api/servers", json={"name": "gone", "credential": "gone-login"})
    await client.put("/api/plugins/v2/remote-load/config", json={"targets": ["nas", "gone"]})
    run = (await client.post("/api/plugins/v2/remote-load/execute")).json()
    assert run["status"] == "failed"
    assert "gone: SSHConnectError" in run["error"]
    assert run["metrics_count"] == 1
    assert set(run["data"]) == {"nas"}
    check = await client.post("/api/servers/gone/check")
    assert check.status_code == 502
    assert "cannot connect" in check.json()["error"]["message"]


async def test_host_key_change_answers_409_until_accepted(
    client: httpx.AsyncClient, own_ssh_server: SSHServer
) -> None:
    await add_login(client, own_ssh_server, "box")
    first = (await client.post("/api/servers/box/check")).json()["fingerprint"]
    own_ssh_server.restart(new_host_key=True)
    refused = await client.post("/api/servers/box/check")
    assert refused.status_code == 409
    details = refused.json()["error"]["details"]
    assert details == {
        "server": "box",
        "offered": own_ssh_server.host_fingerprint(),
        "pinned": first,
    }
    pending = (await client.get("/api/servers/box")).json()["pending_host_key_fingerprint"]
    assert pending == details["offered"]
    wrong = await client.post("/api/servers/box/accept-host-key", json={"fingerprint": first})
    assert wrong.status_code == 422
    accepted = await client.post("/api/servers/box/accept-host-key", json={"fingerprint": pending})
    assert accepted.json()["host_key_fingerprint"] == pending
    assert (await client.post("/api/servers/box/check")).status_code == 200


async def test_authorized_keys_endpoints(client: httpx.AsyncClient, ssh_server: SSHServer) -> None:
    saved = ssh_server.authorized_keys.read_bytes()
    try:
        await add_login(client, ssh_server)
        await client.patch(
            "/api/servers/nas", json={"authorized_keys_file": str(ssh_server.authorized_keys)}
        )
        await client.post(
            "/api/credentials", json={"kind": "ssh_key", "name": "k", "generate": True}
        )
        installed = (
            await client.post("/api/servers/nas/authorized-keys", json={"credential": "k"})
        ).json()
        assert installed["changed"] is True
        assert installed["backup"].startswith(str(ssh_server.authorized_keys))
        removed = (await client.delete("/api/servers/nas/authorized-keys/k")).json()
        assert removed["changed"] is True
        assert ssh_server.authorized_keys.read_bytes() == saved
        missing = await client.delete("/api/servers/nas/authorized-keys/nope")
        assert missing.status_code == 404
    finally:
        ssh_server.authorized_keys.write_bytes(saved)
        for leftover in ssh_server.authorized_keys.parent.glob("authorized_keys.*"):
            leftover.unlink()


async def test_a_stranger_gets_401_before_the_body_is_looked_at(anon: httpx.AsyncClient) -> None:
    # Before: the union body was parsed first, so a stranger learned 422 about it.
    for body in (b"{not json", b'{"kind": "nope"}', b'{"kind": "password", "name": "x"}'):
        answer = await anon.post(
            "/api/credentials", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 401, (body, answer.text)
