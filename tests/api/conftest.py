"""Fixtures of the API tests, on top of the suite-wide ones in ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import client_for
from tests.support.sample_plugins import CounterPlugin


@pytest.fixture
async def lenient(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client that sees an unhandled exception as the 500 a user would get."""
    async with client_for(app, admin_token, raise_app_exceptions=False) as c:
        yield c


@pytest.fixture
def counter(app: FastAPI) -> CounterPlugin:
    """The live instance of the ``counter`` plugin (it records its lifecycle events)."""
    instance = app.state.manager.plugins["counter"].instance
    assert isinstance(instance, CounterPlugin)
    return instance
