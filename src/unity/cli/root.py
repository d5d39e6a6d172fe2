"""The root of the ``unity`` command: global options, and the entry point.

``unity serve`` runs for months, so its process should hold only the hub. The
entry point :func:`run` looks at which command was asked for: ``serve`` gets an
app with the global options and ``serve`` alone (typer, settings and the hub;
no rich tables, no HTTP client), every other command the full app of
:mod:`unity.cli.main`. Both share :func:`new_app`, so the options, help and
errors of ``serve`` are the same either way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import typer

from unity import __version__

__all__ = ["HubAccess", "command_of", "new_app", "run"]

# Global options that take a value: the word after them is not the command.
_VALUED_OPTIONS = frozenset({"--url", "--token"})


@dataclass(frozen=True)
class HubAccess:
    """Which hub to talk to and with what token: the global ``--url`` and ``--token``."""

    url: str | None = None
    token: str | None = None


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"unity {__version__}")
        raise typer.Exit()


def _global_options(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            envvar="UNITY_URL",
            help="The running hub, for `plugins` commands. "
            "Default: where `unity serve` listens (UNITY_HOST, UNITY_PORT).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="UNITY_TOKEN",
            help="A hub token for `plugins` commands (get one: `unity token create`).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Unity: a self-hosted homelab metrics hub with trivially easy plugins."""
    ctx.obj = HubAccess(url=url, token=token)


def new_app() -> typer.Typer:
    """The ``unity`` app with its global options and no commands yet."""
    app = typer.Typer(
        name="unity",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_global_options)
    return app


def command_of(args: Sequence[str]) -> str | None:
    """The command word of a ``unity`` command line (``serve`` in ``--url X serve``)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUED_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def run() -> None:
    """The ``unity`` console script."""
    if command_of(sys.argv[1:]) == "serve":
        from unity.cli.serve import serve

        app = new_app()
        app.command()(serve)
    else:
        from unity.cli.main import app
    app()
