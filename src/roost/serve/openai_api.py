"""The OpenAI-compatible HTTP API over an Engine: thin handlers that parse, translate and hand over.

`create_router(engine, keys)` is the part the demo mounts; `create_app(engine, keys)` wraps it in
an app of its own. Routes: /v1/models, /v1/completions, /v1/chat/completions, /v1/embeddings,
/metrics (Prometheus), /ready (one real token through the engine) — all behind Bearer keys from
roost.apikeys — and /health (no key: is the engine thread alive). Errors are OpenAI error objects;
a full queue is 429 with Retry-After; a client that goes away cancels its request, queued or running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from roost.apikeys import ApiKeyStore
from roost.serve import responses, translate
from roost.serve.engine import Engine, EngineClosed, EngineFull, RequestStream
from roost.serve.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
)
from roost.serve.sampling import SamplingParams

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 429, 503)
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers = headers

    def response(self) -> JSONResponse:
        body = responses.error_body(self.message, self.kind, self.code, self.param)
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'body'}: {first.get('msg', 'invalid')}{more}", where or None


class OpenAIRoute(APIRoute):
    """Turns this router's errors into OpenAI error objects, whatever app it is mounted in."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response()
            except RequestValidationError as exc:
                message, param = _validation_message(exc)
                return ApiError(400, message, param=param).response()
            except StarletteHTTPException as exc:
                return ApiError(exc.status_code, str(exc.detail)).response()

        return route


class EventStream(StreamingResponse):
    """Server-sent events that end when the client leaves (even while its request only waits in the
    queue and nothing is being sent), aborting the engine requests behind them either way."""

    def __init__(self, content: AsyncIterator[bytes], streams: Sequence[RequestStream]) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.streams = streams

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream_then_stop() -> None:
                    with contextlib.suppress(OSError):  # the client went away mid-write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream_then_stop)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            for stream in self.streams:
                stream.abort()


