"""The page's own routes: the page and its static files (no key: they hold no data), which stages
this server has (no key), and the workspace's training runs (API key, like /v1 and /search).

    GET /                  the page
    GET /static/...        its CSS and JavaScript modules
    GET /web/status        {"stages": {"chat": true, ...}, "model": "demo-chat"}
    GET /web/runs          {"runs": [RunSummary]}  (roost.web.runs)
    GET /web/ads/day       the simulated ad day saved in the workspace (`roost demo` runs one)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from roost.apikeys import ApiKeyStore
from roost.web.runs import list_runs
from roost.workspace import Workspace

STATIC_DIR = Path(__file__).parent / "static"
# Where a simulated day of ad traffic is kept for the page (roost.ads.simulate.DayReport as JSON);
# a new one takes a minute, so the page shows this one first.
SIMULATED_DAY = Path("demo") / "ads-day.json"

# The page loads only its own files and talks only to this server; the key it holds can leave
# only in the Authorization header of requests to this origin.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class WebError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _require_key(keys: ApiKeyStore) -> Callable[..., Awaitable[None]]:
    scheme = HTTPBearer(auto_error=False)

    async def require(credentials: HTTPAuthorizationCredentials | None = Security(scheme)) -> None:
        if credentials is None or keys.authenticate(credentials.credentials) is None:
            raise WebError(
                401, "missing or invalid API key: send `Authorization: Bearer <key>`", "invalid_api_key"
            )

    return require


def create_router(ws: Workspace, keys: ApiKeyStore, parts: Any) -> APIRouter:
    """The page's routes; `parts` (roost.app.Parts) says which stages the server has."""
    router = APIRouter()
    guarded = [Depends(_require_key(keys))]

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    router.routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))

    @router.get("/web/status")
    async def status() -> Response:
        return _json({"stages": parts.stages, "model": parts.model})

    @router.get("/web/runs", dependencies=guarded)
    async def runs() -> Response:
        return _json({"runs": await run_in_threadpool(list_runs, ws.runs_dir)})

    @router.get("/web/ads/day", dependencies=guarded)
    async def simulated_day() -> Response:
        path = ws.home / SIMULATED_DAY
        if not path.exists():
            raise WebError(404, "no simulated day yet: run one from the ads studio", "not_found")
        return Response(path.read_bytes(), media_type="application/json")

    return router


def _json(value: Any) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


async def web_error(_: Request, exc: WebError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": {"message": exc.message, "type": exc.kind}}, exc.status, headers=headers)
