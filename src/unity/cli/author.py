"""``unity author``: author tooling -- scaffold, check and run a plugin once."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from unity.authoring.check import check, run_once
from unity.authoring.scaffold import ScaffoldError, create_package
from unity.authoring.source import SourceError, find_plugins
from unity.cli.output import JsonOption, console, error_console, fail, new_table, print_json

__all__ = ["app"]

app = typer.Typer(help="Write plugins: scaffold, check and run them.", no_args_is_help=True)

PathArg = Annotated[
    str,
    typer.Argument(metavar="PATH", help="A plugin package folder, a .py file, or file.py:Class"),
]


@app.command()
def new(
    plugin_id: Annotated[str, typer.Argument(metavar="ID", help="The plugin id, e.g. nas-temp.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to create the package folder.")
    ] = Path("."),
) -> None:
    """Create a plugin package: pyproject with the entry point, the class and a test."""
    try:
        root = create_package(directory, plugin_id)
    except ScaffoldError as exc:
        fail(str(exc))
    console().print(
        f"Created {escape(str(root))}\n"
        f"  cd {escape(str(root))} && pip install -e {escape(repr('.[test]'))} && pytest\n"
        f"  unity author check {escape(str(root))}",
        soft_wrap=True,
    )


def _load(path: str) -> list[Any]:
    try:
        return find_plugins(path)
    except SourceError as exc:
        fail(str(exc))


@app.command("check")
def check_command(path: PathArg, as_json: JsonOption = False) -> None:
    """Validate metadata, config schema and declared metrics as the hub's loader does,
    and show the Prometheus family each metric gets on the hub's /metrics."""
    reports = [check(candidate) for candidate in _load(path)]
    if as_json:
        print_json(
            [
                {
                    "plugin": r.name,
                    "ok": r.ok,
                    "problems": r.problems,
                    "advice": r.advice,
                    "prometheus": r.prometheus,
                }
                for r in reports
            ]
        )
    else:
        out, err = console(), error_console()
        for report in reports:
            if report.ok and report.metadata is not None:
                meta = report.metadata
                out.print(
                    f"[green]ok[/] {escape(meta.id)} {escape(meta.version)} ({meta.category})"
                )
                table = new_table("METRIC", "UNIT", "KIND", "PROMETHEUS", "DESCRIPTION")
                for metric in meta.metrics:
                    table.add_row(
                        metric.name,
                        metric.unit,
                        metric.kind.value,
                        report.prometheus[metric.name],
                        metric.description,
                    )
                if meta.metrics:
                    out.print(table)
            for problem in report.problems:
                err.print(f"[red]error[/] {escape(report.name)}: {escape(problem)}", soft_wrap=True)
            for advice in report.advice:
                err.print(f"[yellow]advice[/] {escape(report.name)}: {escape(advice)}")
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


def _read_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        fail(f"cannot read config {path}: {exc}")
    if not isinstance(data, dict):
        fail(f"config {path} must hold an object")
    return data


@app.command("run")
def run_command(
    path: PathArg,
    config: Annotated[
        Path | None, typer.Option("--config", help="A JSON or TOML file with the plugin's config.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Collect once, print the document and check it against the declared metrics."""
    candidates = _load(path)
    if len(candidates) > 1:
        names = ", ".join(c.entry_point or c.cls.__name__ for c in candidates)
        fail(f"{path} holds several plugins ({names}); pick one with file.py:Class")
    settings = _read_config(config)
    try:
        report = asyncio.run(run_once(candidates[0].cls, settings))
    except Exception as exc:
        fail(f"the plugin is not valid: {type(exc).__name__}: {exc}")
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "document": report.document,
                "problems": report.problems,
                "warnings": report.warnings,
                "duration_ms": report.duration_ms,
            }
        )
    else:
        if report.document is not None:
            console().print_json(data=report.document)
        for problem in report.problems:
            error_console().print(f"[red]error[/] {escape(problem)}", soft_wrap=True)
        for warning in report.warnings:
            error_console().print(f"[yellow]warning[/] {escape(warning)}", soft_wrap=True)
        if report.ok:
            error_console().print(f"[green]ok[/] collected in {report.duration_ms:.1f} ms")
    if not report.ok:
        raise typer.Exit(1)
