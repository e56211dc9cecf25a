"""The firehose's HTTP server: `GET /firehose/stream` for consumers, `/firehose/admin/*` for the
platform, `/health` for load balancers. `create_app(config)` builds it; `serve()` runs it.

Handlers only check and translate; the hub (`roost.firehose.hub`) does the streaming. Every
refusal is a 4xx with a JSON body `{"error": code, "message": text}`. Only `/health` is open:
streams need a consumer key and admin routes an admin key, each as `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import zstandard
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from roost.firehose.config import FirehoseConfig
from roost.firehose.consumers import (
    AdminKey,
    Consumer,
    ConsumerError,
    ConsumerExistsError,
    Registry,
    UnknownConsumerError,
)
from roost.firehose.filters import Entitlements, StreamRequest
from roost.firehose.hub import Connection, Hub, Refused
from roost.firehose.log import Log
from roost.firehose.protocol import Final, encode_control
from roost.workspace import DEFAULT_HOME, Workspace

_STREAM_PARAMS = ("cursor", "lang", "keywords", "sample", "reposts", "compress")
_CURSOR = re.compile(r"^[0-9]{1,19}$")
_FINAL_WRITE_SECONDS = 0.5  # how long a final frame may wait on a full socket before we just close
_encoder = msgspec.json.Encoder()


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(content), status_code=status, media_type="application/json", headers=headers
    )


def _error(status: int, code: str, message: str, retry_after: float | None = None) -> Response:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return _json({"error": code, "message": message}, status, headers)


# -- request and response bodies of the admin routes --------------------------------------------
class ConsumerView(msgspec.Struct):
    name: str
    key_id: str
    entitlements: Entitlements
    rate_limit: int
    max_connections: int
    created_at: str
    revoked_at: str | None
    connections: int


class AddConsumer(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    entitlements: Entitlements = msgspec.field(default_factory=Entitlements)
    rate_limit: int = 60
    max_connections: int = 2


class Entitle(msgspec.Struct, forbid_unknown_fields=True):
    entitlements: Entitlements
    rate_limit: int | None = None
    max_connections: int | None = None


def create_app(config: FirehoseConfig | None = None, home: Workspace | Path | str = DEFAULT_HOME) -> FastAPI:
    """The firehose app over the log and consumers.db of workspace `home`."""
    config = config or FirehoseConfig()
    ws = home if isinstance(home, Workspace) else Workspace(home)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Opened here, on the event loop's thread, which is the only one that touches them.
        registry = Registry(ws.consumers_db)
        hub = Hub(Log(ws.firehose_dir), registry, config)
        await hub.start()
        app.state.hub = hub
        try:
            yield
        finally:
            await hub.close()
            registry.close()

    app = FastAPI(title="roost firehose", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return _error(exc.status, exc.code, exc.message, exc.retry_after)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, "bad_request", "; ".join(str(e.get("msg", e)) for e in exc.errors()))

    def hub() -> Hub:
        return app.state.hub

    def bearer(request: Request) -> str:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Refused(401, "unauthorized", "send your key as 'Authorization: Bearer <key>'")
        return key.strip()

    def admin(request: Request) -> AdminKey:
        key = hub().registry.check_admin(bearer(request))
        if key is None:
            raise Refused(401, "unauthorized", "this route needs a valid admin key")
        return key

    def view(consumer: Consumer) -> ConsumerView:
        return ConsumerView(
            name=consumer.name,
            key_id=consumer.key_id,
            entitlements=consumer.entitlements,
            rate_limit=consumer.rate_limit,
            max_connections=consumer.max_connections,
            created_at=consumer.created_at.isoformat(),
            revoked_at=consumer.revoked_at.isoformat() if consumer.revoked_at else None,
            connections=hub().connected(consumer.name),
        )

    async def body_as(request: Request, kind: type[Any]) -> Any:
        try:
            return msgspec.json.decode(await request.body(), type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise Refused(400, "bad_request", f"request body: {exc}") from None

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/firehose/stream")
    async def stream(request: Request) -> Response:
        the_hub = hub()
        consumer = the_hub.registry.authenticate(bearer(request))
        if consumer is None:
            raise Refused(401, "unauthorized", "unknown consumer key")
        cursor, stream_request, compress = _parse_stream_query(request)
        client = request.client
        remote = f"{client.host}:{client.port}" if client else "?"
        conn = the_hub.admit(consumer, stream_request, cursor, remote=remote, compress=compress)
        return _StreamResponse(the_hub, conn)

    # -- admin ------------------------------------------------------------------------------
    @app.get("/firehose/admin/consumers")
    async def list_consumers(request: Request) -> Response:
        admin(request)
        return _json({"consumers": [view(c) for c in hub().registry.list()]})

    @app.post("/firehose/admin/consumers")
    async def add_consumer(request: Request) -> Response:
        key = admin(request)
        body = await body_as(request, AddConsumer)
        try:
            consumer, secret = hub().registry.add(
                body.name,
                body.entitlements,
                rate_limit=body.rate_limit,
                max_connections=body.max_connections,
                by=f"admin:{key.key_id}",
            )
        except ConsumerExistsError as exc:
            raise Refused(409, "conflict", str(exc)) from None
        except ConsumerError as exc:
            raise Refused(400, "bad_request", str(exc)) from None
        return _json({"consumer": view(consumer), "key": secret}, 201)

    @app.post("/firehose/admin/consumers/{name}/revoke")
    async def revoke_consumer(name: str, request: Request) -> Response:
        key = admin(request)
        the_hub = hub()
        try:
            consumer = the_hub.registry.revoke(name, by=f"admin:{key.key_id}")
        except UnknownConsumerError as exc:
            raise Refused(404, "not_found", str(exc)) from None
        closed = the_hub.revoke(name)
        return _json({"consumer": view(consumer), "closed_streams": closed})

    @app.put("/firehose/admin/consumers/{name}/entitlements")
    async def entitle_consumer(name: str, request: Request) -> Response:
        key = admin(request)
        body = await body_as(request, Entitle)
        the_hub = hub()
        try:
            consumer = the_hub.registry.entitle(
                name,
                body.entitlements,
                rate_limit=body.rate_limit,
                max_connections=body.max_connections,
                by=f"admin:{key.key_id}",
            )
        except UnknownConsumerError as exc:
            raise Refused(404, "not_found", str(exc)) from None
        except ConsumerError as exc:
            raise Refused(400, "bad_request", str(exc)) from None
        the_hub.apply_consumer(consumer)
        return _json({"consumer": view(consumer)})

    @app.get("/firehose/admin/stats")
    async def stats(request: Request) -> Response:
        admin(request)
        return _json(hub().stats())

    @app.get("/firehose/admin/audit")
    async def audit(request: Request, consumer: str | None = None, limit: int = 100) -> Response:
        admin(request)
        if not 1 <= limit <= 10_000:
            raise Refused(400, "bad_request", "limit must be between 1 and 10000")
        return _json({"entries": hub().registry.audit_log(consumer=consumer, limit=limit)})

    return app


def _parse_stream_query(request: Request) -> tuple[int | None, StreamRequest, bool]:
    """(cursor, filters, compress) from the query string, or Refused 400 saying what is wrong."""
    params = request.query_params
    unknown = sorted(set(params.keys()) - set(_STREAM_PARAMS))
    if unknown:
        raise Refused(
            400,
            "bad_request",
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(_STREAM_PARAMS)}",
        )
    for name in params:
        if len(params.getlist(name)) > 1:
            raise Refused(400, "bad_request", f"parameter {name!r} given more than once")
    cursor = None
    if "cursor" in params:
        raw = params["cursor"]
        if not _CURSOR.match(raw) or int(raw) >= 2**63:
            raise Refused(400, "bad_cursor", f"cursor must be a seq number (an integer >= 0), not {raw!r}")
        cursor = int(raw)
    languages = _csv(params.get("lang"))
    keywords = _csv(params.get("keywords"))
    sample = None
    if "sample" in params:
        try:
            sample = float(params["sample"])
        except ValueError:
            sample = math.nan
        if not 0 < sample <= 1:
            raise Refused(400, "bad_filter", f"sample must be a number in (0, 1], not {params['sample']!r}")
    reposts = None
    if "reposts" in params:
        reposts = {"true": True, "1": True, "false": False, "0": False}.get(params["reposts"].lower())
        if reposts is None:
            raise Refused(400, "bad_filter", f"reposts must be true or false, not {params['reposts']!r}")
    compress = params.get("compress", "none")
    if compress not in ("zstd", "none"):
        raise Refused(400, "bad_request", f"compress must be 'zstd' or 'none', not {compress!r}")
    try:
        # Entitlements checks the values (language codes, keyword lengths) as it would on a grant.
        Entitlements(languages=languages or [], keywords=keywords or [])
    except ValueError as exc:
        raise Refused(400, "bad_filter", str(exc)) from None
    request_filters = StreamRequest(
        languages=languages, keywords=keywords, sample_rate=sample, reposts=reposts
    )
    return cursor, request_filters, compress == "zstd"


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise Refused(400, "bad_filter", f"empty item in the list {value!r}")
    return items


class _StreamResponse(Response):
    """NDJSON until the hub says stop (or the client goes); then a final frame saying why."""

    def __init__(self, hub: Hub, conn: Connection) -> None:
        self.hub, self.conn = hub, conn
        headers = {"cache-control": "no-store", "x-firehose-start": str(conn.next)}
        if conn.compress:
            headers["content-encoding"] = "zstd"
        # Not Response.__init__: it would declare the (empty) body's length; a stream has none.
        self.status_code, self.background, self.media_type = 200, None, "application/x-ndjson"
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn, hub = self.conn, self.hub
        compressor = zstandard.ZstdCompressor(level=1).compressobj() if conn.compress else None
        sent_final = False
        payloads = hub.payloads(conn)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            pump = asyncio.create_task(self._pump(payloads, send, compressor))
            gone = asyncio.create_task(_client_gone(receive))
            stopped = asyncio.create_task(conn.stopped.wait())
            done, pending = await asyncio.wait({pump, gone, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pump in done and pump.exception() is not None:
                raise pump.exception()  # type: ignore[misc]
            if gone not in done and conn.stop_reason is not None:
                final = Final(
                    reason=conn.stop_reason, next=conn.next, head=hub.head, message=conn.stop_message
                )
                body = encode_control(final)
                if compressor is not None:
                    body = compressor.compress(body) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
                with contextlib.suppress(TimeoutError):
                    # A client that reads nothing may have a full socket; then it gets no frame.
                    async with asyncio.timeout(_FINAL_WRITE_SECONDS):
                        await send({"type": "http.response.body", "body": body, "more_body": False})
                    sent_final = True
        finally:
            await payloads.aclose()
            hub.release(conn, sent_final=sent_final)

    @staticmethod
    async def _pump(payloads: AsyncIterator[bytes], send: Send, compressor: Any) -> None:
        async for body in payloads:
            if compressor is not None:
                body = compressor.compress(body) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            await send({"type": "http.response.body", "body": body, "more_body": True})


async def _client_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def serve(
    config: FirehoseConfig, home: Workspace | Path | str = DEFAULT_HOME, *, log_level: str = "info"
) -> None:
    """Run the server until SIGINT/SIGTERM; open streams then get `server_shutdown` frames."""
    run_until_stopped(
        create_app(config, home),
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
    )


def run_until_stopped(app: Any, **uvicorn_options: Any) -> None:
    """Run `app` (this app, or one that includes it) with uvicorn until SIGINT/SIGTERM, ending its
    open firehose streams first, each with its final frame: uvicorn waits for open responses to
    finish before the app hears of shutdown, and a stream never finishes on its own."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            hub_ = getattr(app.state, "hub", None)
            if hub_ is not None:
                hub_.begin_shutdown()
                await asyncio.sleep(0.05)
            await super().shutdown(sockets)

    options = {"access_log": False, "timeout_graceful_shutdown": 5, **uvicorn_options}
    _Server(uvicorn.Config(app, **options)).run()
