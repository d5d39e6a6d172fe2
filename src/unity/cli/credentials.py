"""``unity credentials``: the encrypted credentials store, directly in the database.

Like ``unity token``, these work without a running hub, on the database and
master key the settings name. Secrets are read from a hidden prompt or
stdin (``--secret-stdin``), never from the command line, and only
``reveal`` prints one (audited, actor ``cli``).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import TypeAdapter, ValidationError
from rich.markup import escape

from unity.cli.db import migrated_database
from unity.cli.output import (
    JsonOption,
    console,
    error_console,
    fail,
    load_settings,
    new_table,
    print_json,
    relative_time,
)
from unity.credentials import CredentialError, CredentialInput, CredentialStore, load_keyring
from unity.storage.models import Credential, CredentialAudit
from unity_sdk import error_lines

__all__ = ["ACTOR", "app", "cli_source", "credential_dict", "open_store", "run"]

app = typer.Typer(
    help="Encrypted credentials: passwords, API tokens, SSH keys, TLS certificates, server logins.",
    no_args_is_help=True,
)

ACTOR = "cli"
T = TypeVar("T")
_INPUT: TypeAdapter[CredentialInput] = TypeAdapter(CredentialInput)


class Kind(StrEnum):
    PASSWORD = "password"
    API_TOKEN = "api_token"
    SSH_KEY = "ssh_key"
    TLS_CERTIFICATE = "tls_certificate"
    SERVER_LOGIN = "server_login"


def cli_source() -> str:
    """Where a CLI action came from, for the audit log: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@asynccontextmanager
async def open_store() -> AsyncIterator[CredentialStore]:
    """The store on the settings' database and master key; key problems exit 1."""
    settings = load_settings()
    try:
        keyring = load_keyring(settings)
    except CredentialError as exc:
        fail(str(exc))
    async with migrated_database() as db:
        yield CredentialStore(db, keyring)


def run(work: Callable[[CredentialStore], Awaitable[T]]) -> T:
    """Run ``work`` on the store; credentials errors become ``Error: ...``, exit 1."""

    async def main() -> T:
        async with open_store() as store:
            try:
                return await work(store)
            except CredentialError as exc:
                fail(str(exc))

    return asyncio.run(main())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def credential_dict(row: Credential) -> dict[str, Any]:
    """A credential for ``--json``: public facts only."""
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "public": row.public,
        "expires_at": _iso(row.expires_at),
        "key_id": row.key_id,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "rotated_at": _iso(row.rotated_at),
    }


def _summary(row: Credential) -> str:
    public = row.public
    if row.kind in ("ssh_key",) or public.get("auth") == "key":
        return str(public.get("fingerprint", ""))
    if row.kind == "tls_certificate":
        return str(public.get("subject", ""))
    if row.kind == "server_login":
        return f"{public.get('username')}@{public.get('host')}:{public.get('port')}"
    return str(public.get("username", ""))


def _read_secret(label: str, from_stdin: bool) -> str:
    if from_stdin:
        value = sys.stdin.read().rstrip("\r\n")
    else:
        value = typer.prompt(label, hide_input=True, confirmation_prompt=True)
    if not value:
        fail(f"{label.lower()} is empty")
    return value


