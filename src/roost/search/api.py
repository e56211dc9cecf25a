"""The /search HTTP routes: thin handlers over a Retriever and an Answerer, behind the same Bearer
keys as /v1 (roost.apikeys).

    GET  /search/query     q, sort, mode, limit, lang, author, hashtag, since, until, has_links
    GET  /search/suggest   prefix, limit
    GET  /search/trending  window_minutes, limit
    POST /search/answer    {"query": ..., "filters": {...}}
    GET  /search/health    (no key) posts indexed, dense backlog

A bad request is a 4xx with {"error": {"message", "type"}}, never a 500 with a traceback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from roost.apikeys import ApiKeyStore
from roost.search.answer import Answerer
from roost.search.query import MAX_LIMIT, Filters, SearchRequest
from roost.search.retrieve import Retriever


class SearchError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _error(
    status: int, message: str, kind: str = "invalid_request", headers: dict | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


class SearchRoute(APIRoute):
    """Turns this router's errors into JSON error bodies, whatever app it is mounted in."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SearchError as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                return _error(exc.status, exc.message, exc.kind, headers)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
                return _error(400, f"{where or 'request'}: {first.get('msg', 'invalid')}")
            except StarletteHTTPException as exc:
                return _error(exc.status_code, str(exc.detail))

        return route


def _json(value: Any) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


def _bearer(keys: ApiKeyStore) -> Callable[..., Awaitable[None]]:
    scheme = HTTPBearer(auto_error=False, description="A roost API key (`roost keys add`).")

    async def require_key(credentials: HTTPAuthorizationCredentials | None = Security(scheme)) -> None:
        if credentials is None or keys.authenticate(credentials.credentials) is None:
            raise SearchError(
                401,
                "missing or invalid API key: send `Authorization: Bearer <key>` (`roost keys add`)",
                "invalid_api_key",
            )

    return require_key


class AnswerBody(msgspec.Struct, forbid_unknown_fields=True):
    query: str
    filters: Filters = Filters()


def create_router(retriever: Retriever, answerer: Answerer, keys: ApiKeyStore) -> APIRouter:
    router = APIRouter(prefix="/search", route_class=SearchRoute)
    guarded = [Depends(_bearer(keys))]
    index = retriever.index

    @router.get("/health")
    def health() -> Response:
        return _json(
            {
                "status": "ok",
                "posts": int(index.columns.alive[: index.columns.size].sum()),
                "partitions": len(index.partitions),
                "dense_pending": index.dense_pending,
            }
        )

    @router.get("/query", dependencies=guarded)
    def query(
        q: str = Query("", max_length=1000, description='words, "phrases", #tags, -excluded'),
        sort: Literal["top", "latest"] = "top",
        mode: Literal["hybrid", "lexical", "dense"] = "hybrid",
        limit: int = Query(20, ge=1, le=MAX_LIMIT),
        lang: str | None = None,
        author: str | None = None,
        hashtag: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        has_links: bool | None = None,
    ) -> Response:
        filters = Filters(
            since=_aware(since),
            until=_aware(until),
            lang=lang,
            author=author,
            hashtag=hashtag,
            has_links=has_links,
        )
        request = SearchRequest(query=q, filters=filters, sort=sort, mode=mode, limit=limit)
        try:
            return _json(retriever.search(request))
        except ValueError as exc:
            raise SearchError(400, str(exc)) from exc

    @router.get("/suggest", dependencies=guarded)
    def suggest(
        prefix: str = Query(..., min_length=1, max_length=200), limit: int = Query(8, ge=1, le=50)
    ) -> Response:
        return _json(retriever.suggest(prefix, limit))

    @router.get("/trending", dependencies=guarded)
    def trending(
        window_minutes: int = Query(60, ge=1, le=7 * 24 * 60), limit: int = Query(10, ge=1, le=100)
    ) -> Response:
        return _json(retriever.trending(dt.timedelta(minutes=window_minutes), limit=limit))

    @router.post("/answer", dependencies=guarded)
    async def answer(request: Request) -> Response:
        try:
            body = msgspec.json.decode(await request.body(), type=AnswerBody)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise SearchError(400, f"body: {exc}") from exc
        if not body.query.strip():
            raise SearchError(400, "query: give something to ask about")
        from starlette.concurrency import run_in_threadpool

        try:
            result = await run_in_threadpool(answerer.answer, body.query, body.filters)
        except ValueError as exc:
            raise SearchError(400, str(exc)) from exc
        return _json({**msgspec.to_builtins(result), "text": result.text})

    return router


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Query-string times: one with no zone is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def create_app(retriever: Retriever, answerer: Answerer, keys: ApiKeyStore) -> FastAPI:
    """An app serving only /search (the demo mounts `create_router` next to the other stages')."""
    app = FastAPI(title="roost search", version="1", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(create_router(retriever, answerer, keys))

    async def http_error(_: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        return _error(status, str(getattr(exc, "detail", "internal error")))

    app.add_exception_handler(StarletteHTTPException, http_error)
    return app