async def _until_disconnect(request: Request, work: Awaitable[Any]) -> Any:
    """Run `work`, cancelling it (which aborts its engine requests) if the client disconnects."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if task.cancelled():
        return Response(status_code=499)  # nobody is there to read it
    return task.result()


def _bearer(keys: ApiKeyStore) -> Callable[..., Awaitable[None]]:
    scheme = HTTPBearer(auto_error=False, description="A roost API key (`roost keys add`).")

    async def require_key(credentials: HTTPAuthorizationCredentials | None = Security(scheme)) -> None:
        # async, so the store's one SQLite connection is only ever used from the event loop's thread
        if credentials is None or keys.authenticate(credentials.credentials) is None:
            raise ApiError(
                401,
                "missing or invalid API key: send `Authorization: Bearer <key>` "
                "(make one with `roost keys add`)",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_key


def create_router(engine: Engine, keys: ApiKeyStore) -> APIRouter:
    """The API's routes over `engine`, every one but /health behind `keys`."""
    router = APIRouter(route_class=OpenAIRoute, responses=_ERRORS)
    guarded = [Depends(_bearer(keys))]
    started = int(time.time())

    def check_model(name: str | None) -> None:
        if name is not None and name != engine.name:
            raise ApiError(
                404,
                f"the model {name!r} does not exist; this server has {engine.name!r}",
                code="model_not_found",
                param="model",
            )

    def submit(prompts: list[list[int]], params: SamplingParams) -> list[RequestStream]:
        streams: list[RequestStream] = []
        try:
            for prompt in prompts:
                streams.append(engine.submit(prompt, params))
        except BaseException as exc:
            for stream in streams:
                stream.abort()
            if isinstance(exc, ValueError):
                raise ApiError(400, str(exc), param=getattr(exc, "param", None)) from exc
            if isinstance(exc, EngineFull):
                raise ApiError(
                    429,
                    f"the server is at capacity: {exc}",
                    "rate_limit_exceeded",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": str(engine.config.retry_after_s)},
                ) from exc
            if isinstance(exc, EngineClosed):
                raise ApiError(503, str(exc), "server_error", code="engine_unavailable") from exc
            raise
        return streams

    @router.get("/health", dependencies=[])
    async def health() -> dict[str, str]:
        """Liveness: 200 while the engine thread runs (no key needed)."""
        if not engine.alive:
            raise ApiError(503, "the engine thread has stopped", "server_error", code="engine_unavailable")
        return {"status": "ok"}

    @router.get("/ready", dependencies=guarded)
    async def ready() -> dict[str, Any]:
        """Readiness: one real token through the queue, a prefill and the sampler."""
        begin = time.perf_counter()
        params = SamplingParams(max_tokens=1, temperature=0.0)
        stream = submit([[min(engine.end_ids or {0})]], params)[0]
        try:
            async for _ in stream:
                pass
        except EngineClosed as exc:
            raise ApiError(503, str(exc), "server_error", code="engine_unavailable") from exc
        return {"status": "ready", "model": engine.name, "seconds": round(time.perf_counter() - begin, 6)}

    @router.get("/metrics", dependencies=guarded, response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/v1/models", dependencies=guarded)
    async def list_models() -> ModelList:
        return ModelList(data=[ModelCard(id=engine.name, created=started)])

    @router.get("/v1/models/{model}", dependencies=guarded)
    async def get_model(model: str) -> ModelCard:
        check_model(model)
        return ModelCard(id=engine.name, created=started)

    @router.post("/v1/completions", dependencies=guarded, response_model=CompletionResponse)
    async def completions(body: CompletionRequest, request: Request) -> Any:
        check_model(body.model)
        try:
            prompts, params = translate.completion_request(body, engine)
        except ValueError as exc:
            raise ApiError(400, str(exc), param=getattr(exc, "param", None)) from exc
        streams = submit(prompts, params)
        reply = responses.Reply.new("cmpl", engine.name, engine.tokens)
        choices = responses.Choices(streams, engine.tokens)
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return EventStream(responses.completion_events(reply, choices, body.echo, usage), streams)
        return await _until_disconnect(
            request, _or_503(responses.completion_response(reply, choices, body.echo))
        )

    @router.post("/v1/chat/completions", dependencies=guarded, response_model=ChatCompletionResponse)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        check_model(body.model)
        try:
            prompt, params = translate.chat_request(body, engine)
        except ValueError as exc:
            raise ApiError(400, str(exc), param=getattr(exc, "param", None)) from exc
        streams = submit([prompt], params)
        reply = responses.Reply.new("chatcmpl", engine.name, engine.tokens)
        choices = responses.Choices(streams, engine.tokens)
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return EventStream(responses.chat_events(reply, choices, usage), streams)
        return await _until_disconnect(request, _or_503(responses.chat_response(reply, choices)))

    @router.post("/v1/embeddings", dependencies=guarded)
    async def embeddings(body: EmbeddingRequest) -> EmbeddingResponse:
        check_model(body.model)
        try:
            inputs = translate.embedding_inputs(body, engine)
            vectors = await engine.embed_async(inputs, truncate=False)
        except ValueError as exc:
            raise ApiError(400, str(exc), param=getattr(exc, "param", "input")) from exc
        except EngineClosed as exc:
            raise ApiError(503, str(exc), "server_error", code="engine_unavailable") from exc
        tokens = sum(max(len(i), 1) for i in inputs)
        return responses.embedding_response(vectors, engine.name, tokens, body.encoding_format)

    return router


async def _or_503(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except EngineClosed as exc:
        return ApiError(503, f"generation failed: {exc}", "server_error", code="engine_failure").response()


def create_app(engine: Engine, keys: ApiKeyStore) -> FastAPI:
    """A FastAPI app serving `engine` (the engine's lifetime is the caller's to manage)."""
    # The schema is behind a key like every route but /health (so no unauthenticated docs page).
    app = FastAPI(
        title="roost",
        summary="An OpenAI-compatible API over roost's own language model.",
        version="1",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(create_router(engine, keys))

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(_bearer(keys))])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    async def http_error(_: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        detail = exc.detail if isinstance(exc, StarletteHTTPException) else "internal error"
        return ApiError(status, str(detail)).response()

    app.add_exception_handler(StarletteHTTPException, http_error)
    return app
