"""accept_batch_json: the rulebook in one pass over the raw body, with accept_batch's answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from unity_sdk import (
    MAX_BATCH_SAMPLES,
    BatchRefusedError,
    MetricBatch,
    MetricField,
    PluginMetadata,
    accept_batch,
    accept_batch_json,
)

METADATA = PluginMetadata(
    id="ups",
    name="UPS",
    version="1.0.0",
    description="A UPS.",
    metrics=[MetricField(name="battery", unit="%"), MetricField(name="load.percent", unit="%")],
)
NOW = datetime.now(UTC).replace(microsecond=0)


def _sample(data: Any, *, stamp: str | None = None) -> str:
    when = json.dumps(stamp or (NOW - timedelta(minutes=1)).isoformat())
    return f'{{"host": "ups", "timestamp": {when}, "data": {data}}}'


def _body(*samples: str, batch_id: str = "batch-0001") -> bytes:
    return f'{{"batch_id": "{batch_id}", "samples": [{", ".join(samples)}]}}'.encode()


def _keep_constants(body: bytes | str) -> Any:
    return json.loads(body, parse_constant=float)


BODIES = {
    "valid": _body(_sample('{"battery": 98, "load": {"percent": 12.5}, "note": "é ☃"}')),
    "undeclared text": _body(_sample('{"battery": 1, "status": "online"}')),
    "declared text": _body(_sample('{"battery": 1}'), _sample('{"battery": "full"}')),
    "NaN": _body(_sample('{"battery": NaN}')),
    "Infinity": _body(_sample('{"battery": 1e400}')),
    "huge integer": _body(_sample('{"battery": 123456789012345678901234567890}')),
    "largest integer": _body(_sample(f'{{"battery": {2**63 - 1}}}')),
    "lone surrogate": _body(_sample('{"battery": 1, "note": "\\ud800"}')),
    "naive timestamp": _body(_sample("{}", stamp="2026-11-01T00:00:00")),
    "future": _body(_sample("{}", stamp=(NOW + timedelta(hours=1)).isoformat())),
    "offset": _body(_sample('{"battery": 2}', stamp="2026-11-01T02:00:00+02:00")),
    "no samples": _body(),
    "short id": _body(_sample("{}"), batch_id="x"),
    "extra key": b'{"batch_id": "batch-0001", "samples": [], "more": 1}',
    "not an object": b"[]",
    "too many": _body(
        *[_sample(f'{{"battery": {i % 100}}}') for i in range(MAX_BATCH_SAMPLES + 1)]
    ),
    "duplicate key": b'{"batch_id": "batch-0001", "batch_id": "batch-0002", "samples": ['
    + _sample("{}").encode()
    + b"]}",
}


def _outcome(judge: Any) -> tuple[str, Any]:
    try:
        batch: MetricBatch = judge()
    except BatchRefusedError as exc:
        return ("refused", (exc.status, str(exc), exc.errors))
    return ("accepted", batch.model_dump())


@pytest.mark.parametrize("name", sorted(BODIES))
def test_one_pass_answers_exactly_as_accept_batch_does(name: str) -> None:
    body = BODIES[name]
    one_pass = _outcome(lambda: accept_batch_json(METADATA, body, parse=_keep_constants))
    two_passes = _outcome(lambda: accept_batch(METADATA, _keep_constants(body)))
    assert one_pass == two_passes


def test_the_bodies_cover_both_answers() -> None:
    outcomes = {_outcome(lambda b=b: accept_batch_json(METADATA, b))[0] for b in BODIES.values()}
    assert outcomes == {"accepted", "refused"}
    status = _outcome(lambda: accept_batch_json(METADATA, BODIES["too many"]))[1][0]
    assert status == 413


def test_text_that_is_not_json_gets_the_parsers_own_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        accept_batch_json(METADATA, b"{not json")
