"""The ``unity`` command: global options, ``serve``, and the command groups.

``serve`` and the ``db``/``token`` groups work on this machine's settings and
database; the ``plugins`` group talks to a running hub over HTTP, found with
the global ``--url`` and ``--token``, as do ``hosts`` and ``discover``.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from unity.cli import alerts, author, credentials, db, master_key, plugins, servers, tokens
from unity.cli.channels import channels_app
from unity.cli.hosts import discover_app, hosts_app
from unity.cli.root import new_app
from unity.cli.serve import serve

__all__ = ["app"]


app = new_app()
app.add_typer(db.app, name="db")
app.add_typer(tokens.app, name="token")
app.add_typer(plugins.app, name="plugins")
app.add_typer(hosts_app, name="hosts")
app.add_typer(discover_app, name="discover")
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


app.command()(serve)


if __name__ == "__main__":
    app()
