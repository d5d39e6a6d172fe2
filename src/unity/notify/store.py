"""Channels: created, changed and deleted together with the credential holding the URL.

A channel's URL carries tokens, so it lives in the credentials store (sealed,
every use audited) as an ``api_token`` credential named ``channel.<name>``;
the channel row holds only its routing, the credential's name and the masked
form (``ntfy://…``). A new URL is stored under a fresh credential name, the
channel moved to it, then the old credential deleted: each step audited.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from unity.credentials import CredentialStore
from unity.credentials.schemas import ApiTokenInput
from unity.notify.channels import Target, parse_target
from unity.notify.errors import ChannelExistsError, ChannelNotFoundError
from unity.notify.schemas import ChannelInput, ChannelOut, ChannelUpdate
from unity.storage.models import NotificationChannel
from unity.storage.types import utcnow

__all__ = ["ChannelStore", "channel_out"]

_ROUTING = ("min_severity", "plugins", "hosts", "labels", "rate_limit", "enabled")


def channel_out(row: NotificationChannel) -> ChannelOut:
    return ChannelOut.model_validate(
        {
            "id": row.id,
            "name": row.name,
            "kind": row.kind,
            "target": row.target,
            "credential": row.credential,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            **{key: getattr(row, key) for key in _ROUTING},
        }
    )


@contextmanager
def _exists_on_conflict(name: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError:
        raise ChannelExistsError(f"a channel named {name!r} exists") from None


class ChannelStore:
    """Channels on the credential store's database."""

    def __init__(self, credentials: CredentialStore) -> None:
        self.credentials = credentials
        self.db = credentials.db

    async def list_channels(self) -> list[NotificationChannel]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(NotificationChannel).order_by(NotificationChannel.name)
            )
            return list(rows)

    async def get(self, name: str) -> NotificationChannel:
        async with self.db.session() as session:
            row = await session.scalar(
                select(NotificationChannel).where(NotificationChannel.name == name)
            )
        if row is None:
            raise ChannelNotFoundError(f"no channel named {name!r}")
        return row

    async def _store_url(
        self, name: str, url: SecretStr, *, actor: str, source: str | None
    ) -> tuple[str, Target]:
        target = await asyncio.to_thread(parse_target, url.get_secret_value())
        credential = f"channel.{name}.{secrets.token_hex(3)}"
        await self.credentials.create(
            ApiTokenInput(kind="api_token", name=credential, token=url),
            actor=actor,
            source=source,
        )
        return credential, target

    async def create(
        self, request: ChannelInput, *, actor: str, source: str | None = None
    ) -> NotificationChannel:
        """Validate the URL (Apprise judges it), seal it as a credential, add the channel."""
        async with self.db.session() as session:
            taken = await session.scalar(
                select(NotificationChannel.id).where(NotificationChannel.name == request.name)
            )
        if taken is not None:
            raise ChannelExistsError(f"a channel named {request.name!r} exists")
        credential, target = await self._store_url(
            request.name, request.url, actor=actor, source=source
        )
        now = utcnow()
        row = NotificationChannel(
            name=request.name,
            kind=target.kind,
            target=target.masked,
            credential=credential,
            created_at=now,
            updated_at=now,
            **{key: getattr(request, key) for key in _ROUTING},
        )
        try:
            with _exists_on_conflict(request.name):
                async with self.db.session() as session:
                    session.add(row)
        except ChannelExistsError:
            await self.credentials.delete(credential, actor=actor, source=source)
            raise
        return row

    async def update(
        self, name: str, change: ChannelUpdate, *, actor: str, source: str | None = None
    ) -> NotificationChannel:
        row = await self.get(name)
        old_credential = row.credential
        credential, target = (
            await self._store_url(name, change.url, actor=actor, source=source)
            if change.url is not None
            else (None, None)
        )
        async with self.db.session() as session:
            current = await session.get(NotificationChannel, row.id, with_for_update=True)
            if current is None:
                raise ChannelNotFoundError(f"no channel named {name!r}")
            for key in _ROUTING:
                value = getattr(change, key)
                if value is not None:
                    setattr(current, key, value)
            if credential is not None and target is not None:
                current.credential, current.kind, current.target = (
                    credential,
                    target.kind,
                    target.masked,
                )
            current.updated_at = utcnow()
            row = current
        if credential is not None:
            await self.credentials.delete(old_credential, actor=actor, source=source)
        return row

    async def delete(self, name: str, *, actor: str, source: str | None = None) -> None:
        """Delete the channel (its queued notices with it) and its credential."""
        async with self.db.session() as session:
            row = await session.scalar(
                select(NotificationChannel).where(NotificationChannel.name == name)
            )
            if row is None:
                raise ChannelNotFoundError(f"no channel named {name!r}")
            credential = row.credential
            await session.delete(row)
        await self.credentials.delete(credential, actor=actor, source=source)

    async def url(self, row: NotificationChannel, *, actor: str = "hub") -> str:
        """The channel's URL, decrypted (audited as a use of its credential)."""
        resolved = await self.credentials.resolve(
            row.credential, actor=actor, target=f"channel:{row.name}"
        )
        return resolved.value
