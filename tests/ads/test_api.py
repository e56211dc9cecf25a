"""The /ads HTTP routes: a campaign's life through the API (create, write copy, serve, click,
report), Bearer keys, and every kind of bad request answered with a 4xx and a JSON message —
never a 500 — including random bodies thrown at every route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.ads.api import create_app
from roost.ads.config import AdsConfig
from roost.ads.schema import now_ms
from roost.ads.service import AdsService
from roost.ads.store import Store
from roost.apikeys import ApiKeyStore

CAMPAIGN = {
    "name": "spring shoes",
    "objective": "awareness",
    "bid_micros": 5_000_000,
    "daily_budget_micros": 10_000_000,
    "total_budget_micros": 100_000_000,
    "start": "2024-03-01T00:00:00Z",
    "targeting": {"keywords": ["running"], "languages": ["en"]},
    "blocked_categories": ["violence"],
    "frequency_cap": 2,
    "pacing": "asap",
    "landing_url": "https://shoes.example/spring",
}
AD = "Stride shoes: light and quick for your morning run in the park https://shoes.example/spring"


class Api:
    def __init__(self, client: TestClient, key: str, service: AdsService) -> None:
        self.client, self.headers, self.service = client, {"Authorization": f"Bearer {key}"}, service

    def call(self, method: str, path: str, **kwargs: object):
        return self.client.request(method, path, headers=self.headers, **kwargs)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    keys = ApiKeyStore(tmp_path / "keys.db")
    _, key = keys.add("test")
    service = AdsService(Store(f"sqlite:///{tmp_path / 'ads.db'}"), AdsConfig())
    with TestClient(create_app(service, keys), raise_server_exceptions=False) as client:
        yield Api(client, key, service)
    service.close()
    keys.close()


def test_a_campaign_through_the_api(api: Api) -> None:
    advertiser = api.call("POST", "/ads/advertisers", json={"name": "Stride"})
    assert advertiser.status_code == 201
    made = api.call("POST", "/ads/campaigns", json={**CAMPAIGN, "advertiser_id": advertiser.json()["id"]})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    assert api.call("GET", f"/ads/campaigns/{cid}").json()["daily_budget_micros"] == 10_000_000
    creative = api.call("POST", f"/ads/campaigns/{cid}/creatives", json={"text": AD})
    assert creative.status_code == 201, creative.text

    api.service.server.refresh(now_ms())  # what the background refresh does every few seconds
    request = {
        "request_id": "r1",
        "user_id": "u1",
        "posts": [{"id": "p1", "text": "marathon training, long run today #running"}],
        "lang": "en",
    }
    served = api.call("POST", "/ads/request", json=request).json()
    [ad] = served["ads"]
    assert ad["campaign_id"] == cid and ad["price_micros"] == 500  # alone: the reserve
    unsafe = {**request, "request_id": "r2", "posts": [{"id": "p2", "text": "two killed in running riot"}]}
    assert api.call("POST", "/ads/request", json=unsafe).json()["ads"] == []
    click = api.call("POST", "/ads/click", json={"impression_id": ad["impression_id"]}).json()
    assert click["click_id"] is not None and not click["duplicate"]
    assert api.call("POST", "/ads/click", json={"impression_id": ad["impression_id"]}).json()["duplicate"]

    paused = api.call("PATCH", f"/ads/campaigns/{cid}", json={"status": "paused"})
    assert paused.json()["status"] == "paused"
    report = api.call("GET", f"/ads/campaigns/{cid}/report", params={"since": "2020-01-01T00:00:00Z"}).json()
    assert (report["impressions"], report["clicks"], report["spent_micros"]) == (1, 1, 500)


def test_keys_are_required(api: Api) -> None:
    assert api.client.get("/ads/health").status_code == 200  # the one open route
    for headers in ({}, {"Authorization": "Bearer rk_0000000000000000_" + "x" * 43}):
        r = api.client.get("/ads/campaigns", headers=headers)
        assert r.status_code == 401 and "API key" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/ads/advertisers", b"{not json", 400, "body"),
        ("POST", "/ads/advertisers", {"name": "x", "extra": 1}, 400, "unknown field"),
        ("POST", "/ads/advertisers", {"name": ""}, 400, "1 to 200"),
        ("POST", "/ads/campaigns", {**CAMPAIGN, "advertiser_id": 99}, 404, "no advertiser 99"),
        ("POST", "/ads/campaigns", {**CAMPAIGN, "advertiser_id": 2**64}, 400, "body"),
        ("POST", "/ads/campaigns", {**CAMPAIGN, "advertiser_id": 1, "bid_micros": 1.5}, 400, "int"),
        ("POST", "/ads/campaigns", {**CAMPAIGN, "advertiser_id": 1, "bid_micros": 2**63}, 400, "at most"),
        ("POST", "/ads/campaigns", {**CAMPAIGN, "advertiser_id": 1, "start": "yesterday"}, 400, "datetime"),
        (
            "POST",
            "/ads/campaigns",
            {**CAMPAIGN, "advertiser_id": 1, "start": "2024-03-01T00:00:00"},
            400,
            "timezone",
        ),
        (
            "POST",
            "/ads/campaigns",
            {**CAMPAIGN, "advertiser_id": 1, "blocked_categories": ["x"]},
            400,
            "unknown",
        ),
        ("GET", "/ads/campaigns/abc", None, 400, "campaign_id"),
        ("GET", "/ads/campaigns/0", None, 400, "campaign_id"),
        ("GET", f"/ads/campaigns/{2**70}", None, 400, "campaign_id"),
        ("GET", "/ads/campaigns/5", None, 404, "no campaign 5"),
        ("GET", "/ads/campaigns?status=gone", None, 400, "status"),
        ("PATCH", "/ads/campaigns/1", {"spent_micros": 0}, 400, "cannot change"),
        ("PATCH", "/ads/campaigns/1", {"bid_micros": "a lot"}, 400, "int"),
        ("PATCH", "/ads/campaigns/1", [1, 2], 400, "body"),
        ("POST", "/ads/campaigns/1/creatives", {"text": "buy now"}, 400, "destination"),
        ("POST", "/ads/campaigns/1/creatives", {"text": f"Guaranteed results! {AD}"}, 400, "blocked claim"),
        ("POST", "/ads/campaigns/1/creatives/generate", {"product": "shoes"}, 503, "no model"),
        ("POST", "/ads/campaigns/1/creatives/generate", {"save": "yes"}, 400, "save"),
        ("PATCH", "/ads/creatives/1", {"status": "deleted"}, 400, "status"),
        ("GET", "/ads/campaigns/1/preview", None, 503, "no search index"),
        (
            "GET",
            "/ads/campaigns/1/report?since=2024-03-02T00:00:00Z&until=2024-03-01T00:00:00Z",
            None,
            400,
            "before",
        ),
        ("GET", "/ads/campaigns/1/report?since=soon", None, 400, "since"),
        ("POST", "/ads/request", {"request_id": "r", "user_id": "u", "count": 0}, 400, "count"),
        ("POST", "/ads/request", {"request_id": "", "user_id": "u"}, 400, "request_id"),
        ("POST", "/ads/request", {"request_id": "r", "user_id": "u", "slot": "banner"}, 400, "slot"),
        ("POST", "/ads/request", {"request_id": "r", "user_id": "u", "posts": [{"id": "p"}]}, 400, "text"),
        ("POST", "/ads/click", {"impression_id": 12345}, 404, "no impression"),
        ("POST", "/ads/click", {"impression_id": -1}, 400, "impression_id"),
        ("POST", "/ads/simulate", {"posts": 10**6}, 400, "at most"),
        ("POST", "/ads/simulate", {"posts": 10}, 400, "at least 100"),
        ("DELETE", "/ads/campaigns/1", None, 405, ""),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(
    api: Api, method: str, path: str, body: object, status: int, message: str
) -> None:
    advertiser = api.call("POST", "/ads/advertisers", json={"name": "Stride"}).json()
    assert api.call("POST", "/ads/campaigns", json={**CAMPAIGN, "advertiser_id": advertiser["id"]}).is_success
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
    r = api.call(method, path, **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error["message"] and error["type"]


ROUTES = [
    ("POST", "/ads/advertisers"),
    ("POST", "/ads/campaigns"),
    ("PATCH", "/ads/campaigns/1"),
    ("POST", "/ads/campaigns/1/creatives"),
    ("POST", "/ads/campaigns/1/creatives/generate"),
    ("PATCH", "/ads/creatives/1"),
    ("POST", "/ads/request"),
    ("POST", "/ads/click"),
]
SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
JSON = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.dictionaries(
    st.sampled_from(
        [
            *CAMPAIGN,
            "advertiser_id",
            "text",
            "status",
            "request_id",
            "user_id",
            "posts",
            "impression_id",
            "product",
            "count",
            "slot",
        ]
    ),
    JSON,
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=JSON | FIELDS)
def test_no_body_makes_a_500(api: Api, route: tuple[str, str], body: object) -> None:
    r = api.call(*route, json=body)
    assert r.status_code < 500 or r.status_code == 503, (route, body, r.text)
    if not r.is_success:
        assert r.json()["error"]["message"]
