"""The one rule that names, labels and scales declared metrics for Prometheus."""

from __future__ import annotations

import pytest

from unity_sdk import (
    MetricField,
    MetricKind,
    PluginMetadata,
    prometheus_collisions,
    prometheus_series,
)

GAUGE, COUNTER, INFO = MetricKind.GAUGE, MetricKind.COUNTER, MetricKind.INFO


@pytest.mark.parametrize(
    ("path", "unit", "kind", "name", "labels", "scale"),
    [
        # Base units with their suffix; the unit's spelling in the name is replaced.
        (
            "endpoints.*.latency_ms",
            "ms",
            GAUGE,
            "unity_p_endpoint_latency_seconds",
            ["endpoint"],
            1e-3,
        ),
        ("uptime", "s", GAUGE, "unity_p_uptime_seconds", [], 1.0),
        ("longest_query_seconds", "s", GAUGE, "unity_p_longest_query_seconds", [], 1.0),
        (
            "targets.*.days_until_expiry",
            "days",
            GAUGE,
            "unity_p_target_until_expiry_seconds",
            ["target"],
            86400.0,
        ),
        ("memory.total", "bytes", GAUGE, "unity_p_memory_total_bytes", [], 1.0),
        ("gpus.*.memory_used", "MiB", GAUGE, "unity_p_gpu_memory_used_bytes", ["gpu"], 2.0**20),
        (
            "devices.*.read_kb",
            "KiB/s",
            GAUGE,
            "unity_p_device_read_bytes_per_second",
            ["device"],
            1024.0,
        ),
        ("sender.bits_per_second", "bit/s", GAUGE, "unity_p_sender_bytes_per_second", [], 0.125),
        ("stats.ops_per_sec", "ops/s", GAUGE, "unity_p_stats_ops_per_second", [], 1.0),
        ("cpu.frequency.*", "MHz", GAUGE, "unity_p_cpu_frequency_hertz", ["frequency"], 1e6),
        (
            "chips.*.temperatures.*.input",
            "°C",
            GAUGE,
            "unity_p_chip_temperature_input_celsius",
            ["chip", "temperature"],
            1.0,
        ),
        # Percent is a 0-1 ratio in Prometheus.
        ("cpu.percent", "%", GAUGE, "unity_p_cpu_ratio", [], 0.01),
        (
            "databases.*.cache_hit_ratio",
            "%",
            GAUGE,
            "unity_p_database_cache_hit_ratio",
            ["database"],
            0.01,
        ),
        ("ratios.*", "%", GAUGE, "unity_p_ratio", ["ratio"], 0.01),
        ("pools.*.dedup_ratio", "ratio", GAUGE, "unity_p_pool_dedup_ratio", ["pool"], 1.0),
        # Counters end in _total, once.
        ("runs", "count", COUNTER, "unity_p_runs_total", [], 1.0),
        ("queries.total", "count", COUNTER, "unity_p_queries_total", [], 1.0),
        ("totals.temp_bytes", "bytes", COUNTER, "unity_p_totals_temp_bytes_total", [], 1.0),
        (
            "devices.*.power_on_hours",
            "h",
            COUNTER,
            "unity_p_device_power_on_seconds_total",
            ["device"],
            3600.0,
        ),
        # A gauge never ends in a suffix of another type.
        ("total", "count", GAUGE, "unity_p_total_value", [], 1.0),
        ("device_count", "count", GAUGE, "unity_p_device_count_value", [], 1.0),
        ("x_info", "", GAUGE, "unity_p_x_info_value", [], 1.0),
        # Items: the segment before * names the label, in the singular.
        ("endpoints_up", "count", GAUGE, "unity_p_endpoints_up", [], 1.0),
        ("endpoints.*.up", "bool", GAUGE, "unity_p_endpoint_up", ["endpoint"], 1.0),
        ("processes.*.name", "", INFO, "unity_p_process_name_info", ["process"], 1.0),
        ("clients.*", "count", GAUGE, "unity_p_clients", ["client"], 1.0),
        ("disks.*.*.bytes", "bytes", COUNTER, "unity_p_disk_bytes_total", ["disk", "key"], 1.0),
        ("ups.*.load", "%", GAUGE, "unity_p_ups_load_ratio", ["ups"], 0.01),
        ("hosts.*.up", "bool", GAUGE, "unity_p_host_up", ["host_name"], 1.0),
        ("instances.*.state", "", INFO, "unity_p_instance_state_info", ["instance_name"], 1.0),
        ("values.*.text", "", INFO, "unity_p_value_text_info", ["value_name"], 1.0),
        ("a.*.a.*.v", "", GAUGE, "unity_p_a_a_v", ["a", "a_2"], 1.0),
        ("*.v", "", GAUGE, "unity_p_v", ["key"], 1.0),
        ("_1.*", "", GAUGE, "unity_p_1", ["key_1"], 1.0),
        ("__.*.v", "", GAUGE, "unity_p_v", ["key"], 1.0),
        ("readBytes", "B", GAUGE, "unity_p_read_bytes", [], 1.0),
        # Units without a base unit add nothing; the declared unit stays in HELP.
        ("queue_size", "requests", GAUGE, "unity_p_queue_size", [], 1.0),
    ],
)
def test_names_labels_and_scale(
    path: str, unit: str, kind: MetricKind, name: str, labels: list[str], scale: float
) -> None:
    series = prometheus_series("p", MetricField(name=path, unit=unit, kind=kind))
    assert series.name == name
    assert list(series.labels) == ["host", *labels]
    assert series.scale == pytest.approx(scale)
    assert series.type == kind.value


