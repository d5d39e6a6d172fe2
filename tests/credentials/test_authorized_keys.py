"""Installing and removing a stored SSH key on a real server's authorized_keys."""

from __future__ import annotations

import asyncssh
import pytest
from pydantic import TypeAdapter

from tests.credentials.sshd import SSHServer
from unity.credentials import (
    CredentialInput,
    CredentialStore,
    Inventory,
    ServerInput,
    SSHAuthError,
    change_credential_key,
    runner_for,
)
from unity.credentials.authorized_keys import resolve_path

Input: TypeAdapter[CredentialInput] = TypeAdapter(CredentialInput)


def test_path_tokens() -> None:
    assert resolve_path(".ssh/authorized_keys", "pi") == ".ssh/authorized_keys"
    assert resolve_path("/etc/ssh/keys/%u", "pi") == "/etc/ssh/keys/pi"
    assert resolve_path("%h/.ssh/k%%", "pi") == ".ssh/k%"


async def test_install_then_remove_leaves_every_other_line_intact(
    store: CredentialStore, ssh_server: SSHServer
) -> None:
    inventory = Inventory(store)
    other = asyncssh.generate_private_key("ssh-ed25519", comment="laptop")
    original = (
        b"# managed by hand -- keep this comment\n"
        + b'from="127.0.0.1",no-agent-forwarding,command="echo \\"hi there\\"" '
        + ssh_server.client_public_key().encode()
        + b"\n\n"
        + other.export_public_key("openssh").strip()
        + b"  trailing-spaces  \n"
    )
    saved = ssh_server.authorized_keys.read_bytes()
    ssh_server.authorized_keys.write_bytes(original)
    try:
        await store.create(
            Input.validate_python(
                {
                    "kind": "server_login",
                    "name": "nas-login",
                    "host": ssh_server.host,
                    "port": ssh_server.port,
                    "username": ssh_server.user,
                    "password": ssh_server.password,
                }
            ),
            actor="test",
        )
        await inventory.add(
            ServerInput(
                name="nas",
                credential="nas-login",
                authorized_keys_file=str(ssh_server.authorized_keys),
            ),
            actor="test",
        )
        key_row = await store.create(
            Input.validate_python({"kind": "ssh_key", "name": "deploy", "generate": True}),
            actor="test",
        )
        await store.create(
            Input.validate_python(
                {
                    "kind": "server_login",
                    "name": "nas-deploy",
                    "host": ssh_server.host,
                    "port": ssh_server.port,
                    "username": ssh_server.user,
                    "private_key": (await store.resolve("deploy", actor="test")).value,
                }
            ),
            actor="test",
        )
        await inventory.add(ServerInput(name="nas-by-key", credential="nas-deploy"), actor="test")

        async def deploy_key_logs_in() -> bool:
            runner = await runner_for(store.db, store.keyring, "nas-by-key", actor="test")
            try:
                return (await runner.run(["true"])).ok
            except SSHAuthError:
                return False
            finally:
                await runner.close()

        assert not await deploy_key_logs_in()
        installed = await change_credential_key(
            inventory, server="nas", credential="deploy", install=True, actor="token:a"
        )
        assert installed.changed
        assert installed.backup is not None
        content = ssh_server.authorized_keys.read_bytes()
        assert content == original + key_row.public["public_key"].encode() + b"\n"
        assert (
            ssh_server.authorized_keys.with_name(installed.backup.rsplit("/", 1)[1]).read_bytes()
            == original
        )
        assert await deploy_key_logs_in()

        again = await change_credential_key(
            inventory, server="nas", credential="deploy", install=True, actor="token:a"
        )
        assert not again.changed
        assert ssh_server.authorized_keys.read_bytes() == content

        removed = await change_credential_key(
            inventory, server="nas", credential="deploy", install=False, actor="token:a"
        )
        assert removed.changed
        assert removed.backup is not None
        assert ssh_server.authorized_keys.read_bytes() == original
        assert (ssh_server.authorized_keys.stat().st_mode & 0o777) == 0o600
        assert not await deploy_key_logs_in()
        backups = sorted(ssh_server.authorized_keys.parent.glob("authorized_keys.unity-backup-*"))
        assert len(backups) == 2
        assert not list(ssh_server.authorized_keys.parent.glob("*.unity-tmp"))

        gone = await change_credential_key(
            inventory, server="nas", credential="deploy", install=False, actor="token:a"
        )
        assert not gone.changed
        entries = await store.audit_log(credential="deploy")
        actions = [(e.action, e.target, e.success) for e in entries if e.action != "use"]
        assert actions[:4] == [
            ("remove_key", "nas", True),
            ("remove_key", "nas", True),
            ("install_key", "nas", True),
            ("install_key", "nas", True),
        ]
    finally:
        ssh_server.authorized_keys.write_bytes(saved)
        for leftover in ssh_server.authorized_keys.parent.glob("authorized_keys.*"):
            leftover.unlink()


async def test_only_ssh_keys_can_be_installed(store: CredentialStore) -> None:
    await store.create(
        Input.validate_python({"kind": "api_token", "name": "tok", "token": "t"}), actor="t"
    )
    await store.create(
        Input.validate_python(
            {
                "kind": "server_login",
                "name": "l",
                "host": "127.0.0.1",
                "username": "u",
                "password": "p",
            }
        ),
        actor="t",
    )
    inventory = Inventory(store)
    await inventory.add(ServerInput(name="s", credential="l"), actor="t")
    with pytest.raises(Exception, match="without an SSH public key"):
        await change_credential_key(
            inventory, server="s", credential="tok", install=True, actor="t"
        )
    entries = await store.audit_log(action="install_key")
    assert [(e.success, e.credential) for e in entries] == [(False, "tok")]
