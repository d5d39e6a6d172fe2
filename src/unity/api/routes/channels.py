"""``/api/alerts/channels`` and ``/api/alerts/deliveries``: where notifications go.

Read tokens list channels (routing and a masked target such as ``ntfy://…``,
never the URL) and the delivery log; admins add, change, delete and test
channels. A channel's URL is sealed in the credentials store as it arrives
and no answer ever carries it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from unity.api.body import body_schema, parse_body, read_json
from unity.api.deps import AdminToken, ReadToken, SessionDep, SettingsDep
from unity.api.errors import ApiError
from unity.api.routes.credentials import actor_of, credential_errors, source_of
from unity.notify.dispatcher import Dispatcher
from unity.notify.errors import (
    ChannelExistsError,
    ChannelNotFoundError,
    DeliveryError,
    InvalidChannelError,
    NotifyError,
)
from unity.notify.schemas import (
    CHANNEL_NAME_PATTERN,
    ChannelInput,
    ChannelOut,
    ChannelUpdate,
    DeliveryOut,
)
from unity.notify.store import channel_out
from unity.storage.models import NotificationDelivery
from unity.views import channels as views

__all__ = ["delivery_out", "router"]

router = APIRouter(prefix="/api/alerts", tags=["notifications"])


@contextmanager
def notify_errors() -> Iterator[None]:
    """Typed errors of notifications (and of the credentials store) as API errors."""
    with credential_errors():
        try:
            yield
        except InvalidChannelError as exc:
            details = [{"loc": [exc.field], "msg": str(exc)}]
            raise ApiError(422, str(exc), details=details) from None
        except ChannelNotFoundError as exc:
            raise ApiError(404, str(exc)) from None
        except ChannelExistsError as exc:
            raise ApiError(409, str(exc)) from None
        except NotifyError as exc:
            raise ApiError(502, str(exc)) from None


def _dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher | None = getattr(request.app.state, "notifier", None)
    if dispatcher is None:
        raise ApiError(503, "notifications are not running on this hub")
    return dispatcher


DispatcherDep = Annotated[Dispatcher, Depends(_dispatcher)]


class ChannelList(BaseModel):
    items: list[ChannelOut]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    next_cursor: int | None = None


def delivery_out(row: NotificationDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(row, from_attributes=True)


@router.get("/channels", response_model=ChannelList)
async def list_channels(_: ReadToken, _running: DispatcherDep, session: SessionDep) -> ChannelList:
    """Every channel with its routing; URLs only masked (``ntfy://…``)."""
    return ChannelList(items=[channel_out(row) for row in await views.channels(session)])


@router.post(
    "/channels",
    response_model=ChannelOut,
    status_code=201,
    openapi_extra=body_schema(ChannelInput.model_json_schema()),
)
async def create_channel(
    caller: AdminToken, dispatcher: DispatcherDep, request: Request
) -> ChannelOut:
    """Add a channel: an Apprise URL (ntfy://, gotify://, discord://, tgram://,
    mailto://, json://...) or alertmanager://host:port, and its routing. The URL is
    sealed in the credentials store (credential ``channel.<name>.<id>``)."""
    body = parse_body(ChannelInput, await read_json(request))
    with notify_errors():
        row = await dispatcher.channels.create(
            body, actor=actor_of(caller), source=source_of(request)
        )
    return channel_out(row)


@router.get("/channels/{name}", response_model=ChannelOut)
async def get_channel(
    name: str,
    _: ReadToken,
    dispatcher: DispatcherDep,
) -> ChannelOut:
    """One channel."""
    with notify_errors():
        return channel_out(await dispatcher.channels.get(name))


@router.patch(
    "/channels/{name}",
    response_model=ChannelOut,
    openapi_extra=body_schema(ChannelUpdate.model_json_schema()),
)
async def update_channel(
    name: str, caller: AdminToken, dispatcher: DispatcherDep, request: Request
) -> ChannelOut:
    """Change a channel's routing, switch it on or off, or give it a new URL."""
    body = parse_body(ChannelUpdate, await read_json(request))
    with notify_errors():
        row = await dispatcher.channels.update(
            name, body, actor=actor_of(caller), source=source_of(request)
        )
    return channel_out(row)


@router.delete("/channels/{name}", status_code=204)
async def delete_channel(
    name: str, caller: AdminToken, dispatcher: DispatcherDep, request: Request
) -> Response:
    """Delete a channel, the notices queued for it and the credential holding its URL."""
    with notify_errors():
        await dispatcher.channels.delete(name, actor=actor_of(caller), source=source_of(request))
    return Response(status_code=204)


@router.post("/channels/{name}/test", response_model=DeliveryOut)
async def test_channel(name: str, caller: AdminToken, dispatcher: DispatcherDep) -> DeliveryOut:
    """Send a test message now. 502 with the reason (never the URL) when it fails;
    either way the attempt is in the delivery log."""
    with notify_errors():
        try:
            row = await dispatcher.send_test(name, actor=actor_of(caller))
        except DeliveryError as exc:
            raise ApiError(502, f"the test message to {name!r} failed: {exc}") from None
    return delivery_out(row)


@router.get("/deliveries", response_model=DeliveryList)
async def list_deliveries(
    _: ReadToken,
    session: SessionDep,
    settings: SettingsDep,
    channel: Annotated[str | None, Query(pattern=CHANNEL_NAME_PATTERN)] = None,
    state: Annotated[str | None, Query(pattern="^(sent|failed|dropped)$")] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> DeliveryList:
    """The delivery log, newest first: each message sent or failed, its attempt,
    how many notices it carried, and why it failed."""
    if limit > settings.max_page_size:
        raise ApiError(422, f"limit must be at most {settings.max_page_size}")
    rows = await views.deliveries(
        session, limit=limit + 1, channel=channel, state=state, before=cursor
    )
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return DeliveryList(items=[delivery_out(r) for r in rows[:limit]], next_cursor=next_cursor)