def _read_file(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        fail(f"cannot read the {what} {path}: {exc.strerror or type(exc).__name__}")
    except UnicodeDecodeError:
        fail(f"the {what} {path} is not text (PEM or OpenSSH format expected)")


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="A unique name (letters, digits, . _ -).")],
    kind: Annotated[Kind, typer.Option("--kind", "-k", help="What kind of secret.")],
    username: Annotated[
        str | None, typer.Option(help="User name (password, server_login).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="server_login: the server's address.")] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="server_login: SSH port.")] = 22,
    generate: Annotated[
        bool, typer.Option("--generate", help="ssh_key: generate a new ed25519 key pair.")
    ] = False,
    key_file: Annotated[
        Path | None,
        typer.Option(
            help="ssh_key, server_login: an OpenSSH/PEM private key file; "
            "tls_certificate: the certificate's PEM private key."
        ),
    ] = None,
    cert_file: Annotated[
        Path | None, typer.Option(help="tls_certificate: the PEM certificate (chain).")
    ] = None,
    ask_passphrase: Annotated[
        bool, typer.Option("--ask-passphrase", help="The key file is encrypted: prompt for it.")
    ] = False,
    secret_stdin: Annotated[
        bool,
        typer.Option("--secret-stdin", help="Read the password or token from stdin, not a prompt."),
    ] = False,
    comment: Annotated[str | None, typer.Option(help="ssh_key: the key's comment.")] = None,
    expires: Annotated[
        datetime | None, typer.Option(help="When the secret expires (certificates: read from it).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Store a credential. Secrets come from a hidden prompt, stdin or a file."""
    fields: dict[str, Any] = {"kind": kind.value, "name": name}
    if expires is not None:
        fields["expires_at"] = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    passphrase = typer.prompt("Passphrase", hide_input=True) if ask_passphrase else None
    if passphrase:
        fields["passphrase"] = passphrase
    if kind is Kind.PASSWORD:
        fields.update(password=_read_secret("Password", secret_stdin), username=username)
    elif kind is Kind.API_TOKEN:
        fields["token"] = _read_secret("Token", secret_stdin)
    elif kind is Kind.SSH_KEY:
        fields.update(generate=generate, comment=comment)
        if key_file is not None:
            fields["private_key"] = _read_file(key_file, "key file")
    elif kind is Kind.TLS_CERTIFICATE:
        if cert_file is None or key_file is None:
            fail("a tls_certificate needs --cert-file and --key-file")
        fields.update(
            certificate=_read_file(cert_file, "certificate file"),
            private_key=_read_file(key_file, "key file"),
        )
    else:
        fields.update(host=host, port=port, username=username)
        if key_file is not None:
            fields["private_key"] = _read_file(key_file, "key file")
        else:
            fields["password"] = _read_secret("Password", secret_stdin)
    try:
        request = _INPUT.validate_python({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        fail(
            "the credential is not valid",
            # The first part of each loc is the kind of credential the union chose.
            error_lines([{**e, "loc": e["loc"][1:]} for e in exc.errors()], whole="input"),
        )
    row = run(lambda store: store.create(request, actor=ACTOR, source=cli_source()))
    if as_json:
        print_json(credential_dict(row))
        return
    console().print(f"Stored {row.kind} credential {escape(row.name)!r}.", soft_wrap=True)
    if row.public.get("fingerprint"):
        console().print(f"Fingerprint: {row.public['fingerprint']}", soft_wrap=True)
    if row.public.get("public_key"):
        console().print(f"Public key:  {escape(row.public['public_key'])}", soft_wrap=True)


@app.command("list")
def list_command(
    kind: Annotated[Kind | None, typer.Option(help="Only this kind.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List credentials: names, kinds, fingerprints, expiry (never secret values)."""
    rows = run(
        lambda store: store.list_credentials(kind=kind.value if kind else None, limit=1_000_000)
    )
    if as_json:
        print_json([credential_dict(row) for row in rows])
        return
    if not rows:
        error_console().print("No credentials. Add one with `unity credentials add`.")
        return
    table = new_table("NAME", "KIND", "FINGERPRINT / SUBJECT / LOGIN", "EXPIRES", "CREATED")
    for row in rows:
        table.add_row(
            escape(row.name),
            row.kind,
            escape(_summary(row)),
            relative_time(row.expires_at, empty="never"),
            relative_time(row.created_at),
        )
    console().print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="The credential's name.")],
    as_json: JsonOption = False,
) -> None:
    """Show one credential's public facts."""
    row = run(lambda store: store.get(name))
    if as_json:
        print_json(credential_dict(row))
        return
    table = new_table("FIELD", "VALUE")
    for key, value in credential_dict(row).items():
        if key == "public":
            for sub, item in value.items():
                table.add_row(escape(sub), escape(str(item)))
        else:
            table.add_row(key, escape(str(value)) if value is not None else "-")
    console().print(table)


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="The credential's name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a credential (refused while a server or plugin config uses it)."""
    if not yes:
        typer.confirm(f"Delete credential {name!r}? Its secret is gone for good", abort=True)
    run(lambda store: store.delete(name, actor=ACTOR, source=cli_source()))
    console().print(f"Deleted credential {escape(name)!r}.")


@app.command()
def reveal(
    name: Annotated[str, typer.Argument(help="The credential's name.")],
    as_json: JsonOption = False,
) -> None:
    """Print the secret values. Audited (actor ``cli``, your user and host)."""
    revealed = run(lambda store: store.reveal(name, actor=ACTOR, source=cli_source()))
    if as_json:
        print_json({"name": revealed.name, "kind": revealed.kind, "secret": revealed.secret})
        return
    error_console().print(f"Secret of {revealed.kind} {escape(name)!r} (this reveal is audited):")
    for key, value in revealed.secret.items():
        if "\n" in value:
            typer.echo(value if value.endswith("\n") else value + "\n", nl=False)
        else:
            typer.echo(f"{key}: {value}" if len(revealed.secret) > 1 else value)


@app.command()
def expiring(
    days: Annotated[float, typer.Option(min=0, help="Look this many days ahead.")] = 30,
    as_json: JsonOption = False,
) -> None:
    """Credentials that expire within --days days (default 30), soonest first."""
    rows = run(lambda store: store.expiring(days=days))
    if as_json:
        print_json([credential_dict(row) for row in rows])
        return
    if not rows:
        error_console().print(f"Nothing expires within {days:g} days.")
        return
    table = new_table("NAME", "KIND", "EXPIRES", "WHEN", "SUBJECT")
    for row in rows:
        table.add_row(
            escape(row.name),
            row.kind,
            relative_time(row.expires_at),
            _iso(row.expires_at) or "-",
            escape(str(row.public.get("subject", ""))),
        )
    console().print(table)


def _audit_dict(entry: CredentialAudit) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": _iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "credential": entry.credential,
        "target": entry.target,
        "source": entry.source,
        "success": entry.success,
        "detail": entry.detail,
    }


@app.command()
def audit(
    credential: Annotated[str | None, typer.Option(help="Only this credential.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action (use, reveal...).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The audit log, newest first: who used or revealed what, when, from where."""
    entries = run(lambda store: store.audit_log(credential=credential, action=action, limit=limit))
    if as_json:
        print_json([_audit_dict(entry) for entry in entries])
        return
    table = new_table("WHEN", "ACTOR", "ACTION", "CREDENTIAL", "TARGET", "SOURCE", "OK", "DETAIL")
    for entry in entries:
        table.add_row(
            relative_time(entry.at),
            escape(entry.actor),
            entry.action,
            escape(entry.credential or "-"),
            escape(entry.target or "-"),
            escape(entry.source or "-"),
            "yes" if entry.success else "[red]no[/]",
            escape(entry.detail),
        )
    console().print(table)
