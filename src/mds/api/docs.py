"""Swagger UI at ``/docs`` and ReDoc at ``/redoc``, from assets MDS ships itself.

FastAPI's own pages load their scripts from a CDN, so on a machine without a route to it
(common in finance) they render blank. These pages load only from MDS: the assets are
vendored, pinned and licensed under ``static/`` (``static/README.md`` says which versions
and how to update them), and no page names another host: no web fonts, no validator badge.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from mds.errors import NotFound

_STATIC = Path(__file__).parent / "static"
ASSET_PATH = "/docs/assets"
#: URL name -> file under static/. A fixed list: nothing else under static/ is served.
ASSETS = {
    "swagger-ui-bundle.js": "swagger-ui/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui/swagger-ui.css",
    "favicon.png": "swagger-ui/favicon-32x32.png",
    "redoc.standalone.js": "redoc/redoc.standalone.js",
}
# The files change only with MDS's version; a day's caching spares a reload 3 MB.
_CACHE = {"Cache-Control": "public, max-age=86400"}


def install_docs(app: FastAPI) -> None:
    """Serve the two documentation pages and their assets (create the app with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not served too)."""

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSET_PATH}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            # validatorUrl: Swagger UI would otherwise fetch a badge from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )

    @app.get(ASSET_PATH + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise NotFound("docs asset", name)
        return FileResponse(_STATIC / ASSETS[name], headers=_CACHE)
