"""How a declared metric is named, labelled and scaled on the hub's ``/metrics``.

One function, :func:`prometheus_series`, turns a plugin id and a declared
:class:`~unity_sdk.MetricField` into the Prometheus family the hub exports. The
hub's exposition, the collision check (:func:`prometheus_collisions`, applied
by the hub's loader, by external registration and by ``unity author check``)
and the author tooling all call it, so they cannot disagree.

The rule, following the Prometheus naming conventions
(https://prometheus.io/docs/practices/naming/):

- The name is ``unity_<plugin id>_<path>`` in snake case, ``-`` and ``.``
  written ``_`` and ``*`` segments left out. A segment followed by ``*`` and
  then by more fields names one item, so it is written in the singular
  (``endpoints.*.up`` is ``unity_http_check_endpoint_up``).
- Each ``*`` becomes a label named in the singular after the segment before
  it (``disks.*.used`` has the label ``disk``); a ``*`` with no named segment
  before it is ``key``. Every family also has the label ``host``.
- The declared unit picks a base unit, a name suffix and a factor for the
  value: ``ms`` becomes ``_seconds`` (value / 1000), ``MiB`` ``_bytes``,
  ``KiB/s`` ``_bytes_per_second``, ``%`` ``_ratio`` (value / 100, as the
  naming conventions ask for 0-1 ratios), ``°C`` ``_celsius``. Spellings of
  the unit in the last segment are dropped first (``latency_ms`` becomes
  ``latency_seconds``, not ``latency_ms_seconds``). Units without a base
  unit (``count``, ``bool``, ``code``...) add no suffix.
- Counters end in ``_total``. A gauge never ends in a suffix Prometheus gives
  another type (``_total``, ``_count``, ``_sum``, ``_bucket``, ``_created``,
  ``_info``): such a gauge gets ``_value`` appended. Info metrics end in
  ``_info`` and carry their text in the label ``value``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from unity_sdk.errors import MetadataError
from unity_sdk.metadata import MetricField, MetricKind, PluginMetadata

__all__ = [
    "NAMESPACE",
    "PrometheusSeries",
    "check_prometheus_names",
    "prometheus_advice",
    "prometheus_collisions",
    "prometheus_series",
]

NAMESPACE = "unity"

# Suffixes the exposition format gives to other metric types; a gauge ending in
# one is misread by parsers and rejected by ``promtool check metrics``.
_RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_info")
# Labels a family must not use: the hub's own, the histogram/summary ones, and
# the two Prometheus attaches to every target (a clash renames them on scrape).
_RESERVED_LABELS = frozenset({"host", "le", "quantile", "job", "instance"})
_NOT_NAME = re.compile(r"[^a-z0-9_]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# Words ending in "s" that are singular already (or the same in the plural).
_SAME_IN_PLURAL = frozenset(
    {"series", "species", "news", "bytes", "status", "bonus", "campus", "census", "corpus"}
    | {"focus", "nexus", "radius", "virus", "consensus", "apparatus"}
)


@dataclass(frozen=True)
class _Unit:
    suffix: str
    scale: Fraction
    words: str  # the dimension's spellings, dropped from the last segment


# Words naming a dimension in a metric name; "|" separates spellings and "_"
# joins the words of one spelling (``per_second``).
_TIME = (
    "s|sec|secs|second|seconds|ms|msec|millis|millisecond|milliseconds|us|usec|micros|"
    "microsecond|microseconds|ns|nanosecond|nanoseconds|min|mins|minute|minutes|h|hr|hrs|"
    "hour|hours|d|day|days|week|weeks"
)
_BYTES = (
    "b|byte|bytes|kb|kib|mb|mib|gb|gib|tb|tib|pb|pib|kilobytes|kibibytes|megabytes|"
    "mebibytes|gigabytes|gibibytes|terabytes|tebibytes|bit|bits|kbit|kbits|mbit|mbits|"
    "gbit|gbits"
)
_PER_SECOND = "per_second|per_sec|per_s|ps|bps|kbps|mbps|gbps|per_minute|per_min|per_hour"
_RATIO = "percent|percents|percentage|pct|ratio|ratios|fraction"

F = Fraction
_ONE = Fraction(1)
_SECONDS = {
    "s": _ONE,
    "sec": _ONE,
    "secs": _ONE,
    "second": _ONE,
    "seconds": _ONE,
    "ms": F(1, 10**3),
    "millisecond": F(1, 10**3),
    "milliseconds": F(1, 10**3),
    "us": F(1, 10**6),
    "µs": F(1, 10**6),
    "μs": F(1, 10**6),
    "microseconds": F(1, 10**6),
    "ns": F(1, 10**9),
    "nanoseconds": F(1, 10**9),
    "min": F(60),
    "mins": F(60),
    "minute": F(60),
    "minutes": F(60),
    "h": F(3600),
    "hr": F(3600),
    "hour": F(3600),
    "hours": F(3600),
    "d": F(86400),
    "day": F(86400),
    "days": F(86400),
    "week": F(604800),
    "weeks": F(604800),
}
_BYTE_FACTORS = {
    "B": _ONE,
    "byte": _ONE,
    "bytes": _ONE,
    "kB": F(10**3),
    "KB": F(10**3),
    "MB": F(10**6),
    "GB": F(10**9),
    "TB": F(10**12),
    "PB": F(10**15),
    "KiB": F(2**10),
    "MiB": F(2**20),
    "GiB": F(2**30),
    "TiB": F(2**40),
    "PiB": F(2**50),
    "bit": F(1, 8),
    "bits": F(1, 8),
    "kbit": F(10**3, 8),
    "Kbit": F(10**3, 8),
    "Mbit": F(10**6, 8),
    "Gbit": F(10**9, 8),
}
_BIT_RATES = {
    "bps": F(1, 8),
    "kbps": F(10**3, 8),
    "Kbps": F(10**3, 8),
    "Mbps": F(10**6, 8),
    "Gbps": F(10**9, 8),
}
_SI = {
    "celsius": ("°C", "℃", "C", "degC", "celsius"),
    "kelvin": ("K", "kelvin"),
    "volts": ("V", "volt", "volts"),
    "amperes": ("A", "amp", "amps", "ampere", "amperes"),
    "watts": ("W", "watt", "watts"),
    "joules": ("J", "joule", "joules"),
    "hertz": ("Hz", "hertz"),
    # Not SI, but the name node_exporter and most dashboards use for fans.
    "rpm": ("RPM", "rpm"),
}
_SI_WORDS = {
    "celsius": "c|celsius|degc|degrees",
    "kelvin": "k|kelvin|kelvins",
    "volts": "v|volt|volts|mv|millivolts",
    "amperes": "a|amp|amps|ampere|amperes|ma|milliamperes",
    "watts": "w|watt|watts|mw|kw|milliwatts|kilowatts",
    "joules": "j|joule|joules|wh|kwh",
    "hertz": "hz|hertz|khz|mhz|ghz",
    "rpm": "rpm",
}
_SI_PREFIXED = {
    "mV": ("volts", F(1, 10**3)),
    "mA": ("amperes", F(1, 10**3)),
    "mW": ("watts", F(1, 10**3)),
    "kW": ("watts", F(10**3)),
    "Wh": ("joules", F(3600)),
    "kWh": ("joules", F(3600 * 10**3)),
    "kHz": ("hertz", F(10**3)),
    "MHz": ("hertz", F(10**6)),
    "GHz": ("hertz", F(10**9)),
}


def _unit_table() -> dict[str, _Unit]:
    table: dict[str, _Unit] = {}
    for spelling, factor in _SECONDS.items():
        table[spelling] = _Unit("seconds", factor, _TIME)
    for spelling, factor in _BYTE_FACTORS.items():
        table[spelling] = _Unit("bytes", factor, _BYTES)
        for per in ("/s", "ps"):
            table[spelling + per] = _Unit("bytes_per_second", factor, f"{_BYTES}|{_PER_SECOND}")
    for spelling, factor in _BIT_RATES.items():
        table[spelling] = _Unit("bytes_per_second", factor, f"{_BYTES}|{_PER_SECOND}")
    for suffix, spellings in _SI.items():
        for spelling in spellings:
            table[spelling] = _Unit(suffix, _ONE, _SI_WORDS[suffix])
    for spelling, (suffix, factor) in _SI_PREFIXED.items():
        table[spelling] = _Unit(suffix, factor, _SI_WORDS[suffix])
    for spelling in ("%", "percent", "pct"):
        table[spelling] = _Unit("ratio", F(1, 100), _RATIO)
    for spelling in ("ratio", "fraction"):
        table[spelling] = _Unit("ratio", _ONE, _RATIO)
    return table


_UNITS: Mapping[str, _Unit] = _unit_table()
_UNITS_FOLDED: Mapping[str, _Unit] = {
    spelling.casefold(): unit
    for spelling, unit in _UNITS.items()
    if len(spelling) > 2  # "mb" vs "Mb" or "ms" vs "Ms" only match as written
}
# Events per time unit ("1/s", "ops/s", "requests/min"): a rate without a base unit.
_RATE = re.compile(r"^(?P<what>[^/]*)/(?P<per>s|sec|second|min|minute|h|hour)$")
_PER = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def _unit(declared: str) -> _Unit | None:
    text = declared.strip()
    unit = _UNITS.get(text) or _UNITS_FOLDED.get(text.casefold())
    if unit is not None:
        return unit
    rate = _RATE.match(text)
    if rate and _unit(rate["what"]) is None:
        return _Unit("per_second", F(1, _PER[rate["per"]]), _PER_SECOND)
    return None


@dataclass(frozen=True)
class PrometheusSeries:
    """The Prometheus family of one declared metric.

    ``name`` is the family name as written on the ``# HELP`` and ``# TYPE``
    lines (and on every sample line: counters include ``_total``, info metrics
    ``_info``). ``labels`` starts with ``host``, then one label per ``*`` of the
    path. A declared value times ``scale`` is the exported one (:meth:`convert`).
    """

    metric: str
    name: str
    type: str  # "gauge", "counter" or "info" (written as a gauge with text labels)
    labels: tuple[str, ...]
    unit: str
    scale: Fraction
    help: str

    def convert(self, value: float) -> float:
        """The exported value of a declared ``value`` (``1500`` ms is ``1.5`` s)."""
        if self.scale == 1:
            return float(value)
        if not math.isfinite(value):
            return float(value) * float(self.scale)
        # Exact arithmetic, so 42.5 % is 0.425 and not 0.42500000000000004.
        return float(Fraction(value) * self.scale)

    def describe(self) -> str:
        """``name{label,...}``, as the author tooling shows it."""
        return f"{self.name}{{{','.join(self.labels)}}}"


def _snake(text: str) -> str:
    """``readBytes`` -> ``read_bytes``; anything outside ``[a-z0-9_]`` becomes ``_``."""
    return _NOT_NAME.sub("_", _CAMEL.sub("_", text).lower()).strip("_")


def _singular(name: str) -> str:
    """The last word of ``name`` in the singular: ``failed_units`` -> ``failed_unit``.

    Regular English plurals only, which is what item keys are in practice; the
    SDK stays free of a dependency for English grammar.
    """
    head, _, word = name.rpartition("_")
    # Three letters or fewer are mostly acronyms ("ups", "dns"), not plurals.
    if len(word) <= 3 or word in _SAME_IN_PLURAL or word.endswith(("ss", "is")):
        return name
    if word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "ches", "shes", "zzes", "uses", "iases")):
        word = word[:-2]
    elif word.endswith("s"):
        word = word[:-1]
    return f"{head}_{word}" if head else word


def _drop_words(segment: str, words: str) -> str:
    """``segment`` without the tokens that spell its unit (``latency_ms`` -> ``latency``)."""
    tokens = segment.split("_")
    spellings = sorted((w.split("_") for w in words.split("|")), key=len, reverse=True)
    kept: list[str] = []
    i = 0
    while i < len(tokens):
        for spelling in spellings:
            if tokens[i : i + len(spelling)] == spelling:
                i += len(spelling)
                break
        else:
            kept.append(tokens[i])
            i += 1
    return "_".join(kept)


def _label_names(path: tuple[str, ...], info: bool) -> tuple[str, ...]:
    taken = set(_RESERVED_LABELS) | ({"value"} if info else set())
    labels: list[str] = []
    for index, part in enumerate(path):
        if part != "*":
            continue
        before = path[index - 1] if index else "*"
        label = _singular(_snake(before)) if before != "*" else ""
        # A label name starts with a letter ("_1" would leave "1").
        label = label if label[:1].isalpha() else f"key_{label}".rstrip("_")
        if label in taken:
            label = f"{label}_name" if label in _RESERVED_LABELS or label == "value" else label
        candidate, n = label, 2
        while candidate in taken:
            candidate, n = f"{label}_{n}", n + 1
        taken.add(candidate)
        labels.append(candidate)
    return ("host", *labels)


@lru_cache(maxsize=8192)
def prometheus_series(plugin_id: str, field: MetricField) -> PrometheusSeries:
    """The Prometheus family the hub exports for ``field`` of plugin ``plugin_id``."""
    path = field.path
    named = [i for i, part in enumerate(path) if part != "*"]
    segments: list[str] = []
    for i in named:
        part = _snake(path[i])
        item = i + 1 < len(path) and path[i + 1] == "*" and any(j > i + 1 for j in named)
        segments.append(_singular(part) if item else part)
    unit = _unit(field.unit) if field.kind is not MetricKind.INFO else None
    if segments and unit is not None:
        segments[-1] = _drop_words(segments[-1], unit.words)
    if segments and field.kind is MetricKind.COUNTER:
        segments[-1] = _drop_words(segments[-1], "total")
    parts = [NAMESPACE, _snake(plugin_id), *segments]
    if unit is not None:
        parts.append(unit.suffix)
    name = re.sub(r"_+", "_", "_".join(p for p in parts if p))
    if field.kind is MetricKind.COUNTER:
        name += "_total"
    elif field.kind is MetricKind.INFO:
        name += "_info"
    elif name.endswith(_RESERVED_SUFFIXES):
        name += "_value"
    help_text = field.description or field.name
    shown_unit = unit.suffix.replace("_", " ") if unit else field.unit
    if shown_unit:
        help_text = f"{help_text} ({shown_unit})"
    return PrometheusSeries(
        metric=field.name,
        name=name,
        type=field.kind.value,
        labels=_label_names(path, field.kind is MetricKind.INFO),
        unit=unit.suffix if unit else "",
        scale=unit.scale if unit else _ONE,
        help=help_text,
    )


def prometheus_collisions(metadata: PluginMetadata) -> list[str]:
    """Problems with the Prometheus names of ``metadata``'s metrics (empty when fine).

    Two declared metrics that map to one family name would give the page two
    ``# HELP``/``# TYPE`` lines for that name (or one name with two types),
    which Prometheus refuses; the hub refuses such a plugin instead.
    """
    by_name: dict[str, list[PrometheusSeries]] = {}
    for field in metadata.metrics:
        series = prometheus_series(metadata.id, field)
        by_name.setdefault(series.name, []).append(series)
    problems = []
    for name, group in by_name.items():
        if len(group) > 1:
            metrics = " and ".join(f"{s.metric!r} ({s.type})" for s in group)
            problems.append(
                f"metrics {metrics} map to the same Prometheus name {name!r}; rename one of them"
            )
    return problems


def check_prometheus_names(metadata: PluginMetadata) -> None:
    """Raise ``MetadataError`` naming every Prometheus name collision of ``metadata``."""
    problems = prometheus_collisions(metadata)
    if problems:
        raise MetadataError(f"plugin {metadata.id!r}: {'; '.join(problems)}")


# What ``promtool check metrics`` lints in a name beyond the rule above: type
# names, abbreviated units and units other than the base ones.
_TYPE_WORDS = ("counter", "gauge", "histogram", "summary")
_ABBREVIATED = frozenset({"s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb"})
_ABBREVIATED |= {"m", "h", "d"}
_UNIT_BASE = {
    "amperes": "amperes",
    "bytes": "bytes",
    "celsius": "celsius",
    "grams": "grams",
    "joules": "joules",
    "kelvin": "kelvin",
    "meters": "meters",
    "metres": "metres",
    "seconds": "seconds",
    "volts": "volts",
    "minutes": "seconds",
    "hours": "seconds",
    "days": "seconds",
    "weeks": "seconds",
    "kelvins": "kelvin",
    "fahrenheit": "celsius",
    "rankine": "celsius",
    "inches": "meters",
    "yards": "meters",
    "miles": "meters",
    "bits": "bytes",
    "calories": "joules",
    "pounds": "grams",
    "ounces": "grams",
}
_UNIT_PREFIXES: tuple[str, ...] = ("pico", "nano", "micro", "milli", "centi", "deci", "deca")
_UNIT_PREFIXES += ("hecto", "kilo", "kibi", "mega", "mibi", "giga", "gibi", "tera", "tebi")
_UNIT_PREFIXES += ("peta", "pebi")


def prometheus_advice(series: PrometheusSeries) -> list[str]:
    """What ``promtool check metrics`` would warn about in ``series``'s name.

    The hub exports such a family all the same; ``unity author check`` shows
    this as advice so the author can pick a better metric name or unit.
    """
    tokens = series.name.split("_")[1:]
    advice = [f"contains the type name {word!r}" for word in _TYPE_WORDS if word in tokens]
    advice += [f"contains the abbreviated unit {t!r}" for t in tokens if t in _ABBREVIATED]
    for token in tokens:
        stem = next((token[len(p) :] for p in _UNIT_PREFIXES if token.startswith(p)), token)
        base = _UNIT_BASE.get(stem)
        if base is not None and token != base:
            advice.append(f"uses the unit {token!r} where Prometheus expects {base!r}")
    return advice