def test_help_names_the_exported_unit() -> None:
    field = MetricField(name="latency_ms", unit="ms", description="Round trip")
    assert prometheus_series("http-check", field).help == "Round trip (seconds)"
    assert prometheus_series("p", MetricField(name="q", unit="requests")).help == "q (requests)"
    assert prometheus_series("http-check", field).name.startswith("unity_http_check_")


def _metadata(*fields: MetricField) -> PluginMetadata:
    return PluginMetadata(id="clash", name="Clash", version="1.0.0", metrics=list(fields))


def test_two_metrics_with_one_prometheus_name_are_a_collision() -> None:
    problems = prometheus_collisions(
        _metadata(
            MetricField(name="endpoint_up", unit="count"),
            MetricField(name="endpoints.*.up", unit="bool"),
            MetricField(name="a.b_c"),
            MetricField(name="a_b.c", kind=COUNTER),
            MetricField(name="fine"),
        )
    )
    assert problems == [
        "metrics 'endpoint_up' (gauge) and 'endpoints.*.up' (gauge) map to the same "
        "Prometheus name 'unity_clash_endpoint_up'; rename one of them",
    ]
    counter_and_gauge = _metadata(
        MetricField(name="latency", unit="s"), MetricField(name="latency_ms", unit="ms")
    )
    assert prometheus_collisions(counter_and_gauge) == [
        "metrics 'latency' (gauge) and 'latency_ms' (gauge) map to the same "
        "Prometheus name 'unity_clash_latency_seconds'; rename one of them",
    ]


def test_types_never_share_a_name() -> None:
    # A counter "x" is written x_total, an info "x" x_info: gauges of those names
    # are renamed instead of giving one name two TYPE lines.
    metadata = _metadata(
        MetricField(name="x", kind=COUNTER),
        MetricField(name="x_total"),
        MetricField(name="y", kind=INFO),
        MetricField(name="y_info"),
    )
    assert prometheus_collisions(metadata) == []
    names = [prometheus_series("clash", f).name for f in metadata.metrics]
    assert names == [
        "unity_clash_x_total",
        "unity_clash_x_total_value",
        "unity_clash_y_info",
        "unity_clash_y_info_value",
    ]
