"""The Jinja2 environment of the dashboard and its formatting filters.

Jinja2 is imported, and the environment built, on the first page rendered: a hub
nobody looks at never loads it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from unity import __version__
from unity.storage.types import utcnow

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates
    from jinja2 import Environment

__all__ = ["format_fact", "format_value", "templates"]

_BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def ago(value: datetime | None) -> str:
    """``12 s ago``, ``3 min ago``, ``in 2 h``; ``never`` for None."""
    if value is None:
        return "never"
    seconds = (utcnow() - _aware(value)).total_seconds()
    future = seconds < -1
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 86400 * 2:
        text = f"{seconds / 3600:.0f} h"
    else:
        text = f"{seconds / 86400:.0f} d"
    return f"in {text}" if future else f"{text} ago"


def iso(value: datetime | None) -> str:
    return _aware(value).isoformat(timespec="seconds") if value else ""


def stamp(value: datetime | None) -> str:
    """An absolute UTC time for tables and tooltips."""
    return _aware(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def seconds(value: float | None) -> str:
    """An interval: ``1 s``, ``30 s``, ``5 min``, ``2 h``."""
    if value is None:
        return "—"
    if value < 120:
        return f"{value:g} s"
    if value < 7200:
        return f"{value / 60:g} min"
    return f"{value / 3600:g} h"


def format_value(value: Any, unit: str = "") -> str:
    """A metric value for people: bytes in binary units, seconds as durations."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    if unit == "bytes":
        size, index = float(value), 0
        while abs(size) >= 1024 and index < len(_BYTE_UNITS) - 1:
            size, index = size / 1024, index + 1
        return f"{size:.1f} {_BYTE_UNITS[index]}" if index else f"{size:.0f} B"
    if unit == "s" and value >= 120:
        return duration(value * 1000) if value < 7200 else f"{value / 3600:.1f} h"
    text = f"{value:.1f}" if isinstance(value, float) and abs(value) < 1000 else f"{value:,.0f}"
    if unit in ("%", "°C"):
        return f"{text}{'' if unit == '%' else ' '}{unit}"
    return f"{text} {unit}".strip() if unit not in ("count", "") else text


# Any "s" value past this is a moment (Unix time), not a length of time: 2001-09-09.
_UNIX_TIME_FROM = 1_000_000_000


def format_fact(value: Any, unit: str = "") -> str:
    """A fact's latest value: booleans as yes/no, Unix times as dates, versions verbatim."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if unit == "s" and value >= _UNIX_TIME_FROM:
            return stamp(datetime.fromtimestamp(value, UTC))
        if unit == "version":
            return str(int(value)) if float(value).is_integer() else str(value)
    return format_value(value, unit)


@cache
def static_url(path: str) -> str:
    """``/static/<path>?v=<content hash>``: cacheable forever, new with every change."""
    content = resources.files("unity.web").joinpath("static", path).read_bytes()
    return f"/static/{path}?v={hashlib.sha256(content).hexdigest()[:10]}"


def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("unity.web", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=ago,
        iso=iso,
        stamp=stamp,
        duration=duration,
        seconds=seconds,
        value=format_value,
    )
    env.globals.update(static_url=static_url, version=__version__)
    return env


@cache
def templates() -> Jinja2Templates:
    """The dashboard's templates, built on first use."""
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(env=_environment())
