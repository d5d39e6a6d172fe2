"""How JSON columns are written and read: orjson, with the standard library as the rule.

The engine serializes every JSON column (documents, configs, metadata) with
:func:`dumps` and reads them back with :func:`loads`, on SQLite and
PostgreSQL alike. orjson does the work about ten times faster than ``json``;
whatever it would write differently or refuse -- integers beyond 64 bits,
keys that are not strings, lone surrogates, ``str``/``int`` subclasses,
``datetime`` and dataclasses (which ``json`` refuses), text holding ``NaN`` or
an integer orjson would read as a float (19 digits or more) -- goes to
``json`` instead, so what is stored and what is refused stay what
they were. The text differs only in spacing and escaping (orjson writes
compact UTF-8); it is the same JSON value.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

# Types json refuses (or writes as their base type) must reach json, not orjson.
_PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)

# orjson reads an integer outside [-2**63, 2**64) as a float; json keeps it exact.
_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def dumps(value: Any) -> str:
    """``value`` as JSON text."""
    try:
        return orjson.dumps(value, option=_PASSTHROUGH).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    """The value of JSON ``text``."""
    long_number = (
        _LONG_NUMBER.search(text) if isinstance(text, str) else _LONG_NUMBER_BYTES.search(text)
    )
    if long_number is not None:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
