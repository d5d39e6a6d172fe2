"""The store on SQLite and PostgreSQL: every kind, tampering, swapping, wrong keys,
master-key rotation (complete and interrupted), expiry and the audit of uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncssh
import pytest
from pydantic import TypeAdapter
from sqlalchemy import select, update

from tests.credentials.helpers import certificate
from unity.credentials import (
    CredentialExistsError,
    CredentialInput,
    CredentialNotFoundError,
    CredentialStore,
    DecryptionError,
    InvalidCredentialError,
    Keyring,
    MasterKey,
)
from unity.storage.db import Database
from unity.storage.models import Credential

Input: TypeAdapter[CredentialInput] = TypeAdapter(CredentialInput)


def make(**fields: object) -> CredentialInput:
    return Input.validate_python(fields)


async def add_all(store: CredentialStore) -> None:
    cert, key, _ = certificate()
    await store.create(make(kind="password", name="db", password="pw-1", username="app"), actor="t")
    await store.create(make(kind="api_token", name="tok", token="tok-1"), actor="t")
    await store.create(make(kind="ssh_key", name="key", generate=True), actor="t")
    await store.create(
        make(kind="tls_certificate", name="tls", certificate=cert, private_key=key), actor="t"
    )
    await store.create(
        make(kind="server_login", name="login", host="10.0.0.2", username="pi", password="pw-2"),
        actor="t",
    )


async def test_every_kind_round_trips_and_lists_only_public_facts(store: CredentialStore) -> None:
    await add_all(store)
    rows = await store.list_credentials()
    assert [r.name for r in rows] == ["db", "key", "login", "tls", "tok"]
    public = {r.name: r.public for r in rows}
    assert public["db"] == {"username": "app"}
    assert public["key"]["fingerprint"].startswith("SHA256:")
    assert public["key"]["public_key"].startswith("ssh-ed25519 ")
    assert public["tls"]["subject"] == "CN=nas.home.arpa"
    assert public["login"] == {"host": "10.0.0.2", "port": 22, "username": "pi", "auth": "password"}
    assert (await store.resolve("db", actor="t")).value == "pw-1"
    assert (await store.resolve("tok", actor="t")).value == "tok-1"
    assert (await store.resolve("login", actor="t")).value == "pw-2"
    private = (await store.resolve("key", actor="t")).value
    assert asyncssh.import_private_key(private).get_fingerprint() == public["key"]["fingerprint"]
    assert "PRIVATE KEY" in (await store.resolve("tls", actor="t")).value
    for row in rows:
        assert b"pw-" not in row.ciphertext
        assert b"tok-" not in row.ciphertext


async def test_imported_ssh_key_keeps_its_fingerprint(store: CredentialStore) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519", comment="backup")
    encrypted = key.export_private_key("openssh", passphrase="hunter2").decode()
    with pytest.raises(InvalidCredentialError, match="passphrase"):
        await store.create(make(kind="ssh_key", name="k", private_key=encrypted), actor="t")
    with pytest.raises(InvalidCredentialError, match="wrong passphrase") as info:
        await store.create(
            make(kind="ssh_key", name="k", private_key=encrypted, passphrase="nope"), actor="t"
        )
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    row = await store.create(
        make(kind="ssh_key", name="k", private_key=encrypted, passphrase="hunter2"), actor="t"
    )
    assert row.public["fingerprint"] == key.get_fingerprint()
    pem = key.export_private_key("pkcs8-pem").decode()
    row = await store.create(make(kind="ssh_key", name="k-pem", private_key=pem), actor="t")
    assert row.public["fingerprint"] == key.get_fingerprint()
    with pytest.raises(InvalidCredentialError, match="not an OpenSSH or PEM"):
        await store.create(make(kind="ssh_key", name="k2", private_key="garbage"), actor="t")


async def test_certificate_must_match_its_key(store: CredentialStore) -> None:
    cert, _, _not_after = certificate(days=10)
    _, other_key, _ = certificate()
    with pytest.raises(InvalidCredentialError, match="does not belong"):
        await store.create(
            make(kind="tls_certificate", name="c", certificate=cert, private_key=other_key),
            actor="t",
        )
    with pytest.raises(InvalidCredentialError, match=r"not a PEM X\.509"):
        await store.create(
            make(kind="tls_certificate", name="c", certificate="nope", private_key=other_key),
            actor="t",
        )


async def test_names_are_unique_and_deletion_is_final(store: CredentialStore) -> None:
    await store.create(make(kind="password", name="db", password="x"), actor="t")
    with pytest.raises(CredentialExistsError):
        await store.create(make(kind="password", name="db", password="y"), actor="t")
    await store.delete("db", actor="t")
    with pytest.raises(CredentialNotFoundError):
        await store.resolve("db", actor="t")
    with pytest.raises(CredentialNotFoundError):
        await store.delete("db", actor="t")


async def test_expiring_lists_certificates_and_tokens_due_soon(store: CredentialStore) -> None:
    soon_cert, soon_key, soon = certificate("soon.example", days=5)
    late_cert, late_key, _ = certificate("late.example", days=90)
    await store.create(
        make(kind="tls_certificate", name="soon", certificate=soon_cert, private_key=soon_key),
        actor="t",
    )
    await store.create(
        make(kind="tls_certificate", name="late", certificate=late_cert, private_key=late_key),
        actor="t",
    )
    expired = datetime.now(UTC) - timedelta(days=1)
    await store.create(
        make(kind="api_token", name="old", token="t", expires_at=expired.isoformat()), actor="t"
    )
    await store.create(make(kind="password", name="forever", password="p"), actor="t")
    assert [r.name for r in await store.expiring(days=30)] == ["old", "soon"]
    assert (await store.get("soon")).expires_at == soon
    assert [r.name for r in await store.expiring(days=365)] == ["old", "soon", "late"]


async def test_flipped_byte_fails_loudly(store: CredentialStore, database: Database) -> None:
    await store.create(make(kind="password", name="db", password="secret-value"), actor="t")
    async with database.session() as session:
        row = await session.scalar(select(Credential).where(Credential.name == "db"))
        assert row is not None
        flipped = bytearray(row.ciphertext)
        flipped[3] ^= 0x01
        row.ciphertext = bytes(flipped)
    with pytest.raises(DecryptionError, match="failed authentication") as info:
        await store.resolve("db", actor="t")
    assert "secret-value" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    audit = await store.audit_log(credential="db", action="use")
    assert [(e.success, e.actor) for e in audit] == [(False, "t")]


async def test_ciphertext_swapped_between_rows_fails(
    store: CredentialStore, database: Database
) -> None:
    await store.create(make(kind="password", name="a", password="alpha"), actor="t")
    await store.create(make(kind="password", name="b", password="bravo"), actor="t")
    async with database.session() as session:
        rows = {r.name: r for r in await session.scalars(select(Credential))}
        a, b = rows["a"], rows["b"]
        a.ciphertext, b.ciphertext = b.ciphertext, a.ciphertext
        a.nonce, b.nonce = b.nonce, a.nonce
    for name in ("a", "b"):
        with pytest.raises(DecryptionError):
            await store.resolve(name, actor="t")


async def test_wrong_master_key_fails(store: CredentialStore, database: Database) -> None:
    await store.create(make(kind="password", name="db", password="pw"), actor="t")
    other = CredentialStore(database, Keyring(MasterKey.generate("other")))
    with pytest.raises(DecryptionError, match="not loaded"):
        await other.resolve("db", actor="t")
    assert await other.unreadable_key_ids() == {store.keyring.current.key_id}
    # Same key id, different key: authentication fails (ids are only a hint).
    async with database.session() as session:
        await session.execute(update(Credential).values(key_id=other.keyring.current.key_id))
    with pytest.raises(DecryptionError, match="failed authentication"):
        await other.resolve("db", actor="t")


async def test_rotation_reseals_everything(store: CredentialStore, database: Database) -> None:
    await add_all(store)
    old = store.keyring.current
    new = MasterKey.generate("new")
    rotating = CredentialStore(database, Keyring(new, [old]))
    report = await rotating.rotate_master_key(actor="cli")
    assert (report.total, report.rotated, report.skipped) == (5, 5, 0)
    assert await store.key_ids_in_use() == {new.key_id: 5}
    only_new = CredentialStore(database, Keyring(new))
    assert (await only_new.resolve("db", actor="t")).value == "pw-1"
    assert (await only_new.resolve("tok", actor="t")).value == "tok-1"
    again = await only_new.rotate_master_key()
    assert (again.rotated, again.skipped) == (0, 5)
    assert len(await only_new.audit_log(action="rotate")) == 5
    with pytest.raises(DecryptionError):
        await store.resolve("db", actor="t")


async def test_interrupted_rotation_can_be_rerun(
    store: CredentialStore, database: Database
) -> None:
    await add_all(store)
    old, new = store.keyring.current, MasterKey.generate("new")
    both = CredentialStore(database, Keyring(new, [old]))

    def crash_half_way(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await both.rotate_master_key(progress=crash_half_way)
    assert await store.key_ids_in_use() == {new.key_id: 2, old.key_id: 3}
    # Mid-rotation every row opens with one of the two keys.
    for row in await both.list_credentials():
        await both.resolve(row.name, actor="t")
    report = await both.rotate_master_key()
    assert (report.rotated, report.skipped) == (3, 2)
    only_new = CredentialStore(database, Keyring(new))
    for row in await only_new.list_credentials():
        await only_new.resolve(row.name, actor="t")


async def test_every_use_and_reveal_is_audited(store: CredentialStore) -> None:
    await store.create(make(kind="password", name="db", password="pw"), actor="token:abc")
    await store.resolve("db", actor="hub", target="plugin:redis", detail="field password")
    await store.reveal("db", actor="token:abc", source="127.0.0.9")
    with pytest.raises(CredentialNotFoundError):
        await store.reveal("nope", actor="token:abc", source="127.0.0.9")
    entries = await store.audit_log()
    assert [(e.action, e.actor, e.credential, e.success) for e in entries] == [
        ("reveal", "token:abc", "nope", False),
        ("reveal", "token:abc", "db", True),
        ("use", "hub", "db", True),
        ("create", "token:abc", "db", True),
    ]
    assert entries[1].source == "127.0.0.9"
    assert entries[2].target == "plugin:redis"
    assert all("pw" not in e.detail for e in entries)
