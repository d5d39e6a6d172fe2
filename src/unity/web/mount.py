"""Attach the dashboard to the hub's app: its routes, static files and login redirects."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from unity.web import admin, alerts, channels, hosts, login, pages
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

    @app.get("/manifest.webmanifest", include_in_schema=False)
    async def _manifest() -> Response:
        # Public like the login page: browsers fetch a manifest without cookies.
        # Its PNG icons are committed, made once from favicon.svg with
        # `rsvg-convert -w N -h N favicon.svg -o icon-N.png` (Debian's librsvg2-bin)
        # or CairoSVG's `cairosvg favicon.svg -W N -H N -o icon-N.png`, N = 192, 512.
        body = resources.files("unity.web").joinpath("static", "manifest.webmanifest").read_bytes()
        return Response(
            body,
            media_type="application/manifest+json",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(hosts.router)
    app.include_router(channels.router)
    app.include_router(alerts.router)
    app.mount("/static", StaticFiles(packages=[("unity.web", "static")]), name="static")
