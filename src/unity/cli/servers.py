"""``unity servers``: the inventory of servers plugins collect from over SSH.

Works directly on the database and master key, like ``unity credentials``.
``check`` logs in and pins the host key on first contact; a changed key is
refused until ``accept-host-key``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from unity.cli.credentials import ACTOR, cli_source, run
from unity.cli.output import (
    JsonOption,
    console,
    error_console,
    load_settings,
    new_table,
    print_json,
)
from unity.credentials import (
    CredentialStore,
    HostKeyInfo,
    Inventory,
    KeyChange,
    ServerInput,
    SSHRunner,
    change_credential_key,
)
from unity.storage.models import Server

__all__ = ["app"]

app = typer.Typer(
    help="Servers the hub reaches over SSH (inventory, host keys).", no_args_is_help=True
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _server_dict(row: Server) -> dict[str, Any]:
    return {
        "name": row.name,
        "host": row.host,
        "port": row.port,
        "username": row.username,
        "credential": row.credential,
        "authorized_keys_file": row.authorized_keys_file,
        "host_key_fingerprint": row.host_key_fingerprint,
        "host_key_pinned_at": _iso(row.host_key_pinned_at),
        "pending_host_key_fingerprint": row.pending_host_key_fingerprint,
        "pending_seen_at": _iso(row.pending_seen_at),
        "created_at": _iso(row.created_at),
    }


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="A unique name; plugins' targets use it.")],
    credential: Annotated[
        str, typer.Option(help="A server_login, ssh_key or password credential.")
    ],
    host: Annotated[str | None, typer.Option(help="Default: the server_login's.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535)] = None,
    username: Annotated[str | None, typer.Option(help="Default: the credential's.")] = None,
    authorized_keys_file: Annotated[
        str, typer.Option(help="Relative to the home directory, or absolute; %u: the user.")
    ] = ".ssh/authorized_keys",
    as_json: JsonOption = False,
) -> None:
    """Add a server to the inventory (connect with `unity servers check NAME`)."""
    try:
        request = ServerInput(
            name=name,
            credential=credential,
            host=host,
            port=port,
            username=username,
            authorized_keys_file=authorized_keys_file,
        )
    except ValueError as exc:
        error_console().print(f"[bold red]Error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    row = run(lambda store: Inventory(store).add(request, actor=ACTOR, source=cli_source()))
    if as_json:
        print_json(_server_dict(row))
        return
    console().print(
        f"Added server {escape(row.name)!r}: {escape(row.username)}@{escape(row.host)}:{row.port}.",
        soft_wrap=True,
    )


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List servers and their pinned host keys."""
    rows = run(lambda store: Inventory(store).list_servers(limit=1_000_000))
    if as_json:
        print_json([_server_dict(row) for row in rows])
        return
    if not rows:
        error_console().print("No servers. Add one with `unity servers add`.")
        return
    table = new_table("NAME", "LOGIN", "CREDENTIAL", "HOST KEY", "PENDING")
    for row in rows:
        table.add_row(
            escape(row.name),
            escape(f"{row.username}@{row.host}:{row.port}"),
            escape(row.credential),
            row.host_key_fingerprint or "not pinned yet",
            row.pending_host_key_fingerprint or "-",
        )
    console().print(table)


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a server and its pinned host key (refused while a plugin's targets name it)."""
    if not yes:
        typer.confirm(f"Remove server {name!r} and its pinned host key?", abort=True)
    run(lambda store: Inventory(store).delete(name, actor=ACTOR, source=cli_source()))
    console().print(f"Removed server {escape(name)!r}.")


@app.command()
def check(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    as_json: JsonOption = False,
) -> None:
    """Log in now; on first contact pin the host key and show its fingerprint."""
    timeout = load_settings().ssh_connect_timeout

    async def work(store: CredentialStore) -> HostKeyInfo:
        inventory = Inventory(store)
        await inventory.get(name)
        runner = SSHRunner(
            inventory, name, actor=ACTOR, source=cli_source(), connect_timeout=timeout
        )
        try:
            return await runner.connect()
        finally:
            await runner.close()

    info = run(work)
    if as_json:
        print_json(
            {
                "server": info.server,
                "fingerprint": info.fingerprint,
                "algorithm": info.algorithm,
                "first_contact": info.first_contact,
            }
        )
        return
    if info.first_contact:
        console().print(
            f"First contact with {escape(name)!r}: pinned its {info.algorithm} host key\n"
            f"  {info.fingerprint}\nCompare it with the server's own "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).",
            soft_wrap=True,
        )
    else:
        console().print(f"Logged in to {escape(name)!r}; host key {info.fingerprint} matches.")


@app.command("accept-host-key")
def accept_host_key(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    fingerprint: Annotated[
        str | None, typer.Option(help="Accept only if the pending key has this fingerprint.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Trust the new host key a server offered (after a re-install, say)."""
    row = run(
        lambda store: Inventory(store).accept_host_key(
            name, actor=ACTOR, fingerprint=fingerprint, source=cli_source()
        )
    )
    if as_json:
        print_json(_server_dict(row))
        return
    console().print(f"Pinned {row.host_key_fingerprint} for {escape(name)!r}.", soft_wrap=True)


def _change(name: str, credential: str, *, install: bool, as_json: bool) -> None:
    timeout = load_settings().ssh_connect_timeout

    async def work(store: CredentialStore) -> KeyChange:
        return await change_credential_key(
            Inventory(store),
            server=name,
            credential=credential,
            install=install,
            actor=ACTOR,
            source=cli_source(),
            connect_timeout=timeout,
        )

    change = run(work)
    if as_json:
        print_json(
            {
                "server": name,
                "credential": credential,
                "path": change.path,
                "changed": change.changed,
                "backup": change.backup,
            }
        )
        return
    verb = "Installed" if install else "Removed"
    if not change.changed:
        state = "already there" if install else "not there"
        console().print(f"Key {credential!r} was {state} in {change.path}; nothing changed.")
        return
    console().print(
        f"{verb} key {credential!r} {'in' if install else 'from'} {name}:{change.path} "
        f"(backup: {change.backup or 'none, new file'}; verified).",
        soft_wrap=True,
    )


@app.command("install-key")
def install_key(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    credential: Annotated[str, typer.Argument(help="The ssh_key credential to authorize.")],
    as_json: JsonOption = False,
) -> None:
    """Add a stored SSH public key to the server's authorized_keys (backed up, verified)."""
    _change(name, credential, install=True, as_json=as_json)


@app.command("remove-key")
def remove_key(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    credential: Annotated[str, typer.Argument(help="The ssh_key credential to remove.")],
    as_json: JsonOption = False,
) -> None:
    """Remove exactly that key's line from authorized_keys; nothing else changes."""
    _change(name, credential, install=False, as_json=as_json)
