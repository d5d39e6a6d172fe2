"""The cheap paths of batch validation: the raw-text number scan, the data walk it
spares, and the declared-metric lookup, each answering as the full rules do."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from unity_sdk import (
    BatchRefusedError,
    MetricBatch,
    MetricField,
    PluginMetadata,
    accept_batch,
    accept_batch_json,
    check_document,
)
from unity_sdk._numbers import json_numbers_storable, number_problems

METADATA = PluginMetadata(
    id="ups",
    name="UPS",
    version="1.0.0",
    description="A UPS.",
    metrics=[
        MetricField(name="battery", unit="%"),
        MetricField(name="load.percent", unit="%"),
        MetricField(name="disks.*.read", unit="B", kind="counter"),
        MetricField(name="model", kind="info"),
    ],
)
NOW = datetime.now(UTC).replace(microsecond=0)
RECENT = (NOW - timedelta(minutes=1)).isoformat()


def _body(data: str, *, stamp: str = RECENT, batch_id: str = "8e078f00aa") -> bytes:
    sample = f'{{"host": "ups", "timestamp": {json.dumps(stamp)}, "data": {data}}}'
    return f'{{"batch_id": "{batch_id}", "samples": [{sample}]}}'.encode()


def _keep_constants(body: bytes | str) -> Any:
    return json.loads(body, parse_constant=float)


def _outcome(judge: Any) -> tuple[str, Any]:
    try:
        batch: MetricBatch = judge()
    except BatchRefusedError as exc:
        return ("refused", (exc.status, str(exc), exc.errors))
    return ("accepted", batch.model_dump())


def _nested(depth: int, leaf: str) -> str:
    return '{"a": ' * depth + leaf + "}" * depth


# Literals the scan must never call storable when they are not.
UNSTORABLE = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "1E+400",
    "-1e309",
    "1.8e308",
    "9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1" + "0" * 309 + ".0",
    "923456789012345678e291",
]
# Storable literals, some of which the scan passes to the walk (it may be cautious).
STORABLE = [
    "0",
    "-1",
    "12.5",
    "-0.0",
    "1e99",
    "999999999999999999e99",
    "123456789.123456789e99",
    "1e-400",
    "1.7976931348623157e308",
    "9223372036854775807",
    "-9223372036854775808",
    "0.30000000000000004",
    "3221225472",
]


@pytest.mark.parametrize("literal", UNSTORABLE)
def test_the_scan_never_passes_an_unstorable_number(literal: str) -> None:
    for text in (f'{{"v": {literal}}}', f'{{"v": [1, {literal}]}}', _nested(30, literal)):
        assert number_problems(_keep_constants(text))  # the premise: it is unstorable
        assert not json_numbers_storable(text.encode())


@pytest.mark.parametrize("literal", STORABLE)
def test_whatever_the_scan_passes_the_walk_passes_too(literal: str) -> None:
    text = f'{{"v": {literal}, "w": [{literal}, {{"x": {literal}}}]}}'
    assert number_problems(_keep_constants(text)) == []
    if json_numbers_storable(text.encode()):
        assert number_problems(MetricBatch.model_validate_json(_body(text)).samples[0].data) == []


def test_the_scan_passes_ordinary_documents_and_text_that_only_looks_like_numbers() -> None:
    document = {
        "cpu": {"percent": 12.5, "load1": 0.31},
        "memory": {"used": 3_221_225_472, "percent": 41.2},
        "id": "8e078f2d-0e000a",  # hex: "8e078" and "0e000" are not exponents here
        "note": "NAN, INF, infinite",
        "ints": [-(2**40), 2**40, 0],
    }
    assert json_numbers_storable(json.dumps(document).encode())
    assert json_numbers_storable(_body(json.dumps(document)))
    # Inside strings the scan is cautious, never wrong.
    assert not json_numbers_storable(b'{"note": "NaN"}')
    assert not json_numbers_storable(b'{"serial": "1234567890123456789012"}')
    assert not json_numbers_storable(b'{"v": [1e400]}')
    assert not json_numbers_storable(b'{"v": 1e400 }')
    assert not json_numbers_storable(b'{"v":1e400}')


BODIES = {
    "NaN deep": _body(_nested(40, '{"v": [1, NaN]}')),
    "Infinity deep": _body(_nested(40, '{"v": -Infinity}')),
    "overflowing float": _body('{"battery": 1E+400}'),
    "huge integer in a list": _body('{"ints": [1, 2, 18446744073709551616]}'),
    "many bad numbers": _body(json.dumps({f"k{i}": 2**70 for i in range(8)})),
    "deep and fine": _body(_nested(60, '{"v": [1.5, -2, 3e10]}')),
    "Z suffix": _body('{"battery": 1}', stamp=RECENT.replace("+00:00", "Z")),
    "negative offset": _body('{"battery": 1}', stamp="2026-11-01T02:00:00-05:00"),
    "large offset": _body('{"battery": 1}', stamp="2026-11-01T02:00:00+14:00"),
    "offset beyond year 1": _body("{}", stamp="0001-01-01T00:30:00+01:00"),
    "offset beyond year 9999": _body("{}", stamp="9999-12-31T23:30:00-01:00"),
    "naive timestamp": _body("{}", stamp="2026-11-01T00:00:00"),
    "future with offset": _body("{}", stamp=(NOW + timedelta(hours=1)).astimezone().isoformat()),
    "timestamp a number": b'{"batch_id": "batch-0001", "samples": [{"host": "ups", '
    b'"timestamp": 1700000000, "data": {}}]}',
    "data a list": _body("[1, 2]"),
    "host a number": b'{"batch_id": "batch-0001", "samples": [{"host": 7, '
    + f'"timestamp": "{RECENT}", "data": {{}}}}]}}'.encode(),
    "declared gauge text": _body('{"battery": "full", "load": {"percent": true}}'),
    "declared counter per disk": _body('{"disks": {"sda": {"read": 5}, "sdb": {"read": "x"}}}'),
    "declared counter huge": _body('{"disks": {"sda": {"read": 99999999999999999999}}}'),
    "declared gauge null": _body('{"battery": null, "model": null}'),
    "declared path through a list": _body('{"load": [1, 2], "battery": 3}'),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_one_pass_answers_exactly_as_accept_batch_does(name: str) -> None:
    body = BODIES[name]
    one_pass = _outcome(lambda: accept_batch_json(METADATA, body, parse=_keep_constants))
    two_passes = _outcome(lambda: accept_batch(METADATA, _keep_constants(body)))
    assert one_pass == two_passes


def test_the_error_texts_are_those_of_the_rules() -> None:
    def refusal(name: str) -> tuple[int, str, list[dict[str, Any]]]:
        outcome = _outcome(lambda: accept_batch_json(METADATA, BODIES[name]))
        assert outcome[0] == "refused"
        status, message, errors = outcome[1]
        assert message == "sample 0 is invalid; nothing was stored"
        return status, message, errors

    _, _, errors = refusal("NaN deep")
    path = ".".join(["data", *["a"] * 40, "v", "1"])
    assert errors == [
        {
            "loc": ["samples", 0, "data"],
            "msg": "Value error, numbers must be finite doubles or 64-bit integers; "
            f"{path}: nan is not a finite number",
        }
    ]
    _, _, errors = refusal("huge integer in a list")
    assert errors[0]["msg"].endswith("data.ints.2: an integer of 20 digits is beyond 64 bits")
    _, _, errors = refusal("many bad numbers")
    assert errors[0]["msg"].endswith("and 3 more")
    _, _, errors = refusal("offset beyond year 1")
    assert errors == [
        {
            "loc": ["samples", 0, "timestamp"],
            "msg": "Value error, timestamp 0001-01-01T00:30:00+01:00 is outside years 1-9999 "
            "once converted to UTC",
        }
    ]
    _, _, errors = refusal("naive timestamp")
    assert errors[0]["loc"] == ["samples", 0, "timestamp"]
    assert "timezone" in errors[0]["msg"]
    _, _, errors = refusal("declared counter per disk")
    assert errors == [
        {
            "loc": ["samples", 0, "data"],
            "msg": "metric 'disks.*.read[sdb]' is declared counter but the value is 'x'",
        }
    ]
    _, _, errors = refusal("declared gauge null")
    assert [e["msg"] for e in errors] == [
        "metric 'battery' is declared gauge but the value is None"
    ]


def test_accepted_timestamps_are_utc() -> None:
    for name in ("Z suffix", "negative offset", "large offset"):
        batch = accept_batch_json(METADATA, BODIES[name])
        stamp = batch.samples[0].timestamp
        assert stamp.tzinfo is UTC
    batch = accept_batch_json(METADATA, BODIES["negative offset"])
    assert batch.samples[0].timestamp == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def test_the_declared_metric_lookup_reads_mappings_and_reports_what_is_missing() -> None:
    document = OrderedDict(
        battery=OrderedDict(),
        load=OrderedDict(percent=True),
        disks={"sda": {"read": 1.5}, "sdb": {"read": float("nan")}},
    )
    assert check_document(METADATA, document, numbers_checked=True) == [
        "metric 'battery' is declared gauge but the value is OrderedDict()",
        "metric 'load.percent' is declared gauge but the value is True",
        "metric 'disks.*.read[sdb]' is declared counter but the value is nan",
        "declared metric 'model' is missing from the document",
    ]
    assert check_document(METADATA, {"battery": 2**63, "model": "x"}) == [
        "metric 'battery' is declared gauge but the value is 9223372036854775808",
        "declared metric 'load.percent' is missing from the document",
    ]
    assert check_document(METADATA, {"load": 1}, require_all=False) == []
    assert check_document(
        METADATA, {"battery": float("inf"), "load": {"percent": -(2**63) - 1}}, numbers_checked=True
    ) == [
        "metric 'battery' is declared gauge but the value is inf",
        "metric 'load.percent' is declared gauge but the value is -9223372036854775809",
        "declared metric 'model' is missing from the document",
    ]
