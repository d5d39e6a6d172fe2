"""The master key: created 0600, refused when exposed, malformed or a known default,
and the hub does not start without a usable one."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr, TypeAdapter

from unity.app import create_app
from unity.credentials import CredentialInput, CredentialStore, MasterKeyError, load_keyring
from unity.credentials.crypto import MasterKey, create_key_file, read_key_file
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage.db import Database


def settings_for(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, database_url="", bootstrap_token=False, **values)


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    keyring = load_keyring(settings)
    path = tmp_path / "data" / "master.key"
    assert (path.stat().st_mode & 0o777) == 0o600
    assert len(base64.b64decode(path.read_text().strip())) == 32
    assert load_keyring(settings).current.key_id == keyring.current.key_id
    assert keyring.current.key_id in repr(keyring)
    assert path.read_text().strip() not in repr(keyring.current)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    create_key_file(path)
    path.chmod(mode)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_keyring(settings_for(tmp_path))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"short key").decode(), "32 are needed"),
        (base64.b64encode(bytes(32)).decode(), "known default"),
        (base64.b64encode(b"\x07" * 32).decode(), "known default"),
        (base64.b64encode(b"correct horse battery staple 123").decode(), "printable text"),
        ("   ", "empty"),
    ],
)
def test_bad_environment_keys_are_refused(tmp_path: Path, value: str, problem: str) -> None:
    settings = settings_for(tmp_path, master_key=SecretStr(value))
    if not value.strip():
        # An empty variable means "no env key": the key file is used instead.
        assert load_keyring(settings).current.source.endswith("master.key")
        return
    with pytest.raises(MasterKeyError, match=problem) as info:
        load_keyring(settings)
    assert value not in str(info.value)
    assert info.value.__cause__ is None


def test_environment_key_wins_and_creates_no_file(tmp_path: Path) -> None:
    key = MasterKey.generate("x")
    keyring = load_keyring(settings_for(tmp_path, master_key=SecretStr(key.encode())))
    assert keyring.current.key_id == key.key_id
    assert not (tmp_path / "master.key").exists()
    urlsafe = base64.urlsafe_b64encode(key.material).decode()
    assert MasterKey.from_text(urlsafe, source="t").key_id == key.key_id


def test_keyring_follows_a_rotation_of_its_files(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    keyring = load_keyring(settings)
    old = keyring.current
    (tmp_path / "master.key").rename(tmp_path / "master.key.previous")
    new = create_key_file(tmp_path / "master.key")
    sealed = keyring.seal(b"x", aad=b"a")
    assert sealed.key_id == new.key_id
    assert keyring.key_ids == {old.key_id, new.key_id}
    assert read_key_file(tmp_path / "master.key").key_id == new.key_id


async def test_hub_refuses_to_start_with_an_exposed_key(tmp_path: Path) -> None:
    create_key_file(tmp_path / "master.key")
    (tmp_path / "master.key").chmod(0o644)
    application = create_app(settings_for(tmp_path), loader=PluginLoader([], group="none"))
    with pytest.raises(MasterKeyError, match="accessible by others"):
        async with LifespanManager(application):
            pass


async def test_hub_refuses_to_start_without_the_key_that_sealed_the_store(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    db = Database(settings.effective_database_url)
    await db.upgrade()
    store = CredentialStore(db, load_keyring(settings))
    request = TypeAdapter(CredentialInput).validate_python(
        {"kind": "password", "name": "db", "password": "pw"}
    )
    await store.create(request, actor="t")
    await db.dispose()
    (tmp_path / "master.key").unlink()  # lost: a new one would be created...
    application = create_app(settings, loader=PluginLoader([], group="none"))
    with pytest.raises(MasterKeyError, match="sealed with master key"):
        async with LifespanManager(application):
            pass
