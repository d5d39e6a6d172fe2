"""``unity token``: create, list and revoke hub tokens, directly in the database.

These work without a running hub (that is how the first admin token is made),
on the database the settings name; it is upgraded first.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from unity.auth.external import TakeoverTargetError, create_enrollment
from unity.auth.tokens import IssuedToken, Scope, create_token, list_tokens, revoke_token
from unity.cli.db import migrated_database
from unity.cli.output import (
    JsonOption,
    console,
    error_console,
    fail,
    new_table,
    print_json,
    relative_time,
)
from unity.storage.models import ApiToken, EnrollmentToken
from unity.storage.types import utcnow

__all__ = ["app"]

app = typer.Typer(
    help="Hub tokens for people and scripts (scope read or admin).", no_args_is_help=True
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@app.command()
def create(
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "cli",
    scope: Annotated[
        Scope, typer.Option(help="read: query only; admin: also change plugins and config.")
    ] = Scope.READ,
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="Expire after this many days (default: never).")
    ] = None,
    enroll: Annotated[
        bool,
        typer.Option(
            "--enroll",
            help="Create an enrollment token for external plugins instead of a hub token.",
        ),
    ] = False,
    uses: Annotated[
        int, typer.Option(min=0, help="With --enroll: registrations allowed (0: unlimited).")
    ] = 1,
    expires_hours: Annotated[
        float, typer.Option(min=0.01, help="With --enroll: hours until the token expires.")
    ] = 24.0,
    takeover: Annotated[
        str | None,
        typer.Option(
            metavar="PLUGIN_ID",
            help=(
                "With --enroll: a token for this external plugin id only, whose "
                "registration takes the id over (the previous keys are revoked)."
            ),
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print it. It is shown only this once: only a hash is stored.

    The token alone goes to stdout (the notes to stderr), so
    `export UNITY_TOKEN=$(unity token create --scope admin)` works. With
    `--enroll` it is an enrollment token an external plugin trades for its
    own API key when it registers. A registered id belongs to the token that
    registered it first; `--enroll --takeover ID` hands it to a new one.
    """
    if enroll:
        _create_enrollment(name, uses or None, expires_hours, takeover, as_json)
        return
    if takeover is not None:
        raise typer.BadParameter("only enrollment tokens take over", param_hint="--takeover")
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None

    async def run() -> IssuedToken:
        async with migrated_database() as db, db.session() as session:
            return await create_token(session, name=name, scope=scope, expires_at=expires_at)

    issued = asyncio.run(run())
    if as_json:
        print_json(
            {
                "id": issued.id,
                "name": issued.name,
                "scope": issued.scope.value,
                "token": issued.value,
                "expires_at": _iso(issued.expires_at),
            }
        )
        return
    expiry = f"expires {issued.expires_at:%Y-%m-%d %H:%M} UTC" if issued.expires_at else "no expiry"
    error_console().print(
        f"Created {issued.scope.value} token {issued.name!r} (id {issued.id}, {expiry}).\n"
        "Store it now: it cannot be shown again.",
        soft_wrap=True,
    )
    console().print(issued.value, soft_wrap=True)


def _create_enrollment(
    name: str, max_uses: int | None, hours: float, takeover: str | None, as_json: bool
) -> None:
    async def run() -> tuple[EnrollmentToken, str]:
        async with migrated_database() as db, db.session() as session:
            return await create_enrollment(
                session,
                name=name,
                expires_in=timedelta(hours=hours),
                max_uses=max_uses,
                takeover=takeover,
            )

    try:
        row, value = asyncio.run(run())
    except TakeoverTargetError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "id": row.id,
                "name": row.name,
                "token": value,
                "max_uses": row.max_uses,
                "expires_at": _iso(row.expires_at),
                "takeover": row.takeover_plugin_id,
            }
        )
        return
    uses = f"{row.max_uses} registration(s)" if row.max_uses else "unlimited registrations"
    handover = f"takes over plugin {takeover!r}, " if takeover else ""
    error_console().print(
        f"Created enrollment token {row.name!r} (id {row.id}, {handover}{uses}, "
        f"expires {row.expires_at:%Y-%m-%d %H:%M} UTC).\n"
        "Give it to the external plugin (UNITY_ENROLLMENT_TOKEN); it is shown only once.",
        soft_wrap=True,
    )
    console().print(value, soft_wrap=True)


def _row(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "created_at": _iso(token.created_at),
        "last_used_at": _iso(token.last_used_at),
        "expires_at": _iso(token.expires_at),
        "revoked_at": _iso(token.revoked_at),
    }


@app.command("list")
def list_command(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List tokens (never their secrets: only a hash of each is stored)."""

    async def run() -> list[dict[str, Any]]:
        async with migrated_database() as db, db.session() as session:
            tokens = await list_tokens(session, include_revoked=include_revoked)
            return [_row(token) for token in tokens]

    rows = asyncio.run(run())
    if as_json:
        print_json(rows)
        return
    if not rows:
        error_console().print("No tokens. Create one with `unity token create`.")
        return
    table = new_table("ID", "NAME", "SCOPE", "CREATED", "LAST USED", "EXPIRES", "REVOKED")
    for row in rows:
        table.add_row(
            row["id"],
            row["name"],
            row["scope"],
            relative_time(row["created_at"]),
            relative_time(row["last_used_at"], empty="never"),
            relative_time(row["expires_at"], empty="never"),
            relative_time(row["revoked_at"], empty="no"),
        )
    console().print(table)


@app.command()
def revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id.")]) -> None:
    """Revoke a token at once: requests with it are refused from now on."""

    async def run() -> bool:
        async with migrated_database() as db, db.session() as session:
            return await revoke_token(session, token_id)

    if not asyncio.run(run()):
        fail(f"no live token with id {token_id!r}; see `unity token list --all`")
    console().print(f"Revoked token {token_id}.")
