"""The one rule for numbers a plugin hands the hub: what JSON allows but storage cannot hold.

JSON puts no bound on a number, and Python's parser turns ``1e309`` into
``inf`` and a 400-digit literal into an exact integer. The hub cannot keep
either: every number is read back as a double (charts, ``/metrics``) and
PostgreSQL compares and casts integers as BIGINT. So a number crossing the
wire must be a finite double or an integer of at most 64 bits (signed).

The wire models (:mod:`unity_sdk._wire`) apply this rule to sample data,
health details and registration metadata, :func:`unity_sdk.check_document`
to collected documents, and the hub runs the same models -- one rule on
both sides, refused with 422 naming the sample and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["INT_MAX", "INT_MIN", "number_problems", "require_storable_numbers", "storable"]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

T = TypeVar("T")

# How many problems one error message lists; the rest are counted.
_LISTED = 5


def _describe(value: int | float) -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if INT_MIN <= value <= INT_MAX:
        return None
    return f"an integer of {len(str(abs(value)))} digits is beyond 64 bits"


def storable(value: int | float) -> bool:
    """Whether the number ``value`` can be stored (see the module docstring)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return INT_MIN <= value <= INT_MAX


def _all_storable(value: Any) -> bool:
    # The common case, every number fine, without building a path per node;
    # exact types first (what a JSON parser makes), subclasses after.
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            stack.extend(node.values())
        elif kind is str or kind is bool or node is None:
            continue
        elif kind is float:
            if not math.isfinite(node):
                return False
        elif kind is int:
            if not INT_MIN <= node <= INT_MAX:
                return False
        elif kind is list:
            stack.extend(node)
        elif isinstance(node, int | float):
            if not storable(node):
                return False
        elif isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return True


def number_problems(value: Any) -> list[tuple[tuple[str, ...], str]]:
    """``(path, problem)`` for each number in ``value`` the hub cannot store.

    ``path`` holds the keys and list indexes down to the number, as strings.
    The walk is iterative: nesting depth is bounded by the JSON parser, not here.
    """
    if _all_storable(value):
        return []
    problems: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, Mapping):
            stack.extend(((*path, str(k)), child) for k, child in reversed(list(node.items())))
        elif isinstance(node, list | tuple):
            stack.extend(((*path, str(i)), child) for i, child in reversed(list(enumerate(node))))
        elif isinstance(node, int | float) and not isinstance(node, bool):
            problem = _describe(node)
            if problem is not None:
                problems.append((path, problem))
    return problems


def require_storable_numbers(value: T, *, name: str) -> T:
    """``value`` unchanged, or ``ValueError`` naming every field (``name.a.b``) at fault.

    Meant for pydantic validators, so the error lands at the field's ``loc``
    (``samples``, index, ``data``) with the inner path in the message.
    """
    problems = number_problems(value)
    if not problems:
        return value
    listed = [f"{'.'.join((name, *path))}: {problem}" for path, problem in problems[:_LISTED]]
    if len(problems) > _LISTED:
        listed.append(f"and {len(problems) - _LISTED} more")
    raise ValueError("numbers must be finite doubles or 64-bit integers; " + "; ".join(listed))
