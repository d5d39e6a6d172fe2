"""No built-in declares two metrics that share a Prometheus name."""

from __future__ import annotations

from unity.authoring.catalogue import builtin_metadata
from unity_sdk import prometheus_collisions, prometheus_series


def test_no_builtin_has_a_collision() -> None:
    # http-check declared endpoints_up and endpoints.*.up, both once named
    # unity_http_check_endpoints_up.
    problems = {m.id: prometheus_collisions(m) for m in builtin_metadata()}
    assert {plugin: found for plugin, found in problems.items() if found} == {}
    http = next(m for m in builtin_metadata() if m.id == "http-check")
    names = {f.name: prometheus_series(http.id, f).name for f in http.metrics}
    assert names["endpoints_up"] == "unity_http_check_endpoints_up"
    assert names["endpoints.*.up"] == "unity_http_check_endpoint_up"
