"""The /ads HTTP routes: thin handlers over an AdsService, behind the same Bearer keys as /v1 and
/search (roost.apikeys). Money is in integer micros everywhere; times are ISO-8601 with a zone.

    POST  /ads/advertisers                       {"name"}
    GET   /ads/advertisers
    POST  /ads/campaigns                         {"advertiser_id", ...campaign}
    GET   /ads/campaigns                         ?status=&advertiser_id=
    GET   /ads/campaigns/{id}
    PATCH /ads/campaigns/{id}                    {field: value, ...}, "status": active|paused|archived
    GET   /ads/campaigns/{id}/creatives
    POST  /ads/campaigns/{id}/creatives          {"text"}: checked like generated copy
    POST  /ads/campaigns/{id}/creatives/generate {brief..., "save": false}: variants and rejections
    PATCH /ads/creatives/{id}                    {"status"}
    GET   /ads/campaigns/{id}/preview            ?limit=: the live conversations it would target
    GET   /ads/campaigns/{id}/report             ?since=&until=
    POST  /ads/request                           an ad request → the auction's ads
    POST  /ads/click                             {"impression_id"}
    POST  /ads/simulate                          {day config}: a simulated day's report
    GET   /ads/health                            (no key)

A bad request is a 4xx with {"error": {"message", "type"}}, never a 500 with a traceback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from roost.ads.auction import AdRequest
from roost.ads.service import AdsService, CreativeRejected
from roost.ads.store import CampaignSpec, CreativeStatus, NotFound, StoreError
from roost.apikeys import ApiKeyStore

MAX_SIMULATED_POSTS = 20_000
MAX_ID = 2**63 - 1  # ids are BIGINT: a larger number names nothing (and must not reach the driver)
RowId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


class AdsError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request", **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.extra = status, message, kind, extra


def _error(
    status: int, message: str, kind: str = "invalid_request", headers: dict | None = None, **extra: Any
):
    return JSONResponse(
        {"error": {"message": message, "type": kind, **extra}}, status_code=status, headers=headers
    )


class AdsRoute(APIRoute):
    """Turns this router's errors into JSON error bodies, whatever app it is mounted in."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except AdsError as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                return _error(exc.status, exc.message, exc.kind, headers, **exc.extra)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
                return _error(400, f"{where or 'request'}: {first.get('msg', 'invalid')}")
            except StarletteHTTPException as exc:
                return _error(exc.status_code, str(exc.detail))

        return route


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


def _bearer(keys: ApiKeyStore) -> Callable[..., Awaitable[None]]:
    scheme = HTTPBearer(auto_error=False, description="A roost API key (`roost keys add`).")

    async def require_key(credentials: HTTPAuthorizationCredentials | None = Security(scheme)) -> None:
        if credentials is None or keys.authenticate(credentials.credentials) is None:
            raise AdsError(
                401,
                "missing or invalid API key: send `Authorization: Bearer <key>` (`roost keys add`)",
                "invalid_api_key",
            )

    return require_key


