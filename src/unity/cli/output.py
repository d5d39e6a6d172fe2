"""What the commands print: rich tables for people, JSON for scripts, errors on stderr.

Only data goes to stdout: with ``--json`` stdout holds exactly one JSON
document, so ``unity ... --json | jq`` always works. Errors and warnings go to
stderr; an error ends the command with exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from unity.settings import Settings
from unity_sdk import error_lines

__all__ = [
    "JsonOption",
    "console",
    "error_console",
    "fail",
    "format_interval",
    "load_settings",
    "new_table",
    "print_json",
    "relative_time",
    "warn",
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of a table.")
]


def console() -> Console:
    """Where data for people goes (stdout). Built per call so it follows redirection."""
    return Console(highlight=False)


def error_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """``data`` as one indented JSON document on stdout."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str, details: Iterable[str] = ()) -> NoReturn:
    """Print ``Error: message`` (and one indented line per detail) to stderr; exit 1."""
    err = error_console()
    err.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)
    for line in details:
        err.print(f"  {escape(line)}", soft_wrap=True)
    raise typer.Exit(1)


def warn(message: str) -> None:
    error_console().print(f"[bold yellow]Warning:[/] {escape(message)}", soft_wrap=True)


def load_settings(**overrides: Any) -> Settings:
    """The hub's settings from ``UNITY_*`` and the config file; a bad value is a CLI error."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        fail(
            "the hub's settings are invalid (UNITY_* variables or the config file)",
            error_lines(exc),
        )


def new_table(*columns: str, title: str | None = None) -> Table:
    """A plain table; the first column (an id) never wraps."""
    table = Table(
        box=box.SIMPLE_HEAD, title=title, title_justify="left", show_edge=False, pad_edge=False
    )
    for index, name in enumerate(columns):
        table.add_column(name, no_wrap=index == 0)
    return table


def _parse_time(value: str | datetime) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{round(seconds / size)}{unit}"
    return f"{int(seconds)}s"


def relative_time(
    value: str | datetime | None, *, empty: str = "-", now: datetime | None = None
) -> str:
    """``12s ago`` or ``in 3d`` for an ISO timestamp; ``empty`` when there is none."""
    if value is None:
        return empty
    seconds = ((now or datetime.now(UTC)) - _parse_time(value)).total_seconds()
    if abs(seconds) < 1:
        return "just now"
    return f"{_span(seconds)} ago" if seconds > 0 else f"in {_span(-seconds)}"


def format_interval(seconds: float | None) -> str:
    """``30s``, ``5m``, ``90s``, ``2h``: the largest unit that divides evenly."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
