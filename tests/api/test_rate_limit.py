"""Failed authentication per client address: slowed after a burst, then 429 with
Retry-After; never a lockout of another address or of a correct token later.

The app runs with the default burst and limit; the delay step and the window
are shortened so the test waits seconds, not minutes. Client addresses are
loopback addresses given to the ASGI transport.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import API, error_of, issue_token
from tests.support.authz import asgi_client
from unity.auth.tokens import Scope
from unity.settings import Settings

BURST = Settings.model_fields["auth_failure_burst"].default
LIMIT = Settings.model_fields["auth_failure_limit"].default
WINDOW = 3.0
DELAY = 0.01
ATTACKER = "127.0.0.66"
ADMIN = "127.0.0.1"
BAD_TOKEN = "unity_aaaaaaaaaaaa_" + "b" * 43
BAD_KEY = "unityk_aaaaaaaaaaaa_" + "b" * 43


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's test settings with the default limits put back."""
    return settings.model_copy(
        update={
            "auth_failure_burst": BURST,
            "auth_failure_limit": LIMIT,
            "auth_failure_window_seconds": WINDOW,
            "auth_failure_delay_seconds": DELAY,
        }
    )


@pytest.fixture
async def attacker(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, ATTACKER) as c:
        yield c


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def assert_too_many(response: httpx.Response) -> int:
    error = error_of(response, 429)
    assert error["code"] == "too_many_requests"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW + 1
    return retry_after


def test_the_defaults_are_a_small_burst_and_a_limit() -> None:
    assert 0 < BURST < LIMIT <= 30
    assert Settings.model_fields["auth_failure_window_seconds"].default >= 60


async def test_bad_tokens_are_slowed_after_the_burst_then_refused_with_429(
    attacker: httpx.AsyncClient,
) -> None:
    """Before: 300 bad tokens in a row all got a plain 401 at full speed."""
    answers: list[tuple[int, float]] = []
    for _ in range(LIMIT + 5):
        started = time.monotonic()
        response = await attacker.get(API, headers=bearer(BAD_TOKEN))
        answers.append((response.status_code, time.monotonic() - started))
        if response.status_code == 429:
            assert_too_many(response)
    assert [status for status, _ in answers] == [401] * LIMIT + [429] * 5
    for n, (_, took) in enumerate(answers[BURST:LIMIT], start=BURST + 1):
        assert took >= DELAY * min(n - BURST, 8), f"failure {n} was not slowed"


async def test_plugin_keys_and_hub_tokens_count_together(attacker: httpx.AsyncClient) -> None:
    for n in range(LIMIT):
        value = BAD_KEY if n % 2 else BAD_TOKEN
        response = await attacker.post(f"{API}/ext/metrics", json={}, headers=bearer(value))
        assert response.status_code == 401, n
    assert_too_many(await attacker.post(f"{API}/ext/metrics", json={}, headers=bearer(BAD_KEY)))
    assert_too_many(await attacker.get(API, headers=bearer(BAD_TOKEN)))