async def _body(request: Request, kind: Any) -> Any:
    try:
        return msgspec.json.decode(await request.body(), type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AdsError(400, f"body: {exc}") from exc


async def _call(fn: Callable[[], Any]) -> Any:
    """Run store and model work off the event loop; the store's refusals become 4xx."""
    try:
        return await run_in_threadpool(fn)
    except NotFound as exc:
        raise AdsError(404, str(exc), "not_found") from exc
    except CreativeRejected as exc:
        raise AdsError(400, str(exc), "creative_rejected", reasons=exc.reasons) from exc
    except (StoreError, ValueError, msgspec.ValidationError) as exc:
        raise AdsError(400, str(exc)) from exc


class NewAdvertiser(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class NewCampaign(CampaignSpec, kw_only=True, forbid_unknown_fields=True):
    advertiser_id: RowId


class NewCreative(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class CreativeChange(msgspec.Struct, forbid_unknown_fields=True):
    status: CreativeStatus


class Click(msgspec.Struct, forbid_unknown_fields=True):
    impression_id: RowId


def create_router(service: AdsService, keys: ApiKeyStore) -> APIRouter:
    router = APIRouter(prefix="/ads", route_class=AdsRoute)
    guarded = [Depends(_bearer(keys))]
    store = service.store
    service.server.start_refreshing()  # a live server: campaigns and spend reload off the request path

    @router.get("/health")
    def health() -> Response:
        return _json(
            {
                "status": "ok",
                "schema_version": store.schema_version,
                "index": service.index is not None,
                "writer": service.writer is not None,
            }
        )

    # -- advertisers and campaigns ----------------------------------------------------------------
    @router.post("/advertisers", dependencies=guarded)
    async def add_advertiser(request: Request) -> Response:
        body = await _body(request, NewAdvertiser)
        return _json(await _call(lambda: store.add_advertiser(body.name)), 201)

    @router.get("/advertisers", dependencies=guarded)
    async def advertisers() -> Response:
        return _json(await _call(store.advertisers))

    @router.post("/campaigns", dependencies=guarded)
    async def add_campaign(request: Request) -> Response:
        body = await _body(request, NewCampaign)
        fields = {f: getattr(body, f) for f in CampaignSpec.__struct_fields__}
        return _json(await _call(lambda: store.add_campaign(body.advertiser_id, CampaignSpec(**fields))), 201)

    @router.get("/campaigns", dependencies=guarded)
    async def campaigns(
        status: Literal["active", "paused", "archived"] | None = None,
        advertiser_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> Response:
        return _json(await _call(lambda: store.campaigns(status=status, advertiser_id=advertiser_id)))

    @router.get("/campaigns/{campaign_id}", dependencies=guarded)
    async def campaign(campaign_id: PathId) -> Response:
        return _json(await _call(lambda: store.campaign(campaign_id)))

    @router.patch("/campaigns/{campaign_id}", dependencies=guarded)
    async def change_campaign(campaign_id: PathId, request: Request) -> Response:
        changes = await _body(request, dict[str, Any])
        return _json(await _call(lambda: store.update_campaign(campaign_id, changes)))

    # -- creatives ------------------------------------------------------------------------------------
    @router.get("/campaigns/{campaign_id}/creatives", dependencies=guarded)
    async def creatives(campaign_id: PathId) -> Response:
        return _json(await _call(lambda: (store.campaign(campaign_id), store.creatives(campaign_id))[1]))

    @router.post("/campaigns/{campaign_id}/creatives", dependencies=guarded)
    async def add_creative(campaign_id: PathId, request: Request) -> Response:
        body = await _body(request, NewCreative)
        return _json(await _call(lambda: service.add_creative(campaign_id, body.text)), 201)

    @router.post("/campaigns/{campaign_id}/creatives/generate", dependencies=guarded)
    async def generate(campaign_id: PathId, request: Request) -> Response:
        fields = await _body(request, dict[str, Any])
        save = fields.pop("save", False)
        if not isinstance(save, bool):
            raise AdsError(400, "save: true or false")
        if service.writer is None:
            raise AdsError(
                503, "no model to write with: train a run, or set [ads] creative_model", "unavailable"
            )
        result, saved = await _call(lambda: service.generate(campaign_id, fields, save=save))
        return _json({**msgspec.to_builtins(result), "saved": saved})

    @router.patch("/creatives/{creative_id}", dependencies=guarded)
    async def change_creative(creative_id: PathId, request: Request) -> Response:
        body = await _body(request, CreativeChange)
        return _json(await _call(lambda: store.set_creative_status(creative_id, body.status)))

    # -- targeting and reports -----------------------------------------------------------------------
    @router.get("/campaigns/{campaign_id}/preview", dependencies=guarded)
    async def preview(campaign_id: PathId, limit: int = Query(20, ge=1, le=200)) -> Response:
        if service.retriever is None:
            raise AdsError(503, "no search index: run `roost index build` first", "unavailable")
        return _json(await _call(lambda: service.preview(campaign_id, limit=limit)))

    @router.get("/campaigns/{campaign_id}/report", dependencies=guarded)
    async def report(
        campaign_id: PathId, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> Response:
        since, until = _aware(since), _aware(until)
        if since and until and since >= until:
            raise AdsError(400, "since must be before until")
        return _json(await _call(lambda: service.report(campaign_id, since=since, until=until)))

    # -- serving ---------------------------------------------------------------------------------------
    @router.post("/request", dependencies=guarded)
    async def ad_request(request: Request) -> Response:
        body = await _body(request, AdRequest)
        return _json(await _call(lambda: service.server.serve(body)))

    @router.post("/click", dependencies=guarded)
    async def click(request: Request) -> Response:
        body = await _body(request, Click)
        click_id = await _call(lambda: store.record_click(body.impression_id))
        return _json(
            {"impression_id": body.impression_id, "click_id": click_id, "duplicate": click_id is None}
        )

    @router.post("/simulate", dependencies=guarded)
    async def simulate(request: Request) -> Response:
        from roost.ads.simulate import DayConfig

        config = await _body(request, DayConfig)
        if config.posts > MAX_SIMULATED_POSTS:
            raise AdsError(
                400, f"posts: at most {MAX_SIMULATED_POSTS} over HTTP (`roost ads simulate` for more)"
            )
        return _json(await _call(lambda: _simulate(service, config)))

    return router


def _simulate(service: AdsService, config):
    """A simulated day in a database of its own, so the real campaigns and ledger are untouched."""
    import pathlib
    import tempfile

    from roost.ads.simulate import run_isolated

    with tempfile.TemporaryDirectory(prefix="roost-ads-simulate-") as tmp:
        return run_isolated(config, service.config, pathlib.Path(tmp), source=service.store)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Query-string times: one with no zone is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def create_app(service: AdsService, keys: ApiKeyStore) -> FastAPI:
    """An app serving only /ads (the demo mounts `create_router` next to the other stages')."""
    app = FastAPI(title="roost ads", version="1", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(create_router(service, keys))

    async def http_error(_: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        return _error(status, str(getattr(exc, "detail", "internal error")))

    app.add_exception_handler(StarletteHTTPException, http_error)
    return app
