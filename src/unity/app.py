"""The app factory: one FastAPI app owning one database and one plugin manager."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from unity import __version__
from unity.alerts import AlertEngine
from unity.api.clients import install_client_tracking
from unity.api.errors import RejectNulMiddleware, install_error_handlers
from unity.api.limits import BodyLimit, RequestLimitsMiddleware
from unity.api.openapi import install_openapi
from unity.api.routes import (
    agents,
    alerts,
    channels,
    credentials,
    enrollment,
    external,
    hosts,
    plugins,
    servers,
    silences,
    system,
)
from unity.auth.sessions import end_dead_sessions
from unity.auth.tokens import Scope, create_token, has_admin_token
from unity.credentials import CredentialStore, load_keyring
from unity.notify.dispatcher import Dispatcher
from unity.plugins.hosts import ensure_hub_host
from unity.plugins.hub_discovery import HubDiscovery
from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.plugins.reloader import watch_installs, watch_plugins
from unity.retention import Retention
from unity.settings import Settings, get_settings
from unity.storage.db import Database
from unity.storage.private import PRIVATE_DIR, tighten
from unity.storage.rollups import Rollups
from unity.web.mount import mount_dashboard

__all__ = ["create_app"]

log = logging.getLogger(__name__)

BATCH_PATH = re.compile(r"/api/plugins/v2/[^/]+/metrics$")


async def bootstrap_admin_token(db: Database, settings: Settings) -> str | None:
    """Create an admin token when none exists; return it (it is shown once)."""
    async with db.session() as session:
        if await has_admin_token(session):
            return None
        token = await create_token(session, name="bootstrap", scope=Scope.ADMIN)
    return token.value


def _announce(settings: Settings, token: str | None) -> None:
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"Unity {__version__} on {url}  (dashboard: {url}/  API docs: {url}/docs)"]
    if token:
        lines += [
            "",
            "No admin token existed, so one was created. It is shown only this once:",
            f"    {token}",
            f"Paste it on the dashboard's login page ({url}/login), or use it as:",
            f"    curl -H 'Authorization: Bearer {token}' {url}/api/plugins/v2",
            "Create more with `unity token create`; revoke with `unity token revoke`.",
            "",
        ]
    print("\n".join(lines), file=sys.stderr, flush=True)


def create_app(settings: Settings | None = None, *, loader: PluginLoader | None = None) -> FastAPI:
    """Build the hub. ``settings`` defaults to the environment's."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tighten(settings.data_dir, PRIVATE_DIR)
        # A malformed, default or exposed master key stops the hub here.
        keyring = load_keyring(settings)
        db = Database(
            settings.effective_database_url, connect_timeout=settings.database_connect_timeout
        )
        await db.upgrade()
        try:
            await CredentialStore(db, keyring).verify_keyring()
        except BaseException:
            await db.dispose()
            raise
        manager = PluginManager(db, settings, loader, keyring=keyring)
        retention = Retention(db, settings, manager.leases)
        app.state.db = db
        app.state.manager = manager
        app.state.retention = retention
        app.state.rollups = rollups = Rollups(db, settings, manager.leases)
        await end_dead_sessions(db)
        # The hub's own machine is a host like the agents' (its card comes first).
        await ensure_hub_host(db, settings)
        token = await bootstrap_admin_token(db, settings) if settings.bootstrap_token else None
        await manager.start()
        # Notifications: the alert engine submits to it; its loop delivers from the outbox.
        notifier = Dispatcher(manager.credentials, settings, hub=manager.leases.hub_id)
        app.state.notifier = notifier
        notifier.start()
        # Alerts: rules on every recorded run and state change, told through the notifier.
        engine = AlertEngine(db, settings, metadata=manager.metadata_for, notifier=notifier)
        manager.recorder.observers.append(engine.observe)
        app.state.alerts = engine
        await engine.start()
        app.state.discovery = discovery = HubDiscovery(manager, settings)
        watchers = [
            asyncio.create_task(retention.run(), name="retention"),
            asyncio.create_task(rollups.run(), name="rollups"),
        ]
        if settings.discovery_seconds > 0:
            # What runs on the hub's own machine, proposed on its host as agents do.
            watchers.append(asyncio.create_task(discovery.run(), name="discovery"))
        if settings.dev_mode:
            watchers += [
                asyncio.create_task(watch_plugins(manager)),
                asyncio.create_task(watch_installs(manager)),
            ]
        _announce(settings, token)
        try:
            yield
        finally:
            for watcher in watchers:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await engine.stop()
            await notifier.stop()
            # `unity serve` stamps when SIGTERM arrived; the grace period counts from there.
            started = getattr(app.state, "shutdown_started", None) or time.monotonic()
            elapsed = time.monotonic() - started
            await manager.stop(grace=max(1.0, settings.shutdown_grace_seconds - elapsed))
            await db.dispose()

    app = FastAPI(
        title="Unity",
        version=__version__,
        summary="Self-hosted homelab intelligence hub",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RejectNulMiddleware)
    install_client_tracking(app, settings)
    app.include_router(system.router)
    app.include_router(external.router)
    app.include_router(plugins.router)
    app.include_router(hosts.router)
    app.include_router(enrollment.router)
    app.include_router(agents.router)
    app.include_router(credentials.router)
    app.include_router(servers.router)
    app.include_router(channels.router)
    app.include_router(alerts.router)
    app.include_router(silences.router)
    mount_dashboard(app)
    install_openapi(app)
    # Added last, so outermost: no route, dependency or middleware reads a body first.
    app.add_middleware(
        RequestLimitsMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout,
        routes=[BodyLimit("POST", BATCH_PATH, settings.max_batch_bytes)],
    )
    return app
