"""Integers past what the database column holds are refused with 422, never a 500."""

from __future__ import annotations

import httpx


async def test_an_enrollment_max_uses_beyond_the_column_is_422(lenient: httpx.AsyncClient) -> None:
    for too_many in (2**31, 2**63):
        response = await lenient.post("/api/enrollment-tokens", json={"max_uses": too_many})
        assert response.status_code == 422, (too_many, response.status_code, response.text)
        [detail] = response.json()["error"]["details"]
        assert detail["loc"] == ["max_uses"]
    largest = await lenient.post("/api/enrollment-tokens", json={"max_uses": 2**31 - 1})
    assert largest.status_code == 201, largest.text
    assert largest.json()["max_uses"] == 2**31 - 1
