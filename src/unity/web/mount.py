"""Attach the dashboard to the hub's app: its routes, static files and login redirects."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from unity.web import admin, login, pages
from unity.web.common import ForbiddenPageError, LoginRequiredError, login_redirect, render

__all__ = ["mount_dashboard"]


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` (pages), ``/live/...`` (fragments), ``/static``."""

    @app.exception_handler(LoginRequiredError)
    async def _login_required(request: Request, exc: LoginRequiredError) -> Response:
        if request.url.path.startswith("/live/"):
            return PlainTextResponse("login required", status_code=401)
        return login_redirect(exc.next_path)

    @app.exception_handler(ForbiddenPageError)
    async def _forbidden(request: Request, exc: ForbiddenPageError) -> Response:
        return render(
            request, "error.html", exc.web, nav=None, status_code=403, message=exc.message
        )

    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(packages=[("unity.web", "static")]), name="static")
