"""``unity credentials`` and ``unity servers``, in-process, on real databases and a real sshd."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from typer.testing import CliRunner, Result

from tests.credentials.helpers import certificate
from tests.credentials.sshd import SSHServer
from unity.cli.main import app
from unity.cli.master_key import prepare_key_files
from unity.credentials import CredentialStore, Keyring, MasterKey, load_keyring
from unity.credentials.crypto import read_key_file
from unity.settings import Settings
from unity.storage.db import Database

Invoke = Callable[..., Result]


@pytest.fixture
def cli(settings: Settings) -> Invoke:
    runner = CliRunner()
    base: dict[str, str | None] = {
        "UNITY_DATA_DIR": str(settings.data_dir),
        "UNITY_DATABASE_URL": settings.database_url,
        "UNITY_CONFIG_FILE": None,
        "UNITY_MASTER_KEY": None,
        "UNITY_MASTER_KEY_PREVIOUS": None,
        "COLUMNS": "250",
        "NO_COLOR": "1",
    }

    def invoke(
        *args: str, input: str | None = None, env: Mapping[str, str | None] | None = None
    ) -> Result:
        return runner.invoke(app, list(args), input=input, env={**base, **(env or {})})

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def secrets_readable(settings: Settings, keyring: Keyring) -> dict[str, str]:
    async def read() -> dict[str, str]:
        db = Database(settings.effective_database_url)
        try:
            store = CredentialStore(db, keyring)
            return {
                row.name: (await store.resolve(row.name, actor="test")).value
                for row in await store.list_credentials()
            }
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_add_list_show_reveal_delete(cli: Invoke, tmp_path: Path, settings: Settings) -> None:
    ok(
        cli(
            "credentials",
            "add",
            "db",
            "--kind",
            "password",
            "--username",
            "app",
            "--secret-stdin",
            input="pg-pass\n",
        )
    )
    ok(cli("credentials", "add", "grafana", "-k", "api_token", input="tok-1\ntok-1\n"))
    generated = ok(cli("credentials", "add", "deploy", "-k", "ssh_key", "--generate"))
    assert "ssh-ed25519 " in generated.stdout
    cert, key, _ = certificate(days=5)
    (tmp_path / "c.pem").write_text(cert)
    (tmp_path / "k.pem").write_text(key)
    ok(
        cli(
            "credentials",
            "add",
            "tls",
            "-k",
            "tls_certificate",
            "--cert-file",
            str(tmp_path / "c.pem"),
            "--key-file",
            str(tmp_path / "k.pem"),
        )
    )
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "id").write_bytes(client_key.export_private_key("openssh", passphrase="pp"))
    ok(
        cli(
            "credentials",
            "add",
            "pi",
            "-k",
            "server_login",
            "--host",
            "10.0.0.5",
            "--username",
            "pi",
            "--key-file",
            str(tmp_path / "id"),
            "--ask-passphrase",
            input="pp\n",
        )
    )
    key_file = settings.data_dir / "master.key"
    assert (key_file.stat().st_mode & 0o777) == 0o600

    listed = as_json(cli("credentials", "list", "--json"))
    assert [c["name"] for c in listed] == ["db", "deploy", "grafana", "pi", "tls"]
    assert listed[3]["public"]["fingerprint"] == client_key.get_fingerprint()
    table = ok(cli("credentials", "list")).stdout
    assert "app" in table
    assert "pg-pass" not in table
    assert "CN=nas.home.arpa" in ok(cli("credentials", "show", "tls")).stdout
    assert as_json(cli("credentials", "show", "db", "--json"))["public"] == {"username": "app"}
    soon = as_json(cli("credentials", "expiring", "--days", "7", "--json"))
    assert [c["name"] for c in soon] == ["tls"]

    assert as_json(cli("credentials", "reveal", "db", "--json"))["secret"] == {
        "password": "pg-pass"
    }
    assert ok(cli("credentials", "reveal", "grafana")).stdout == "tok-1\n"
    audit = as_json(cli("credentials", "audit", "--action", "reveal", "--json"))
    assert [(e["actor"], e["credential"]) for e in audit] == [("cli", "grafana"), ("cli", "db")]
    assert "@" in audit[0]["source"]
    assert "reveal" in ok(cli("credentials", "audit")).stdout

    missing = cli("credentials", "show", "nope")
    assert missing.exit_code == 1
    assert "no credential named 'nope'" in missing.output
    duplicate = cli("credentials", "add", "db", "-k", "password", "--secret-stdin", input="x")
    assert duplicate.exit_code == 1
    bad = cli("credentials", "add", "bad name", "-k", "password", "--secret-stdin", input="x")
    assert bad.exit_code == 1
    assert "not valid" in bad.output
    ok(cli("credentials", "delete", "db", "--yes"))
    assert next(c["name"] for c in as_json(cli("credentials", "list", "--json"))) == "deploy"


def test_rotate_master_key_with_the_key_file(cli: Invoke, settings: Settings) -> None:
    for name in ("a", "b", "c"):
        ok(cli("credentials", "add", name, "-k", "password", "--secret-stdin", input=f"pw-{name}"))
    old = read_key_file(settings.data_dir / "master.key")
    result = ok(cli("credentials", "rotate-master-key", "--yes"))
    assert "3 re-encrypted" in result.stdout
    new = read_key_file(settings.data_dir / "master.key")
    assert new.key_id != old.key_id
    assert not (settings.data_dir / "master.key.previous").exists()
    assert secrets_readable(settings, Keyring(new)) == {"a": "pw-a", "b": "pw-b", "c": "pw-c"}
    with pytest.raises(Exception, match="not loaded"):
        secrets_readable(settings, Keyring(old))


def test_interrupted_rotation_resumes(cli: Invoke, settings: Settings) -> None:
    for name in ("a", "b", "c", "d"):
        ok(cli("credentials", "add", name, "-k", "password", "--secret-stdin", input=f"pw-{name}"))
    old = read_key_file(settings.data_dir / "master.key")
    prepare_key_files(settings.data_dir)  # the command's first step, then a crash half way

    async def half() -> None:
        db = Database(settings.effective_database_url)

        def crash(done: int, total: int) -> None:
            if done == 2:
                raise KeyboardInterrupt

        try:
            with pytest.raises(KeyboardInterrupt):
                await CredentialStore(db, load_keyring(settings)).rotate_master_key(progress=crash)
        finally:
            await db.dispose()

    asyncio.run(half())
    new = read_key_file(settings.data_dir / "master.key")
    assert read_key_file(settings.data_dir / "master.key.previous").key_id == old.key_id
    result = ok(cli("credentials", "rotate-master-key", "--yes"))
    assert "resuming the rotation" in result.output
    assert "2 re-encrypted, 2 already were" in result.stdout
    assert read_key_file(settings.data_dir / "master.key").key_id == new.key_id
    assert secrets_readable(settings, Keyring(new)) == {f"{n}": f"pw-{n}" for n in "abcd"}


def test_rotate_with_environment_keys(cli: Invoke, settings: Settings) -> None:
    old, new = MasterKey.generate("old"), MasterKey.generate("new")
    env = {"UNITY_MASTER_KEY": old.encode()}
    ok(cli("credentials", "add", "a", "-k", "password", "--secret-stdin", input="x", env=env))
    assert not (settings.data_dir / "master.key").exists()
    env = {"UNITY_MASTER_KEY": new.encode(), "UNITY_MASTER_KEY_PREVIOUS": old.encode()}
    result = ok(cli("credentials", "rotate-master-key", "--yes", env=env))
    assert "unset UNITY_MASTER_KEY_PREVIOUS" in result.stdout
    assert secrets_readable(settings, Keyring(new)) == {"a": "x"}
    broken = cli("credentials", "list", env={"UNITY_MASTER_KEY": "bm90LWEta2V5"})
    assert broken.exit_code == 1
    assert "bytes; 32 are needed" in broken.output


def test_servers_commands_against_a_real_sshd(
    cli: Invoke, ssh_server: SSHServer, settings: Settings
) -> None:
    ok(
        cli(
            "credentials",
            "add",
            "nas-login",
            "-k",
            "server_login",
            "--host",
            ssh_server.host,
            "--port",
            str(ssh_server.port),
            "--username",
            ssh_server.user,
            "--secret-stdin",
            input=ssh_server.password,
        )
    )
    ok(
        cli(
            "servers",
            "add",
            "nas",
            "--credential",
            "nas-login",
            "--authorized-keys-file",
            str(ssh_server.authorized_keys),
        )
    )
    listed = as_json(cli("servers", "list", "--json"))
    assert listed[0]["host_key_fingerprint"] is None
    first = ok(cli("servers", "check", "nas"))
    assert "First contact" in first.stdout
    assert ssh_server.host_fingerprint() in first.stdout
    again = as_json(cli("servers", "check", "nas", "--json"))
    assert again["first_contact"] is False
    assert "not pinned" not in ok(cli("servers", "list")).stdout
    refused = cli("servers", "accept-host-key", "nas")
    assert refused.exit_code == 1
    assert "no pending host key" in refused.output

    saved = ssh_server.authorized_keys.read_bytes()
    try:
        ok(cli("credentials", "add", "deploy", "-k", "ssh_key", "--generate"))
        installed = as_json(cli("servers", "install-key", "nas", "deploy", "--json"))
        assert installed["changed"] is True
        assert "already there" in ok(cli("servers", "install-key", "nas", "deploy")).stdout
        assert "Removed key" in ok(cli("servers", "remove-key", "nas", "deploy")).stdout
        assert ssh_server.authorized_keys.read_bytes() == saved
    finally:
        ssh_server.authorized_keys.write_bytes(saved)
        for leftover in ssh_server.authorized_keys.parent.glob("authorized_keys.*"):
            leftover.unlink()
    in_use = cli("credentials", "delete", "nas-login", "--yes")
    assert in_use.exit_code == 1
    assert "server:nas" in in_use.output
    kept = cli("servers", "delete", "nas", input="n\n")
    assert kept.exit_code == 1, "declining the confirmation keeps the server"
    assert "Remove server 'nas'" in kept.output
    assert "nas" in {row["name"] for row in as_json(cli("servers", "list", "--json"))}
    ok(cli("servers", "delete", "nas", "--yes"))
    ok(cli("credentials", "delete", "nas-login", "--yes"))


def test_help_lists_the_commands(cli: Invoke) -> None:
    text = ok(cli("credentials", "--help")).stdout
    for name in (
        "add",
        "list",
        "show",
        "delete",
        "reveal",
        "expiring",
        "audit",
        "rotate-master-key",
    ):
        assert name in text
    text = ok(cli("servers", "--help")).stdout
    for name in ("add", "list", "check", "accept-host-key", "install-key", "remove-key"):
        assert name in text
    expiring = ok(cli("credentials", "expiring", "--help")).stdout
    assert "--days" in expiring
    assert "within DAYS" not in expiring, "the help names the option the command takes"
