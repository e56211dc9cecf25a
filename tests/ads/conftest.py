"""Fixtures for the ads tests: a store on SQLite and on a real PostgreSQL (the server named by
ROOST_TEST_PG_URL, or a throwaway cluster started from Debian's postgresql binaries; see
tests/ads/postgres.py), each PostgreSQL test in a schema of its own."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from roost.ads.store import CampaignSpec, Store, Targeting
from tests.ads.postgres import postgres_server

DAY = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session (started on first use); skips, saying why, without one."""
    with postgres_server() as (url, why):
        if url is None:
            pytest.skip(why)
        print(f"PostgreSQL: {why}")
        yield url


def postgres_schema_url(server_url: str) -> Iterator[str]:
    """A fresh schema on the test server; the URL's search_path points there. Dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(sa.engine.make_url(server_url).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.engine.make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty ads database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ads.db'}"
    else:
        yield from postgres_schema_url(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite only, for tests about what sits above the store."""
    opened = Store(f"sqlite:///{tmp_path / 'ads.db'}")
    yield opened
    opened.close()


def spec(**overrides: object) -> CampaignSpec:
    """A valid campaign: $1 per click, $10 a day, $100 in all, from DAY."""
    fields: dict = {
        "name": "spring shoes",
        "bid_micros": 1_000_000,
        "daily_budget_micros": 10_000_000,
        "total_budget_micros": 100_000_000,
        "start": DAY,
        "targeting": Targeting(keywords=["running"], languages=["en"]),
        "landing_url": "https://shoes.example/spring",
    }
    fields.update(overrides)
    return CampaignSpec(**fields)


def broad(**overrides: object) -> CampaignSpec:
    """A campaign that runs everywhere (no keywords, topics or languages), bidding per 1,000."""
    fields: dict = {
        "objective": "awareness",
        "targeting": Targeting(),
        "daily_budget_micros": 10**12,
        "total_budget_micros": 10**12,
        "pacing": "asap",
    }
    fields.update(overrides)
    return spec(**fields)


def ad_server(store: Store, **config: object):
    """An AdServer over `store` with no search index or topic model (lexicon brand safety only)."""
    from roost.ads.auction import AdServer
    from roost.ads.config import AdsConfig
    from roost.ads.safety import SafetyClassifier
    from roost.ads.targeting import Targeter

    ads_config = AdsConfig(**config)
    return AdServer(store, ads_config, targeter=Targeter(ads_config, None), safety=SafetyClassifier())


@pytest.fixture(scope="session")
def tiny_engine(tmp_path_factory: pytest.TempPathFactory):
    """The serving tests' tiny model (tokenizer + 2-layer Llama trained on toy posts) in an engine."""
    from roost.serve.engine import Engine
    from roost.workspace import Workspace
    from tests.serve.fixtures import RUN, build_served_workspace

    ws = Workspace(tmp_path_factory.mktemp("ads-model") / "home").ensure()
    build_served_workspace(ws)
    engine = Engine.from_workspace(ws, RUN, max_batch=8, cuda_graphs=False)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def topic_model():
    """A topic classifier trained on 3,000 simulated posts (a few seconds)."""
    from roost.ads.topics import TopicModel, train_topics

    return TopicModel(train_topics(3000))
