"""``python -m benchmarks``: run the benchmarks and print one table per benchmark.

Progress goes to stderr while the benchmarks run; the tables and the machine
they ran on are printed at the end (and saved with ``--json FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy.engine import make_url

from benchmarks import (
    agent,
    agents_hub,
    alerts,
    collection,
    idle,
    ingest,
    metrics_query,
    misbehaving,
    rollups,
    scheduler,
    write_path,
)
from benchmarks.harness import DEFAULT_POSTGRES_URL, Context, Table, machine_info, postgres_version

BENCHMARKS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        scheduler,
        write_path,
        metrics_query,
        rollups,
        ingest,
        misbehaving,
        alerts,
        idle,
        collection,
        agent,
        agents_hub,
    )
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the hub's hot paths against baselines measured in the same run.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and short windows (a smoke test)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("UNITY_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        metavar="URL",
        help="PostgreSQL server to create a scratch database on; '' for SQLite only "
        "(default: $UNITY_BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save the results here")
    return parser.parse_args(argv)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN: no samples
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(console: Console, table: Table) -> None:
    printed = RichTable(title=table.title, title_justify="left")
    for index, column in enumerate(table.columns):
        textual = all(isinstance(row[index], str) for row in table.rows)
        printed.add_column(column, justify="left" if textual else "right")
    for row in table.rows:
        printed.add_row(*(_cell(value) for value in row))
    console.print(printed)
    for note in table.notes:
        console.print(f"  {note}", style="dim", highlight=False)
    console.print()


async def _postgres(url: str) -> tuple[str | None, str | None]:
    """(the server url, its version), or (None, None) when it cannot be used."""
    if not url:
        _progress("PostgreSQL: disabled by --postgres-url ''; running SQLite only")
        return None, None
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        version = await postgres_version(url)
    except Exception as exc:
        _progress(f"PostgreSQL at {shown} is unreachable ({type(exc).__name__}: {exc})")
        _progress("running SQLite only")
        return None, None
    _progress(f"PostgreSQL {version} at {shown}: each benchmark uses its own scratch database")
    return url, version


async def run(args: argparse.Namespace) -> int:
    postgres_url, postgres = await _postgres(args.postgres_url)
    machine = machine_info(postgres)
    ctx = Context(quick=args.quick, postgres_url=postgres_url, log=_progress)
    names = args.only or list(BENCHMARKS)
    results: dict[str, Any] = {}
    tables: list[Table] = []
    failed: list[str] = []
    for name in names:
        module = BENCHMARKS[name]
        _progress(f"{name}: {module.SUMMARY}")
        clock = time.perf_counter()
        try:
            produced: list[Table] = await module.run(ctx)
        except Exception:
            failed.append(name)
            _progress(f"{name}: FAILED\n{traceback.format_exc()}")
            results[name] = {"error": traceback.format_exc()}
            continue
        _progress(f"{name}: done in {time.perf_counter() - clock:.0f} s")
        tables.extend(produced)
        results[name] = [table.as_json() for table in produced]
    load = os.getloadavg()
    machine["load_average_at_end"] = f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"

    console = Console(width=max(Console().width, 110))
    console.print()
    for table in tables:
        render(console, table)
    render(console, Table("machine", ["", "value"], [[k, str(v)] for k, v in machine.items()]))
    if failed:
        console.print(f"FAILED: {', '.join(failed)}", style="bold red")
    if args.json:
        document = {"quick": args.quick, "machine": machine, "benchmarks": results}
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
        console.print(f"results saved to {args.json}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        _progress("interrupted; scratch databases were dropped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
