"""The SDK contract: metadata validation, documents, errors and the wire models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import unity_sdk
import unity_sdk.errors
from unity_sdk import (
    HealthReport,
    HealthState,
    HealthStatus,
    MetricField,
    PluginBase,
    PluginError,
    PluginMetadata,
    Sample,
    check_document,
    error_details,
    iter_metric_values,
    undeclared_numbers,
)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "Not Kebab", "String should match pattern"),
        ("id", "trailing-", "String should match pattern"),
        ("version", "1.0", "not semantic versioning"),
        ("default_interval", 0, "greater than 0"),
        ("timeout", -1, "greater than 0"),
        ("config_schema", {"type": "array"}, "must describe an object"),
    ],
)
def test_metadata_rejects_bad_values(field: str, value: Any, message: str) -> None:
    values: dict[str, Any] = {"id": "ok", "name": "Ok", "version": "1.0.0", field: value}
    with pytest.raises(ValidationError, match=message):
        PluginMetadata(**values)


def test_metrics_must_be_unique_paths() -> None:
    with pytest.raises(ValidationError, match="declared twice: a"):
        PluginMetadata(
            id="ok",
            name="Ok",
            version="1.0.0",
            metrics=[MetricField(name="a"), MetricField(name="a")],
        )
    with pytest.raises(ValidationError, match="dotted path"):
        MetricField(name="a..b")


def test_metric_paths_read_documents() -> None:
    doc = {"disks": {"sda": {"used": 1}, "sdb": {"used": 2}}, "cores": [5, 6]}
    assert list(iter_metric_values(MetricField(name="disks.*.used"), doc)) == [
        (("sda",), 1),
        (("sdb",), 2),
    ]
    assert list(iter_metric_values(MetricField(name="cores.*"), doc)) == [(("0",), 5), (("1",), 6)]
    assert list(iter_metric_values(MetricField(name="missing.x"), doc)) == []


def test_check_document_reports_missing_and_non_numeric() -> None:
    metadata = PluginMetadata(
        id="ok",
        name="Ok",
        version="1.0.0",
        metrics=[MetricField(name="a"), MetricField(name="b.*"), MetricField(name="c")],
    )
    problems = check_document(metadata, {"a": "high", "b": {"x": float("nan")}})
    assert problems == [
        "metric 'a' is declared gauge but the value is 'high'",
        "metric 'b.*[x]' is declared gauge but the value is nan",
        "declared metric 'c' is missing from the document",
    ]
    assert check_document(metadata, [1]) == ["collect_data returned list, expected a dict"]


def test_error_details_is_the_one_loc_msg_shape() -> None:
    class Point(BaseModel):
        x: int
        tags: list[int]

    with pytest.raises(ValidationError) as caught:
        Point.model_validate({"x": "a", "tags": [1, "b"]})
    assert error_details(caught.value) == [
        {
            "loc": ["x"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
        },
        {
            "loc": ["tags", 1],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
        },
    ]
    assert [d["loc"] for d in error_details(caught.value, "body")] == [
        ["body", "x"],
        ["body", "tags", 1],
    ]
    # FastAPI hands over the raw ``errors()``; the API promises string locations there.
    assert error_details(caught.value.errors(), str_loc=True)[1]["loc"] == ["tags", "1"]
    assert error_details([{"type": "missing"}]) == [{"loc": [], "msg": ""}]


def test_error_hierarchy_is_drawn_in_the_docstring() -> None:
    doc = unity_sdk.errors.__doc__ or ""
    for name in unity_sdk.errors.__all__:
        assert name in doc, name
        cls = getattr(unity_sdk.errors, name)
        assert issubclass(cls, unity_sdk.UnityError)
    assert not unity_sdk.PluginAuthError.recoverable
    assert unity_sdk.PluginNotReadyError.recoverable
    assert issubclass(unity_sdk.CollectionError, PluginError)


def test_health_status_helpers() -> None:
    assert HealthStatus.degraded("slow", ms=300).details == {"ms": 300}
    assert HealthStatus.unhealthy("down").status is HealthState.UNHEALTHY


def test_every_contract_method_documents_an_example() -> None:
    for name in (
        "get_metadata",
        "collect_data",
        "health_check",
        "on_enable",
        "on_disable",
        "on_error",
        "on_config_change",
        "discover",
    ):
        doc = getattr(PluginBase, name).__doc__ or ""
        assert "Example::" in doc, name


def test_undeclared_numbers_names_every_number_without_a_declaration() -> None:
    metadata = PluginMetadata(
        id="ok",
        name="Ok",
        version="1.0.0",
        metrics=[MetricField(name="a"), MetricField(name="disks.*.used")],
    )
    document = {
        "a": 1,
        "b": 2.5,
        "flag": True,
        "text": "x",
        "disks": {"sda": {"used": 3, "temp": 40}},
        "cores": [1, 2],
    }
    assert undeclared_numbers(metadata, document) == [
        "b",
        "disks/sda/temp",
        "cores/0",
        "cores/1",
    ]


def test_check_document_refuses_numbers_the_hub_cannot_store() -> None:
    """The number rule covers undeclared values too: the hub stores the whole document."""
    metadata = PluginMetadata(id="ok", name="Ok", version="1.0.0", metrics=[MetricField(name="a")])
    document = {"a": 10**400, "b": [1, float("inf")], "c": {"d": -(2**63) - 1}, "e": 2**63 - 1}
    assert check_document(metadata, document) == [
        "value at 'b.1' cannot be stored: inf is not a finite number",
        "value at 'c.d' cannot be stored: an integer of 19 digits is beyond 64 bits",
        f"metric 'a' is declared gauge but the value is {10**400!r}",
    ]


def test_the_wire_models_refuse_unstorable_values_before_anything_is_sent() -> None:
    """HubClient builds these models, so a plugin learns of a bad value at collection."""
    now = datetime.now(UTC)
    with pytest.raises(ValidationError, match=r"data\.cpu: inf is not a finite number"):
        Sample(host="h", timestamp=now, data={"cpu": float("inf")})
    with pytest.raises(ValidationError, match=r"details\.n: an integer of 20 digits"):
        HealthReport(status="healthy", details={"n": 10**19})
    with pytest.raises(ValidationError, match="ahead of the hub's clock"):
        Sample(host="h", timestamp=now + timedelta(hours=1), data={})
    late = Sample.model_validate(
        {"host": "h", "timestamp": now + timedelta(hours=1), "data": {}},
        context={"max_future_skew": timedelta(hours=2)},
    )
    assert late.timestamp == now + timedelta(hours=1)


def test_error_lines_name_the_field_or_the_whole_input() -> None:
    class Point(BaseModel):
        x: int
        tags: list[int]

    with pytest.raises(ValidationError) as caught:
        Point.model_validate({"x": "a", "tags": [1, "b"]})
    assert unity_sdk.error_lines(caught.value) == [
        "x: Input should be a valid integer, unable to parse string as an integer",
        "tags.1: Input should be a valid integer, unable to parse string as an integer",
    ]
    assert unity_sdk.error_lines([{"loc": [], "msg": "not an object"}], whole="config") == [
        "config: not an object"
    ]
