"""Secrets never leak: canary secrets planted in every kind of credential and in a
plugin config reference; the whole credentials and servers API and CLI is driven,
and every response body, CLI output and log record is searched for them. The
explicit reveal is the only place they may appear."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

import asyncssh
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text as sql
from typer.testing import CliRunner

from tests.credentials.helpers import certificate
from tests.credentials.sshd import SSHServer
from unity.cli.main import app as cli_app
from unity.settings import Settings


def pem_body(pem: str) -> list[str]:
    """The base64 lines of a PEM/OpenSSH block: any one of them is secret material."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


async def test_no_canary_escapes(
    app: FastAPI,
    client: httpx.AsyncClient,
    reader: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    ssh_server: SSHServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    tag = secrets.token_hex(6)
    password = f"CANARY-password-{tag}"
    token = f"CANARY-token-{tag}"
    passphrase = f"CANARY-passphrase-{tag}"
    typed = f"CANARY-typed-{tag}"
    ssh_key = asyncssh.generate_private_key("ssh-ed25519", comment="canary")
    ssh_private = ssh_key.export_private_key("openssh").decode()
    encrypted_key = ssh_key.export_private_key("openssh", passphrase=passphrase).decode()
    cert, cert_key, _ = certificate("canary.example", days=10)
    canaries = [password, token, passphrase, typed, ssh_server.password]
    canaries += pem_body(ssh_private) + pem_body(encrypted_key) + pem_body(cert_key)
    bodies: list[str] = []

    async def call(
        who: httpx.AsyncClient, method: str, url: str, **kwargs: object
    ) -> httpx.Response:
        response = await who.request(method, url, **kwargs)  # type: ignore[arg-type]
        assert response.status_code in (*range(200, 500), 502), response.text
        bodies.append(f"{method} {url} -> {response.status_code} {response.text}")
        return response

    creates = [
        {"kind": "password", "name": "pw", "password": password, "username": "app"},
        {"kind": "api_token", "name": "tok", "token": token, "expires_at": "2030-01-01T00:00:00Z"},
        {"kind": "ssh_key", "name": "key", "private_key": encrypted_key, "passphrase": passphrase},
        {"kind": "ssh_key", "name": "gen", "generate": True},
        {"kind": "tls_certificate", "name": "tls", "certificate": cert, "private_key": cert_key},
        {
            "kind": "server_login",
            "name": "nas-login",
            "host": ssh_server.host,
            "port": ssh_server.port,
            "username": ssh_server.user,
            "password": ssh_server.password,
        },
    ]
    for body in creates:
        assert (await call(client, "POST", "/api/credentials", json=body)).status_code == 201
    # Errors that carry the secrets in their input.
    for body in [
        {**creates[0]},
        {"kind": "password", "name": "x", "password": password, "extra": token},
        {"kind": "password", "name": "bad name", "password": password},
        {"kind": "ssh_key", "name": "x", "private_key": encrypted_key, "passphrase": "wrong"},
        {"kind": "ssh_key", "name": "x", "private_key": encrypted_key},
        {"kind": "ssh_key", "name": "x", "private_key": token},
        {"kind": "tls_certificate", "name": "x", "certificate": token, "private_key": cert_key},
        {"kind": "tls_certificate", "name": "x", "certificate": cert, "private_key": token},
        {"kind": "server_login", "name": "x", "host": "h", "username": "u", "password": 5},
        {"kind": "api_token", "name": "x", "token": ["CANARY", token]},
    ]:
        await call(client, "POST", "/api/credentials", json=body)
    for who in (client, reader):
        await call(who, "GET", "/api/credentials")
        await call(who, "GET", "/api/credentials/expiring", params={"days": 36500})
        for name in ("pw", "tok", "key", "gen", "tls", "nas-login", "missing"):
            await call(who, "GET", f"/api/credentials/{name}")
    await call(reader, "POST", "/api/credentials/pw/reveal")
    await call(anon, "POST", "/api/credentials/pw/reveal")
    await call(reader, "GET", "/api/credentials/audit")

    # A secret typed straight into a plugin config (sealed at rest); the hub runs it.
    plain = {"url": "http://127.0.0.1:9", "password": typed}
    await call(client, "PUT", "/api/plugins/v2/configured/config", json=plain)
    await call(client, "PATCH", "/api/plugins/v2/configured/config", json={"port": 0})
    await call(client, "PATCH", "/api/plugins/v2/configured/config", json={"port": 8080})
    for who in (client, reader):
        await call(who, "GET", "/api/plugins/v2/configured/config")
        await call(who, "GET", "/api/plugins/v2/configured")
    assert (await call(client, "POST", "/api/plugins/v2/configured/execute")).status_code == 200

    # A plugin config that references the password; the hub runs the plugin.
    reference = {"password": {"$credential": "pw"}}
    await call(client, "PUT", "/api/plugins/v2/secret-user/config", json=reference)
    await call(client, "PUT", "/api/plugins/v2/secret-user/config", json={"password": 5})
    for who in (client, reader):
        await call(who, "GET", "/api/plugins/v2/secret-user/config")
        await call(who, "GET", "/api/plugins/v2/secret-user")
    run = await call(client, "POST", "/api/plugins/v2/secret-user/execute")
    assert run.json()["status"] == "success"
    await call(client, "GET", "/api/plugins/v2/secret-user/metrics")
    await call(client, "GET", "/api/plugins/v2/secret-user/executions")

    # Servers: add, check over real SSH, a failing login, list.
    await call(client, "POST", "/api/servers", json={"name": "nas", "credential": "nas-login"})
    await call(client, "POST", "/api/servers/nas/check")
    await call(
        client,
        "POST",
        "/api/credentials",
        json={**creates[-1], "name": "wrong-login", "password": f"{password}-nope"},
    )
    await call(client, "POST", "/api/servers", json={"name": "nas2", "credential": "wrong-login"})
    await call(client, "POST", "/api/servers/nas2/check")
    await call(client, "PUT", "/api/plugins/v2/remote-load/config", json={"targets": ["nas"]})
    await call(client, "POST", "/api/plugins/v2/remote-load/execute")
    for who in (client, reader):
        await call(who, "GET", "/api/servers")
        await call(who, "GET", "/api/servers/nas")
    await call(client, "GET", "/api/credentials/audit", params={"limit": 1000})
    await call(client, "DELETE", "/api/credentials/pw")

    # The CLI on the same database and key file.
    runner = CliRunner()
    env = {
        "UNITY_DATA_DIR": str(settings.data_dir),
        "UNITY_DATABASE_URL": settings.database_url,
        "UNITY_MASTER_KEY": None,
        "COLUMNS": "250",
        "NO_COLOR": "1",
    }
    outputs: list[str] = []
    for args in (
        ["credentials", "list"],
        ["credentials", "list", "--json"],
        ["credentials", "show", "key"],
        ["credentials", "show", "tls", "--json"],
        ["credentials", "expiring", "--days", "36500"],
        ["credentials", "audit", "--limit", "1000"],
        ["credentials", "audit", "--json"],
        ["credentials", "show", "missing"],
        ["credentials", "delete", "pw", "--yes"],
        ["servers", "list", "--json"],
        ["servers", "check", "nas"],
        ["servers", "check", "nas2"],
        ["credentials", "rotate-master-key", "--yes"],
    ):
        # The CLI runs its own event loop: give it a thread of its own.
        result = await asyncio.to_thread(runner.invoke, cli_app, args, env=env)
        outputs.append(f"{args}: {result.exit_code} {result.output}")
        assert result.exit_code in (0, 1), result.output
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text(encrypted_key)
    result = await asyncio.to_thread(
        runner.invoke,
        cli_app,
        [
            "credentials",
            "add",
            "x",
            "-k",
            "ssh_key",
            "--key-file",
            str(bad_key),
            "--ask-passphrase",
        ],
        input="wrong\n",
        env=env,
    )
    outputs.append(result.output)
    assert "wrong passphrase" in result.output
    assert outputs[-2].startswith("['credentials', 'rotate-master-key', '--yes']: 0 ")
    assert "re-encrypted" in outputs[-2]

    # The one exception: an explicit, audited reveal.
    revealed = await client.post("/api/credentials/tok/reveal")
    assert revealed.json()["secret"] == {"token": token}
    cli_reveal = await asyncio.to_thread(
        runner.invoke, cli_app, ["credentials", "reveal", "tok"], env=env
    )
    assert cli_reveal.stdout == f"{token}\n", (cli_reveal.output, outputs[-2:])

    # The database itself: every plugin config as stored, after the key rotation.
    async with app.state.db.engine.connect() as conn:
        stored = "\n".join(await conn.scalars(sql("SELECT CAST(config AS TEXT) FROM plugins")))
    assert "$sealed" in stored
    assert typed not in stored

    logs = caplog.text + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert len(caplog.records) > 10
    everything = {"responses": "\n".join(bodies), "cli": "\n".join(outputs), "logs": logs}
    for where, text in everything.items():
        for canary in canaries:
            assert canary not in text, f"a secret leaked into the {where}"
