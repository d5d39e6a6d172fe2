"""Command line: run an external plugin class against a hub.

``python -m unity_sdk.run mypkg.ups:Ups --hub http://hub:8000`` (or the
``unity-plugin`` console script). ``UNITY_HUB_URL`` and
``UNITY_ENROLLMENT_TOKEN`` give the defaults; prefer the variable for the
token, since arguments are visible to every user in the process list. A plain
``PluginBase`` subclass works too: it is run with ``ExternalPluginBase``'s loop.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from unity_sdk._external import ExternalPluginBase
from unity_sdk.plugin import PluginBase

__all__ = ["load_plugin_class", "main"]


def load_plugin_class(spec: str) -> type[ExternalPluginBase]:
    """Import ``module:Class``; a plain ``PluginBase`` gets the external run loop."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"{spec!r} is not module:Class")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {spec!r}: {exc}") from exc
    if not isinstance(cls, type) or not issubclass(cls, PluginBase):
        raise ValueError(f"{spec!r} is not a PluginBase subclass")
    if issubclass(cls, ExternalPluginBase):
        return cls
    return type(cls.__name__, (cls, ExternalPluginBase), {"__module__": cls.__module__})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="unity-plugin",
        description="Run a plugin class as an external plugin that reports to a hub.",
    )
    parser.add_argument("plugin", help="the plugin class, as module:Class")
    parser.add_argument(
        "--hub", default=os.environ.get("UNITY_HUB_URL"), help="hub URL [$UNITY_HUB_URL]"
    )
    parser.add_argument(
        "--enroll",
        metavar="TOKEN",
        default=os.environ.get("UNITY_ENROLLMENT_TOKEN"),
        help="enrollment token, needed for the first run only [$UNITY_ENROLLMENT_TOKEN]",
    )
    parser.add_argument("--state-dir", help="where the API key is kept [$UNITY_PLUGIN_STATE_DIR]")
    parser.add_argument("--hostname", help="host the samples describe (default: this host)")
    parser.add_argument("--buffer-size", type=int, default=10_000, help="samples kept offline")
    args = parser.parse_args(argv)
    if not args.hub:
        parser.error("--hub or UNITY_HUB_URL is required")
    try:
        cls = load_plugin_class(args.plugin)
    except ValueError as exc:
        parser.error(str(exc))
    return cls().run_forever(
        args.hub,
        enrollment_token=args.enroll,
        state_dir=args.state_dir,
        hostname=args.hostname,
        buffer_size=args.buffer_size,
    )


if __name__ == "__main__":
    sys.exit(main())
