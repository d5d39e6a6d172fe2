"""Cursors and times past what the database holds are refused, never a 500."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.api.helpers import API, error_of


def _forged(stamp: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([stamp, row_id]).encode()).decode().rstrip("=")


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
@pytest.mark.parametrize("route", ["metrics", "executions"])
async def test_a_cursor_whose_time_leaves_years_1_to_9999_in_utc_is_400(
    lenient: httpx.AsyncClient, route: str, stamp: str
) -> None:
    response = await lenient.get(f"{API}/counter/{route}", params={"cursor": _forged(stamp, 5)})
    error = error_of(response, 400)
    assert "cursor" in error["message"]
    assert error["details"] == [{"loc": ["query", "cursor"], "msg": error["message"]}]


@pytest.mark.parametrize("cursor", [str(2**63), str(10**30)])
async def test_an_audit_cursor_beyond_64_bits_is_422_naming_the_cursor(
    lenient: httpx.AsyncClient, cursor: str
) -> None:
    response = await lenient.get("/api/credentials/audit", params={"cursor": cursor})
    error = error_of(response, 422)
    assert [d["loc"] for d in error["details"]] == [["query", "cursor"]]


async def test_the_largest_audit_cursor_is_accepted(lenient: httpx.AsyncClient) -> None:
    response = await lenient.get("/api/credentials/audit", params={"cursor": str(2**63 - 1)})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "params",
    [
        {"start": "0001-01-01T00:00:00+05:00"},
        {"end": "9999-12-31T23:59:59-05:00"},
        {"end": "0001-01-01T12:00:00+00:00"},
        {"start": "9999-12-31T00:00:00+00:00", "field": "value"},
        {"end": "0001-01-01T12:00:00+00:00", "field": "value"},
    ],
)
async def test_query_times_at_the_edges_of_the_calendar_are_not_a_500(
    lenient: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await lenient.get(f"{API}/counter/metrics", params=params)
    assert response.status_code in {200, 422}, (params, response.status_code, response.text)