async def test_wrong_enrollment_tokens_count_too(
    attacker: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    metadata = {"id": "guess", "name": "Guess", "version": "1.0.0"}
    body = {"metadata": metadata, "hostname": "nas"}
    bad_enrollment = "unitye_aaaaaaaaaaaa_" + "b" * 43
    for n in range(LIMIT):
        response = await attacker.post(f"{API}/register", json=body, headers=bearer(bad_enrollment))
        assert response.status_code == 401, n
    assert_too_many(
        await attacker.post(f"{API}/register", json=body, headers=bearer(bad_enrollment))
    )
    assert_too_many(await attacker.get(API, headers=bearer(BAD_TOKEN)))
    # A good enrollment token from another address still registers.
    made = await client.post("/api/enrollment-tokens", json={})
    assert made.status_code == 201, made.text
    registered = await client.post(
        f"{API}/register", json=body, headers=bearer(made.json()["token"])
    )
    assert registered.status_code == 201, registered.text


async def test_parallel_guesses_cannot_slip_past_the_limit(
    attacker: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(
        *(attacker.get(API, headers=bearer(BAD_TOKEN)) for _ in range(200))
    )
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {401, 429}
    # At most a few checks of one address run at once, so only they can overshoot.
    assert LIMIT <= statuses.count(401) <= LIMIT + 4


async def test_another_address_is_never_blocked_and_the_same_one_recovers(
    app: FastAPI, attacker: httpx.AsyncClient
) -> None:
    good = (await issue_token(app, Scope.ADMIN)).value
    hammering = asyncio.gather(*(attacker.get(API, headers=bearer(BAD_TOKEN)) for _ in range(60)))
    async with asgi_client(app, ADMIN) as admin:
        during = [await admin.get(API, headers=bearer(good)) for _ in range(5)]
        assert 429 in {a.status_code for a in await hammering}
        after = [await admin.get(API, headers=bearer(good)) for _ in range(5)]
    assert [a.status_code for a in during + after] == [200] * 10
    # The blocked address is refused even with the right token, until the window passes.
    blocked = await attacker.get(API, headers=bearer(good))
    retry_after = assert_too_many(blocked)
    await asyncio.sleep(retry_after + 0.1)
    assert (await attacker.get(API, headers=bearer(good))).status_code == 200
    assert (await attacker.get(API, headers=bearer(BAD_TOKEN))).status_code == 401


async def test_requests_without_a_credential_are_not_failures(
    app: FastAPI, attacker: httpx.AsyncClient
) -> None:
    for _ in range(LIMIT * 2):
        assert (await attacker.get(API)).status_code == 401
    good = (await issue_token(app, Scope.READ)).value
    assert (await attacker.get(API, headers=bearer(good))).status_code == 200


async def _login(client: httpx.AsyncClient, token: str, accept: str) -> httpx.Response:
    page = await client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    return await client.post(
        "/login",
        data={"token": token, "nonce": nonce.group(1)},
        headers={"Accept": accept},
    )


async def test_dashboard_logins_are_limited_the_same_way(
    app: FastAPI, attacker: httpx.AsyncClient
) -> None:
    """Before: 300 bad logins in 1.9 s all got a plain 401."""
    html = "text/html,application/xhtml+xml"
    for n in range(LIMIT):
        assert (await _login(attacker, BAD_TOKEN, html)).status_code == 401, n
    page = await _login(attacker, BAD_TOKEN, html)
    assert page.status_code == 429
    assert int(page.headers["retry-after"]) >= 1
    assert "Too many failed logins" in page.text
    assert_too_many(await _login(attacker, BAD_TOKEN, "application/json"))
    # The bearer path shares the address's record.
    assert_too_many(await attacker.get(API, headers=bearer(BAD_TOKEN)))
    good = (await issue_token(app, Scope.ADMIN)).value
    async with asgi_client(app, ADMIN) as admin:
        answer = await _login(admin, good, html)
        assert answer.status_code == 303
        assert "unity_session" in admin.cookies


class TestBehindAProxy:
    """X-Forwarded-For names the client only when the peer is a trusted proxy."""

    PROXY = "127.0.0.10"

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"trusted_proxies": [f"{self.PROXY}/32"]})

    async def test_clients_behind_a_trusted_proxy_are_told_apart(self, app: FastAPI) -> None:
        good = (await issue_token(app, Scope.ADMIN)).value
        async with asgi_client(app, self.PROXY) as proxy:
            for _ in range(LIMIT):
                forwarded = {"X-Forwarded-For": ATTACKER, **bearer(BAD_TOKEN)}
                assert (await proxy.get(API, headers=forwarded)).status_code == 401
            blocked = await proxy.get(API, headers={"X-Forwarded-For": ATTACKER, **bearer(good)})
            assert_too_many(blocked)
            admin = await proxy.get(API, headers={"X-Forwarded-For": ADMIN, **bearer(good)})
            assert admin.status_code == 200, "the proxy's other clients are not blocked"

    async def test_an_untrusted_peer_cannot_pick_its_address(self, app: FastAPI) -> None:
        async with asgi_client(app, ATTACKER) as direct:
            for n in range(LIMIT):
                spoofed = {"X-Forwarded-For": f"127.0.1.{n}", **bearer(BAD_TOKEN)}
                assert (await direct.get(API, headers=spoofed)).status_code == 401
            spoofed = {"X-Forwarded-For": "127.0.2.1", **bearer(BAD_TOKEN)}
            assert_too_many(await direct.get(API, headers=spoofed))


async def test_without_trusted_proxies_forwarded_headers_are_ignored(
    attacker: httpx.AsyncClient,
) -> None:
    for n in range(LIMIT):
        spoofed = {"X-Forwarded-For": f"127.0.1.{n}", **bearer(BAD_TOKEN)}
        assert (await attacker.get(API, headers=spoofed)).status_code == 401
    spoofed = {"X-Forwarded-For": "127.0.3.3", **bearer(BAD_TOKEN)}
    assert_too_many(await attacker.get(API, headers=spoofed))
