"""``unity serve``: run the hub.

Imported on its own by :func:`unity.cli.root.run`, so this module loads only
what serving needs; the rich output helpers are imported only to report an
error.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from unity.settings import Settings

__all__ = ["serve"]


def _fail(message: str, details: list[str] | None = None) -> NoReturn:
    from unity.cli.output import fail

    fail(message, details or [])


def _load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError:
        # The CLI's own helper words the error; it exits.
        from unity.cli.output import load_settings

        load_settings(**overrides)
        raise


def _log_level(name: str) -> int:
    level = logging.getLevelNamesMapping().get(name.upper())
    if level is None:
        _fail(f"UNITY_LOG_LEVEL {name!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
    return level


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
    settings = _load_settings(**overrides)
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
