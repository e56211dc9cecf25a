"""Fixtures for the search tests: a tiny served model (tokenizer + 2-layer Llama, from the serving
tests' builder) as embedder and generator, and a simulated corpus whose every answer is known."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.firehose.simulate import SimConfig, simulate
from roost.posts import Event, Post
from roost.search.config import SearchConfig
from roost.search.embedder import EngineEmbedder, load_embedder
from roost.search.index import SearchIndex
from roost.workspace import Workspace
from tests.serve.fixtures import RUN, build_served_workspace


@dataclass
class Model:
    ws: Workspace  # holds the run `tiny`: [search] embedder "auto" and generator "" find it
    embedder: EngineEmbedder


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Model]:
    ws = Workspace(tmp_path_factory.mktemp("search-model") / "home").ensure()
    build_served_workspace(ws)
    embedder = load_embedder(ws, str(ws.runs_dir / RUN), ws.index_dir)
    assert isinstance(embedder, EngineEmbedder)
    yield Model(ws, embedder)
    embedder.close()


@pytest.fixture(scope="session")
def sim_events() -> list[Event]:
    """3,000 simulated events (posts, replies, reposts, deletes): the known-answer corpus."""
    return list(itertools.islice(simulate(SimConfig(seed=3)), 3000))


def small_config(**overrides: object) -> SearchConfig:
    """Partitions of 1,000 posts, so a few thousand posts span several."""
    defaults = {"partition_posts": 1000, "embed_batch": 64, "vector_save_s": 3600.0, "embedder": "none"}
    return SearchConfig(**{**defaults, **overrides})


def open_index(directory: Path, embedder: EngineEmbedder | None = None, **overrides: object) -> SearchIndex:
    return SearchIndex(directory, small_config(**overrides), embedder)


def post(
    pid: str, text: str, *, minutes: int = 0, author: str = "u1", lang: str = "en", **fields: object
) -> Post:
    created = dt.datetime(2024, 3, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)
    return Post(id=pid, text=text, author_id=author, created_at=created, lang=lang, **fields)
