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

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "json_numbers_storable",
    "number_problems",
    "require_storable_numbers",
    "storable",
]

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


# Every digit read as "0" and "E" as "e", so one search finds a digit run or an
# exponent of any kind; signs are dropped (``1e-400`` reads ``0e000``).
_NUMBER_SHAPES = bytes(
    0x30 if 0x30 <= code <= 0x39 else 0x65 if code == 0x45 else code for code in range(256)
)
_LONG_DIGIT_RUN = b"0" * 19
_BIG_EXPONENT = b"0e000"
# What may follow a JSON number: the end of its container, a comma, whitespace.
_AFTER_NUMBER = frozenset(b",}] \t\r\n")


def json_numbers_storable(body: bytes) -> bool:
    """True when every number literal in the JSON text ``body`` is surely storable.

    A cheap scan of the raw text, conservative: False whenever it cannot tell
    (then walk the parsed value with :func:`number_problems`). The parser
    makes a number that cannot be stored only from ``NaN``, ``Infinity``, an
    integer of 19 digits or more, or a float beyond 1.8e308, which needs 309
    digits or an exponent of at least three: without any of those every
    integer fits 64 bits and every float is finite (18 digits times 1e99 is
    about 1e117). Text inside strings can only make the answer False.
    """
    # One byte first: memchr, where a three-byte search is not.
    if b"N" in body and b"NaN" in body:
        return False
    if b"I" in body and b"Infinity" in body:
        return False
    shapes = body.translate(_NUMBER_SHAPES, b"+-")
    if _LONG_DIGIT_RUN in shapes:
        return False
    end = len(shapes)
    at = shapes.find(_BIG_EXPONENT)
    while at >= 0:
        # A number's exponent ends at a delimiter; hex text such as "8e078f" does not.
        after = at + len(_BIG_EXPONENT)
        while after < end and shapes[after] == 0x30:
            after += 1
        if after == end or shapes[after] in _AFTER_NUMBER:
            return False
        at = shapes.find(_BIG_EXPONENT, after)
    return True
