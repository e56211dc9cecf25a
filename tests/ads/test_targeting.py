"""Targeting through the search index: a campaign's live conversations are the recent posts its
keywords, topics and brief find (lexical and dense, fused); a reply in such a conversation
matches with no keyword of its own; previews show which conversations brand safety rules out;
users' interests come from their own posts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from roost.ads.config import AdsConfig
from roost.ads.profiles import UserProfiles
from roost.ads.safety import SafetyClassifier
from roost.ads.service import AdsService
from roost.ads.store import Store, Targeting, to_ms
from roost.ads.targeting import Context, ContextPost, Targeter, Targets
from roost.posts import Event, Post
from roost.search.config import SearchConfig
from roost.search.embedder import EngineEmbedder
from roost.search.index import SearchIndex
from roost.search.retrieve import Retriever
from tests.ads.conftest import DAY, spec

NOW = DAY + dt.timedelta(hours=12)
POSTS = [
    ("run1", "ana", "en", "Long run this morning, marathon training is going well #running"),
    ("run2", "ben", "en", "New trail running shoes feel great on the hills"),
    ("run3", "eva", "es", "Entrenando para el maratón de Madrid #running"),
    ("foot1", "carl", "en", "What a derby, the referee lost the plot #matchday"),
    ("foot2", "carl", "en", "The title race is on after the derby win, football is back"),
    ("foot3", "carl", "en", "Transfer window rumours about the new manager and the midfield"),
    ("flood", "news", "en", "Flooding after the storm: runners told to avoid the river path #running"),
    ("cake", "dan", "en", "Baked sourdough and a lemon cake today"),
    ("old", "ana", "en", "An old post about marathon running from last week"),
]


def _post(
    pid: str, author: str, lang: str, text: str, *, reply_to: str | None = None, hours: float = 1.0
) -> Post:
    created = NOW - dt.timedelta(hours=200 if pid == "old" else hours)
    return Post(id=pid, text=text, author_id=author, created_at=created, lang=lang, reply_to=reply_to)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, tiny_engine) -> Iterator[SearchIndex]:
    config = SearchConfig(partition_posts=1000, embed_batch=64, vector_save_s=3600.0, embedder="none")
    opened = SearchIndex(
        tmp_path_factory.mktemp("ads-index") / "index", config, EngineEmbedder(tiny_engine, "tiny")
    )
    opened.apply([Event(type="post", id=p[0], post=_post(*p)) for p in POSTS])
    assert opened.wait_dense(60)
    yield opened
    opened.close()


def campaign(store: Store, **targeting) -> object:
    advertiser = store.add_advertiser(f"a{len(store.advertisers())}")
    return store.add_campaign(
        advertiser.id, spec(targeting=Targeting(**targeting), blocked_categories=["disasters"])
    )


def test_live_conversations_come_from_the_index(local_store: Store, index: SearchIndex) -> None:
    targeter = Targeter(AdsConfig(targeting_min_similarity=-1.0), Retriever(index, log_queries=False))
    runners = Targets(
        campaign(local_store, keywords=["marathon", "#running"], languages=["en"], brief="running shoes")
    )
    hits = targeter.search(runners, to_ms(NOW), 20)
    ids = [h.post.id for h in hits]
    assert set(ids[:3]) == {"run1", "run2", "flood"}  # the keyword posts first
    assert "run3" not in ids  # Spanish: the campaign speaks English
    assert "old" not in ids  # older than the targeting window
    assert any(h.dense_rank is not None for h in hits)  # the brief's embedding took part
    assert all(h.post.lang == "en" for h in hits)


def test_a_reply_in_a_targeted_conversation_matches_without_keywords(
    local_store: Store, index: SearchIndex
) -> None:
    config = AdsConfig()
    targeter = Targeter(config, Retriever(index, log_queries=False))
    football = campaign(local_store, keywords=["derby"], languages=["en"])
    targeter.update([football])
    assert targeter.refresh(to_ms(NOW)) == 1
    safety = SafetyClassifier()

    def context(*posts: ContextPost) -> Context:
        return Context(posts, "", topics=None, safety=safety, topic_threshold=config.topic_threshold)

    reply = ContextPost(id="r9", text="agreed, unbelievable scenes", reply_to="foot1")
    assert targeter.targets[football.id].match(context(reply)).kind == "conversation"
    fresh = ContextPost(id="new", text="Derby day tomorrow!")  # newer than the last search: by keyword
    assert targeter.targets[football.id].match(context(fresh)).kind == "keyword"
    assert targeter.targets[football.id].match(context(ContextPost(id="x", text="lemon cake"))) is None
    assert targeter.refresh(to_ms(NOW) + 60_000) == 0  # not due again yet


def test_preview_shows_what_brand_safety_rules_out(local_store: Store, index: SearchIndex) -> None:
    service = AdsService(local_store, AdsConfig(), index=index)
    made = campaign(local_store, keywords=["#running"], languages=["en"])
    hits = {h.post.id: h for h in service.preview(made.id, now_ms=to_ms(NOW))}
    assert hits["flood"].blocked and hits["flood"].categories == ["disasters"]
    assert not hits["run1"].blocked and hits["run1"].categories == []


def test_interests_come_from_a_users_own_posts(index: SearchIndex, topic_model) -> None:
    profiles = UserProfiles(Retriever(index, log_queries=False), topic_model)
    assert profiles.interests("carl", to_ms(NOW)) == ["football"]
    assert profiles.interests("nobody", to_ms(NOW)) == []
