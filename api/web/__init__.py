"""The web console (docs/PROTOCOL.md §8): server-rendered Jinja2 pages with htmx and
Apache ECharts, every asset served from api/web/static (built by `make assets`).

``install(app, ...)`` mounts the static files, gzip, and the pages' routers. Other page
modules add their router to ``ROUTERS`` (the public pages here; the desk its own).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware

from api.web import desk, public
from api.web.headers import SecurityHeaders
from api.web.render import STATIC

GZIP_MINIMUM_BYTES = 1024
ROUTERS: list[APIRouter] = [public.router, desk.router]


def install(app: FastAPI) -> None:
    """Pages, /static, gzip (compressed when the client accepts it, pages and API) and
    the security headers (api.web.headers) on every response."""
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(STATIC), check_dir=False), name="static")
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
