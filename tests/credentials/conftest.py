"""Fixtures of the credentials tests: a migrated database, a keyring, a store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from unity.credentials import CredentialStore, Keyring, MasterKey
from unity.storage.db import Database


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MasterKey.generate("test"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.upgrade()
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def store(database: Database, keyring: Keyring) -> CredentialStore:
    return CredentialStore(database, keyring)
