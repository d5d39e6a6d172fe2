"""Reading declared metrics out of a collected document, and encoding it.

Shared by the hub (``/metrics``, charts, storage) and the test harness, so a
plugin's declaration and document are read the same way everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from unity_sdk._numbers import INT_MAX, INT_MIN, number_problems, storable
from unity_sdk.errors import DocumentTooLargeError
from unity_sdk.metadata import MetricField, PluginMetadata

__all__ = [
    "DEFAULT_MAX_DOCUMENT_BYTES",
    "check_document",
    "document_checker",
    "encode_document",
    "iter_metric_values",
    "undeclared_numbers",
]

# The hub's default limit (UNITY_MAX_DOCUMENT_BYTES) of one collected document.
DEFAULT_MAX_DOCUMENT_BYTES = 1024 * 1024


def encode_document(document: Any, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> str:
    """``document`` as the JSON text the hub stores; at most ``max_bytes`` bytes.

    Raises ``TypeError`` when it is not a dict or not JSON (NaN, infinity) and
    :class:`DocumentTooLargeError` when it is larger than ``max_bytes``.
    Non-JSON values (datetimes...) become strings.
    """
    if not isinstance(document, dict):
        raise TypeError(f"collect_data returned {type(document).__name__}, expected a dict")
    try:
        # ASCII output (ensure_ascii): one byte per character.
        text = json.dumps(document, allow_nan=False, default=str)
    except ValueError as exc:
        raise TypeError(f"collect_data returned a document that is not JSON: {exc}") from exc
    if len(text) > max_bytes:
        raise DocumentTooLargeError(
            f"the document is larger than the {max_bytes:,}-byte limit "
            f"({len(text):,} bytes; UNITY_MAX_DOCUMENT_BYTES); nothing of this run was stored"
        )
    return text


def iter_metric_values(
    field: MetricField, document: Mapping[str, Any]
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield ``(keys, value)`` for every value the field's path reaches.

    ``keys`` holds what each ``*`` segment matched, so ``disks.*.percent`` on
    ``{"disks": {"sda": {"percent": 3}}}`` yields ``(("sda",), 3)``.
    """

    def walk(node: Any, path: tuple[str, ...], keys: tuple[str, ...]) -> Iterator[Any]:
        if not path:
            yield keys, node
            return
        head, rest = path[0], path[1:]
        if head == "*":
            if isinstance(node, Mapping):
                for key, child in node.items():
                    yield from walk(child, rest, (*keys, str(key)))
            elif isinstance(node, list):
                for index, child in enumerate(node):
                    yield from walk(child, rest, (*keys, str(index)))
        elif isinstance(node, Mapping) and head in node:
            yield from walk(node[head], rest, keys)

    yield from walk(document, field.path, ())


def _is_number(value: Any) -> bool:
    # Exact types first (what a JSON parser makes); subclasses (bool is not a number) after.
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        number: int = value
        return INT_MIN <= number <= INT_MAX
    return isinstance(value, int | float) and not isinstance(value, bool) and storable(value)


_MISSING: Any = object()


def _lookup(document: Any, path: tuple[str, ...]) -> Any:
    """The one value a plain path (no ``*``) reaches in ``document``, else ``_MISSING``."""
    node = document
    for head in path:
        if type(node) is dict:
            node = node.get(head, _MISSING)
            if node is _MISSING:
                return _MISSING
        elif isinstance(node, Mapping) and head in node:
            node = node[head]
        else:
            return _MISSING
    return node


def _not_a_number(field: MetricField, keys: tuple[str, ...], value: Any) -> str:
    where = f"{field.name}[{','.join(keys)}]" if keys else field.name
    return f"metric {where!r} is declared {field.kind.value} but the value is {value!r}"


def check_document(
    metadata: PluginMetadata,
    document: Any,
    *,
    require_all: bool = True,
    numbers_checked: bool = False,
) -> list[str]:
    """Problems with ``document`` against the declared metrics (empty when fine).

    Numeric kinds (gauge, counter) must be finite numbers; with
    ``require_all`` every declared path without ``*`` must be present. Any
    number, declared or not, must be storable (:mod:`unity_sdk._numbers`);
    ``numbers_checked`` says that was checked already (the wire models do).
    """
    return document_checker(metadata, require_all=require_all, numbers_checked=numbers_checked)(
        document
    )


def document_checker(
    metadata: PluginMetadata, *, require_all: bool = True, numbers_checked: bool = False
) -> Callable[[Any], list[str]]:
    """:func:`check_document` for many documents of one plugin: the declared
    fields are read once."""
    fields = [(field, field.path, field.numeric) for field in metadata.metrics]
    # A declared gauge or counter gets its own message below.
    declared = [path for _, path, numeric in fields if numeric]

    # What the loop below visits: a non-numeric field reports only when missing.
    # A plain path (no ``*``) is looked up directly, a wildcard one walked.
    visited = [
        (field, path, numeric, "*" not in path)
        for field, path, numeric in fields
        if numeric or (require_all and "*" not in path)
    ]

    def check(document: Any) -> list[str]:
        if not isinstance(document, (dict, Mapping)):
            return [f"collect_data returned {type(document).__name__}, expected a dict"]
        problems: list[str] = []
        if not numbers_checked:
            problems = [
                f"value at {'.'.join(path)!r} cannot be stored: {problem}"
                for path, problem in number_problems(document)
                if not _covered(declared, path)
            ]
        for field, path, numeric, plain in visited:
            if plain:
                # _lookup and _is_number inlined for the common case: dicts, a
                # float or an int at the end (this loop runs per field per sample).
                node: Any = document
                for head in path:
                    if type(node) is dict:
                        node = node.get(head, _MISSING)
                        if node is _MISSING:
                            break
                    else:
                        node = _lookup(node, (head,))
                        if node is _MISSING:
                            break
                kind = type(node)
                if kind is float:
                    if numeric and not math.isfinite(node):
                        problems.append(_not_a_number(field, (), node))
                elif kind is int:
                    if numeric and not INT_MIN <= node <= INT_MAX:
                        problems.append(_not_a_number(field, (), node))
                elif node is _MISSING:
                    if require_all:
                        problems.append(
                            f"declared metric {field.name!r} is missing from the document"
                        )
                elif numeric and not _is_number(node):
                    problems.append(_not_a_number(field, (), node))
                continue
            for keys, value in iter_metric_values(field, document):
                if numeric and not _is_number(value):
                    problems.append(_not_a_number(field, keys, value))
        return problems

    return check


def _numeric_leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, Mapping):
        for key, child in node.items():
            yield from _numeric_leaves(child, (*path, str(key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _numeric_leaves(child, (*path, str(index)))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path


def _covered(patterns: list[tuple[str, ...]], path: tuple[str, ...]) -> bool:
    return any(
        len(pattern) == len(path)
        and all(want in ("*", got) for want, got in zip(pattern, path, strict=True))
        for pattern in patterns
    )


def undeclared_numbers(metadata: PluginMetadata, document: Mapping[str, Any]) -> list[str]:
    """Paths (``a/b/0``) of numbers in ``document`` that no declared metric covers.

    A number nobody declared has no unit, no chart and no Prometheus series;
    the author tooling reports these so every number gets a declaration.
    """
    declared = [field.path for field in metadata.metrics]
    return ["/".join(path) for path in _numeric_leaves(document) if not _covered(declared, path)]
