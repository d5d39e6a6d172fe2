"""The ``unity`` command: global options, ``serve``, and the command groups.

``serve`` and the ``db``/``token`` groups work on this machine's settings and
database; the ``plugins`` group talks to a running hub over HTTP, found with
the global ``--url`` and ``--token``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from unity import __version__
from unity.cli import alerts, author, credentials, db, master_key, plugins, servers, tokens
from unity.cli.channels import channels_app
from unity.cli.client import HubAccess
from unity.cli.output import fail, load_settings

__all__ = ["app"]


app = typer.Typer(
    name="unity",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db.app, name="db")
app.add_typer(tokens.app, name="token")
app.add_typer(plugins.app, name="plugins")
app.add_typer(author.app, name="author")
credentials.app.command("rotate-master-key")(master_key.rotate_master_key)
app.add_typer(credentials.app, name="credentials")
app.add_typer(servers.app, name="servers")
alerts.app.add_typer(channels_app, name="channels")
app.add_typer(alerts.app, name="alerts")


def _renamed(old: str, new: str) -> Callable[[], None]:
    """A group callback printing one line: ``old`` still works, under its new name."""

    def notice() -> None:
        typer.echo(f"`unity {old}` is now `unity {new}`; the old name will go away.", err=True)

    return notice


# Old spellings keep working for scripts: hidden from --help, with a notice.
app.add_typer(author.app, name="plugin", hidden=True, callback=_renamed("plugin", "author"))


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"unity {__version__}")
        raise typer.Exit()


@app.callback()
def main(
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


def _log_level(name: str) -> int:
    level = logging.getLevelNamesMapping().get(name.upper())
    if level is None:
        fail(f"UNITY_LOG_LEVEL {name!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
    return level


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on. Default: UNITY_HOST, else 127.0.0.1.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port to listen on. Default: UNITY_PORT, else 8765."),
    ] = None,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload", help="Hot-reload plugins when their source files change (development)."
        ),
    ] = False,
    isolate: Annotated[
        list[str] | None,
        typer.Option(
            "--isolate",
            metavar="PLUGIN_ID",
            help="Run this plugin in process isolation (repeatable; adds to "
            "UNITY_PROCESS_ISOLATION).",
        ),
    ] = None,
) -> None:
    """Run the hub: API, scheduler and plugins, until Ctrl-C or SIGTERM.

    Stopping takes at most UNITY_SHUTDOWN_GRACE_SECONDS (default 10).
    """
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if reload:
        overrides["dev_mode"] = True
    settings = load_settings(**overrides)
    if isolate:
        extra = [plugin_id for plugin_id in isolate if plugin_id not in settings.process_isolation]
        settings = settings.model_copy(
            update={"process_isolation": [*settings.process_isolation, *extra]}
        )
    level = _log_level(settings.log_level)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        force=True,
    )
    # Imported here so the other commands start without loading the web stack.
    from unity import server
    from unity.app import create_app

    if not server.run(create_app(settings), settings, level):
        sys.exit(3)


if __name__ == "__main__":
    app()
