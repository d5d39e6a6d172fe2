"""Fixtures of the credentials tests: a migrated database, a keyring, a store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.credentials import plugins, sshd
from tests.support import sample_plugins
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


@pytest.fixture(scope="session")
def ssh_account() -> tuple[str, str]:
    """The dedicated test account and its password (skips where sshd cannot run)."""
    reason = sshd.unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires a real sshd: {reason}")
        pytest.skip(reason)
    return sshd.ensure_account()


@pytest.fixture(scope="session")
def ssh_server(ssh_account: tuple[str, str]) -> Iterator[sshd.SSHServer]:
    """One sshd for the session (tests must leave its host key and files as found)."""
    server = sshd.start_server(*ssh_account)
    yield server
    sshd.stop_server(server)


@pytest.fixture
def own_ssh_server(ssh_account: tuple[str, str]) -> Iterator[sshd.SSHServer]:
    """An sshd of the test's own, free to be re-keyed."""
    server = sshd.start_server(*ssh_account)
    yield server
    sshd.stop_server(server)


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    """The app of these tests also loads the remote and secret-using test plugins."""
    return [*sample_plugins.ALL, *plugins.ALL]
