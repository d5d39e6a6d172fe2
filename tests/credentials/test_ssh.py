"""SSH against a real OpenSSH server on loopback: key and password logins,
host-key pinning and refusal of a changed key, commands, timeouts."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from tests.credentials.sshd import SSHServer
from unity.credentials import (
    CredentialInput,
    CredentialStore,
    HostKeyMismatchError,
    InvalidCredentialError,
    Inventory,
    ServerInput,
    SSHAuthError,
    SSHConnectError,
    runner_for,
)
from unity_sdk import DependencyMissingError

Input: TypeAdapter[CredentialInput] = TypeAdapter(CredentialInput)


async def add_login(
    store: CredentialStore, server: SSHServer, name: str, *, key: bool, password: str | None = None
) -> None:
    secret = (
        {"private_key": server.client_private_key()}
        if key
        else {"password": password or server.password}
    )
    await store.create(
        Input.validate_python(
            {
                "kind": "server_login",
                "name": f"{name}-login",
                "host": server.host,
                "port": server.port,
                "username": server.user,
                **secret,
            }
        ),
        actor="test",
    )
    await Inventory(store).add(ServerInput(name=name, credential=f"{name}-login"), actor="test")


async def test_key_login_pins_the_host_key_on_first_contact(
    store: CredentialStore, ssh_server: SSHServer
) -> None:
    await add_login(store, ssh_server, "nas", key=True)
    runner = await runner_for(store.db, store.keyring, "nas", actor="hub")
    try:
        info = await runner.connect()
        assert info.first_contact
        assert info.fingerprint == ssh_server.host_fingerprint()
        result = await runner.run(["id", "-un"])
        assert (result.exit_status, result.stdout.strip()) == (0, ssh_server.user)
        assert runner.host == "nas"
    finally:
        await runner.close()
    server = await Inventory(store).get("nas")
    assert server.host_key_fingerprint == ssh_server.host_fingerprint()
    assert server.host_key is not None
    assert server.host_key.startswith("ssh-ed25519 ")
    entries = await store.audit_log(credential="nas-login")
    actions = [(e.action, e.success) for e in entries]
    assert ("host_key_pin", True) in actions
    assert actions.count(("use", True)) == 1, "one login, one use"
    assert any(e.action == "use" and "login to" in e.detail for e in entries)

    again = await runner_for(store.db, store.keyring, "nas", actor="hub")
    try:
        assert not (await again.connect()).first_contact
    finally:
        await again.close()


async def test_password_login_runs_commands(store: CredentialStore, ssh_server: SSHServer) -> None:
    await add_login(store, ssh_server, "pi", key=False)
    runner = await runner_for(store.db, store.keyring, "pi", actor="hub")
    try:
        result = await runner.run(["sh", "-c", 'echo "$1"; echo err >&2; exit 3', "-", "a b"])
        assert (result.stdout, result.stderr, result.exit_status) == ("a b\n", "err\n", 3)
        echoed = await runner.run(["cat"], stdin="from stdin")
        assert echoed.stdout == "from stdin"
        missing = await runner.run(["no-such-command-xyz"])
        with pytest.raises(DependencyMissingError):
            missing.check()
        with pytest.raises(TimeoutError):
            await runner.run(["sleep", "10"], timeout=0.5)
        assert (await runner.run(["true"])).ok
    finally:
        await runner.close()


async def test_wrong_password_is_refused_and_audited(
    store: CredentialStore, ssh_server: SSHServer
) -> None:
    await add_login(store, ssh_server, "bad", key=False, password="not-the-password")
    runner = await runner_for(store.db, store.keyring, "bad", actor="hub")
    with pytest.raises(SSHAuthError, match="refused the password login") as info:
        await runner.run(["true"])
    assert "not-the-password" not in str(info.value)
    uses = [e for e in await store.audit_log(credential="bad-login") if e.action == "use"]
    assert [(e.success, e.target) for e in uses] == [(False, "bad")], (
        "a refused login is one failed use, never also a successful one"
    )
    assert "refused" in uses[0].detail


async def test_unreachable_server_is_a_connect_error(store: CredentialStore) -> None:
    await store.create(
        Input.validate_python(
            {
                "kind": "server_login",
                "name": "gone-login",
                "host": "127.0.0.1",
                "port": 1,
                "username": "x",
                "password": "p",
            }
        ),
        actor="test",
    )
    await Inventory(store).add(ServerInput(name="gone", credential="gone-login"), actor="test")
    runner = await runner_for(store.db, store.keyring, "gone", actor="hub")
    with pytest.raises(SSHConnectError, match="cannot connect"):
        await runner.run(["true"])


async def test_changed_host_key_is_refused_until_accepted(
    store: CredentialStore, own_ssh_server: SSHServer
) -> None:
    inventory = Inventory(store)
    await add_login(store, own_ssh_server, "box", key=True)
    first = own_ssh_server.host_fingerprint()
    runner = await runner_for(store.db, store.keyring, "box", actor="hub")
    assert (await runner.connect()).fingerprint == first
    await runner.close()

    own_ssh_server.restart(new_host_key=True)
    second = own_ssh_server.host_fingerprint()
    assert second != first
    with pytest.raises(HostKeyMismatchError) as info:
        await runner.run(["true"])
    assert (info.value.offered, info.value.pinned) == (second, first)
    server = await inventory.get("box")
    assert server.host_key_fingerprint == first
    assert server.pending_host_key_fingerprint == second
    mismatch = await store.audit_log(action="host_key_mismatch")
    assert [(e.target, e.success) for e in mismatch] == [("box", False)]

    with pytest.raises(InvalidCredentialError, match="pending host key"):
        await inventory.accept_host_key("box", actor="token:admin", fingerprint=first)
    await inventory.accept_host_key("box", actor="token:admin", fingerprint=second)
    result = await runner.run(["id", "-un"])
    assert result.stdout.strip() == own_ssh_server.user
    await runner.close()
    server = await inventory.get("box")
    assert (server.host_key_fingerprint, server.pending_host_key_fingerprint) == (second, None)
    with pytest.raises(InvalidCredentialError, match="no pending"):
        await inventory.accept_host_key("box", actor="token:admin")
