"""The /search routes: behind the API keys, JSON errors (4xx) for bad input, and the four
features (query, suggest, trending, answer) end to end over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from roost.apikeys import ApiKeyStore
from roost.posts import Event
from roost.search.answer import Answerer
from roost.search.api import create_app
from roost.search.retrieve import Retriever
from tests.search.conftest import open_index, post


@pytest.fixture
def api(tmp_path: Path, model):
    index = open_index(tmp_path / "index", model.embedder)
    index.apply(
        [
            Event.of_post(post("p1", "night market opens at the pier #food", hashtags=["food"], lang="en")),
            Event.of_post(
                post(
                    "p2",
                    "el mercado nocturno abre en el muelle #food",
                    minutes=5,
                    hashtags=["food"],
                    lang="es",
                )
            ),
            Event.of_post(
                post(
                    "p3",
                    "pier market had the best dumplings",
                    minutes=9,
                    author="u2",
                    urls=["https://x.co/1"],
                )
            ),
        ]
    )
    keys = ApiKeyStore(tmp_path / "keys.db")
    _, key = keys.add("tests")
    retriever = Retriever(index)
    with TestClient(create_app(retriever, Answerer(retriever), keys)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client
    index.close()
    keys.close()


def test_routes_need_a_key(api) -> None:
    for bad in (None, "Bearer rk_0000000000000000_" + "x" * 43, "Basic abc"):
        headers = {} if bad is None else {"Authorization": bad}
        response = api.get(
            "/search/query", params={"q": "market"}, headers=headers | {"Authorization": bad or ""}
        )
        assert response.status_code == 401
        assert "API key" in response.json()["error"]["message"]
    assert api.get("/search/health", headers={"Authorization": ""}).status_code == 200


def test_query_with_filters_and_sorts(api) -> None:
    body = api.get("/search/query", params={"q": "market pier", "mode": "lexical"}).json()
    assert {h["post"]["id"] for h in body["hits"]} == {"p1", "p3"}
    body = api.get("/search/query", params={"hashtag": "#FOOD", "sort": "latest", "mode": "lexical"}).json()
    assert [h["post"]["id"] for h in body["hits"]] == ["p2", "p1"]
    body = api.get("/search/query", params={"q": "market", "has_links": "true", "mode": "lexical"}).json()
    assert [h["post"]["id"] for h in body["hits"]] == ["p3"]
    body = api.get("/search/query", params={"lang": "es", "until": "2024-03-01T00:06:00"}).json()
    assert [h["post"]["id"] for h in body["hits"]] == ["p2"]
    body = api.get("/search/query", params={"q": "dumplings", "author": "u2"}).json()
    assert body["hits"][0]["post"]["id"] == "p3" and body["hits"][0]["lexical_rank"] == 1


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"q": "x", "limit": "0"}, "limit"),
        ({"q": "x", "sort": "oldest"}, "sort"),
        ({"q": "x", "mode": "fuzzy"}, "mode"),
        ({"q": "x", "since": "yesterday"}, "since"),
        (
            {"q": "x", "since": "2024-03-02T00:00:00Z", "until": "2024-03-01T00:00:00Z"},
            "since must be before",
        ),
        ({"q": "   "}, "give a query"),
        ({"q": "x" * 1001}, "q"),
    ],
)
def test_bad_queries_get_400_with_a_message(api, params, says) -> None:
    response = api.get("/search/query", params=params)
    assert response.status_code == 400
    assert says in response.json()["error"]["message"]


def test_suggest_trending_and_answer(api) -> None:
    api.get("/search/query", params={"q": "pier market"})
    api.get("/search/query", params={"q": "pier market"})
    suggestions = api.get("/search/suggest", params={"prefix": "pie"}).json()
    assert suggestions[0] == {"text": "pier market", "source": "popular", "count": 2}
    assert api.get("/search/suggest", params={"prefix": "#fo"}).json()[0]["text"] == "#food"
    trends = api.get("/search/trending", params={"window_minutes": 60}).json()
    assert trends == [] or trends[0]["hashtag"] == "food"
    answer = api.post("/search/answer", json={"query": "pier market"}).json()
    assert not answer["abstained"] and answer["sentences"]
    returned = {p["post"]["id"] for p in answer["posts"]}
    assert all(s["citations"] and set(s["citations"]) <= returned for s in answer["sentences"])
    assert api.post("/search/answer", json={"query": "volcano eruption"}).json()["abstained"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"query": 3}',
        b'{"query": "x", "color": "red"}',
        b'{"query": ""}',
        b'{"query": "x", "filters": {"lang": 1}}',
    ],
)
def test_bad_answer_bodies_get_400(api, body) -> None:
    response = api.post("/search/answer", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["message"]


def test_unknown_routes_are_json_404(api) -> None:
    response = api.get("/search/nope")
    assert response.status_code == 404 and response.json()["error"]["message"]
