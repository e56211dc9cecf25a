"""The whole system behind one port: every stage's HTTP part composed into one ASGI app over one
workspace, with the web UI in front (what `roost demo` serves).

Each stage's app or router still runs alone (`roost serve`, `roost index serve`, `roost firehose
serve`); here they share a process. /v1 (serving), /search and /ads are routers of the one app and
share one engine and one key store. The firehose is an app of its own, with its own error format
and its own lifespan (the hub), so its paths are handed to it whole rather than mounted under a
prefix (its routes already start with /firehose). Stages whose files the workspace lacks are left
out, and /web/status says which are there.

    app = create_app(ws)                 # loads the model, opens the index and the ads
    serve(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from roost.apikeys import ApiKeyStore
from roost.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """What the app holds, for its lifespan to close and for /web/status to report."""

    model: str | None = None  # the served model's id
    stages: dict[str, bool] = field(default_factory=dict)  # stage -> mounted
    closers: list[Callable[[], None]] = field(default_factory=list)  # run in reverse at exit
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            if thread.ident is not None:  # started
                thread.join(timeout=30)
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # one part failing to close must not keep the others open
                log.exception("closing %s failed", close)
        self.closers.clear()


class PrefixRoute(BaseRoute):
    """Hands every request under `prefix` to `app` with its path untouched (a Mount would strip
    the prefix, and the firehose's routes include it)."""

    def __init__(self, prefix: str, app: ASGIApp) -> None:
        self.prefix, self.app = prefix, app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def create_app(ws: Workspace, *, model: str = "") -> FastAPI:
    """The demo's app over workspace `ws`: the model `model` (run or export; "" = [serve] model,
    else the newest run) at /v1, the index at /search (following the firehose log, so new posts
    are found as they arrive), the ads at /ads, the firehose at /firehose, and the web UI at /."""
    from roost.web.routes import WebError, web_error
    from roost.web.routes import create_router as web_router

    parts = Parts()
    keys = ApiKeyStore(ws.api_keys_db)
    parts.closers.append(keys.close)
    try:
        app = _compose(ws, parts, keys, model)
    except BaseException:
        parts.close()
        raise
    app.include_router(web_router(ws, keys, parts))
    app.add_exception_handler(WebError, web_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Unknown paths and methods outside the stages' routers, in the error shape /v1 and /search use."""
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    return JSONResponse({"error": {"message": str(exc.detail), "type": kind}}, exc.status_code)


def _compose(ws: Workspace, parts: Parts, keys: ApiKeyStore, model: str) -> FastAPI:
    firehose = _firehose_app(ws)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with firehose.router.lifespan_context(firehose):
                app.state.hub = firehose.state.hub  # for serve(): streams end before uvicorn waits
                for thread in parts.threads:
                    thread.start()
                yield
        finally:
            parts.close()

    app = FastAPI(title="roost", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.router.routes.append(PrefixRoute("/firehose/", firehose))
    parts.stages["firehose"] = True

    engine = _engine(ws, model)
    parts.stages["chat"] = engine is not None
    if engine is not None:
        from roost.serve.openai_api import create_router as serve_router

        parts.closers.append(engine.close)
        parts.model = engine.name
        app.include_router(serve_router(engine, keys))

    retriever = _search(ws, parts, engine)
    parts.stages["search"] = retriever is not None
    if retriever is not None:
        from roost.search.answer import Answerer
        from roost.search.api import create_router as search_router

        app.include_router(search_router(retriever, Answerer(retriever, engine), keys))

    ads = _ads(ws, parts, engine, retriever.index if retriever is not None else None)
    parts.stages["ads"] = ads is not None
    if ads is not None:
        from roost.ads.api import create_router as ads_router

        app.include_router(ads_router(ads, keys))

    parts.stages["training"] = any((p / "metrics.jsonl").exists() for p in ws.runs_dir.glob("*"))
    return app


def _firehose_app(ws: Workspace) -> FastAPI:
    from roost.firehose.config import FirehoseConfig
    from roost.firehose.server import create_app as firehose_app

    return firehose_app(ws.config("firehose", FirehoseConfig), ws)


def _engine(ws: Workspace, model: str) -> Any | None:
    """The serving engine, or None when the workspace has nothing to serve yet."""
    from roost.serve.engine import Engine
    from roost.serve.loader import find_source

    try:
        find_source(ws, model)
    except FileNotFoundError as exc:
        log.warning("no model to serve, /v1 is left out: %s", exc)
        return None
    # No CUDA graphs: capture takes seconds per shape, and the demo's engine shares a small machine.
    return Engine.from_workspace(ws, model or None, cuda_graphs=False)


def _search(ws: Workspace, parts: Parts, engine: Any | None) -> Any | None:
    """A Retriever over the workspace's index (writing answers with `engine`), with a thread that
    follows the firehose log into it; None when there is no index yet."""
    if not (ws.index_dir / "index.db").exists():
        log.warning("no search index in %s, /search is left out (`roost index build`)", ws.index_dir)
        return None
    from roost.search.follow import follow_log
    from roost.search.index import SearchIndex
    from roost.search.retrieve import Retriever

    index = SearchIndex.open(ws)
    embedder_close = getattr(index.embedder, "close", None)
    if embedder_close is not None:  # the index does not own its embedder's engine
        parts.closers.append(embedder_close)
    parts.closers.append(index.close)
    follower = threading.Thread(
        target=_logged(follow_log),
        args=(index, ws.firehose_dir),
        kwargs={"stop": parts.stop},
        name="roost-search-follow",
    )
    parts.threads.append(follower)
    return Retriever(index, engine)


def _ads(ws: Workspace, parts: Parts, engine: Any | None, index: Any | None) -> Any | None:
    """The ads service over the workspace's ads store, targeting through the live index and writing
    copy with the serving engine; None when there is no ads store yet."""
    from roost.ads.config import AdsConfig

    config = ws.config("ads", AdsConfig)
    if not config.database and not ws.ads_db.exists():
        log.warning("no ads store in %s, /ads is left out (`roost ads campaigns add`)", ws.home)
        return None
    from roost.ads.service import AdsService
    from roost.ads.store import Store

    store = Store.open(ws, config.database, sqlite_synchronous=config.sqlite_synchronous)
    parts.closers.append(store.close)
    # Not AdsService.close(): the engine and the index are this app's, closed by their own closers.
    service = AdsService(store, config, index=index, engine=engine)
    parts.closers.append(service.server.stop_refreshing)
    return service


def _logged(work: Callable[..., Any]) -> Callable[..., None]:
    """`work` for a thread: a failure is logged (with its traceback) instead of vanishing."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            work(*args, **kwargs)
        except Exception:
            log.exception("%s stopped", work.__name__)

    return run


def serve(app: FastAPI, *, host: str, port: int, log_level: str = "warning") -> None:
    """Run `app` with uvicorn until SIGINT/SIGTERM; open firehose streams get a `server_shutdown`
    frame first."""
    from roost.firehose.server import run_until_stopped

    run_until_stopped(app, host=host, port=port, log_level=log_level)
