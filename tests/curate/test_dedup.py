"""Near-duplicate detection: edited copies are caught, distinct posts on one topic are kept."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from roost.curate.corpus import read_corpus
from roost.curate.dedup import (
    band_edges,
    greedy_clusters,
    jaccard_pairs,
    one_word_added,
    representatives,
    shingle_hashes,
    word_edges,
)
from roost.curate.pipeline import curate
from roost.workspace import Workspace
from tests.curate.handmade import chatter, make_post, small_config, store_posts

# Distinct posts about the same two things: they share words, not text.
COFFEE = [
    "best flat white in town is at the little place by the station",
    "third coffee today and it is not even noon",
    "cold brew season is officially open",
    "why does office coffee always taste like burnt cardboard",
    "tried oat milk in my latte and honestly it is better",
    "the barista drew a swan in my cappuccino",
    "espresso at 11pm was a mistake",
    "our coffee machine broke and the whole floor is in mourning",
    "decaf is a lie we tell ourselves",
    "grinding beans by hand every morning is my meditation",
    "coffee",
    "need coffee now",
    "pour over takes forever but worth it",
    "the new cafe on 5th street has great pastries and strong coffee",
    "spilled my coffee all over the keyboard, send help",
    "iced americano with extra ice please",
    "is it normal to drink five cups a day",
    "moka pot coffee reminds me of my grandmother's kitchen",
]
MATCH = [
    "what a match, they came back from two goals down",
    "the referee missed a clear penalty in the 80th minute",
    "our keeper was unreal tonight",
    "that last minute winner!",
    "can't believe we lost at home again",
    "the stadium was shaking when the second goal went in",
    "worst defending I have seen all season",
    "great game",
    "extra time and penalties, my heart can't take it",
    "the new striker already has five goals in three games",
    "ticket prices for the derby are a joke",
    "watching the game at the pub with everyone from work",
    "coach needs to make subs earlier",
    "fans sang for ninety minutes straight",
]
EMOJI = ["🔥", "😂", "⚽", "☕", "👏🏽", "❤️"]
WORDS = ["really", "honestly", "today", "again", "so", "wow"]


def edited_copies(text: str, rng: random.Random) -> list[str]:
    """The edits a copy-paster makes: case, punctuation, an added word or emoji, a changed link."""
    words = text.split()
    at = rng.randrange(len(words) + 1)
    return [
        text.upper() if rng.random() < 0.5 else text.title(),
        text.replace(",", "").replace("!", "") + "!!!",
        " ".join([*words[:at], rng.choice(WORDS), *words[at:]]),
        f"{text} {rng.choice(EMOJI)}",
        f"{text} https://t.co/{rng.randrange(10**8):08d}",
    ]


def labelled_posts() -> tuple[list[str], list[int]]:
    """Texts and, for each, the index of the original it is a copy of (itself for originals)."""
    rng = random.Random(5)
    texts, origin = [], []
    originals = COFFEE + MATCH
    for i, text in enumerate(originals):
        texts.append(f"{text} https://example.com/{i}")
        origin.append(i)
    for i, text in enumerate(originals):
        for copy in edited_copies(f"{text} https://example.com/{i}", rng):
            texts.append(copy)
            origin.append(i)
    return texts, origin


def test_short_posts_get_one_shingle() -> None:
    flat, offsets = shingle_hashes(["abcdefg", "ab", "ab", "abcde"], 5)
    assert np.diff(offsets).tolist() == [3, 1, 1, 1]
    assert flat[3] == flat[4] != flat[5]


def test_exact_jaccard_and_word_insertion() -> None:
    keys = ["great game", "great game", "abcdefgh", "zzzzzzzz", "great game honestly"]
    similarity = jaccard_pairs(keys, np.array([0, 2, 0]), np.array([1, 3, 4]), 5)
    # "great game": 6 shingles, all of them in "great game honestly" (15 shingles).
    assert similarity.tolist() == [1.0, 0.0, 6 / 15]
    assert one_word_added("great game", "great game honestly")
    assert one_word_added("great game", "great honestly game")
    assert not one_word_added("great game", "great match")
    assert not one_word_added("coffee", "coffee again")  # one word is too little to call a copy
    u, v = word_edges(
        np.array([7, 9], dtype=np.uint64),
        np.array([0, 1]),
        np.array([7, 7, 8], dtype=np.uint64),
        np.array([5, 6, 0]),
    )
    assert sorted(zip(u.tolist(), v.tolist(), strict=True)) == [(0, 5), (0, 6)]


def test_clusters_do_not_chain() -> None:
    # 0~1, 1~2 but not 0~2: 2 is not a duplicate of 0, so it keeps its own cluster.
    rep = greedy_clusters(4, np.array([0, 1, 3]), np.array([1, 2, 0]), order=np.array([0, 1, 2, 3]))
    assert rep.tolist() == [0, 0, 2, 0]
    # The order decides who represents: here 1 goes first.
    rep = greedy_clusters(3, np.array([0, 1]), np.array([1, 2]), order=np.array([1, 0, 2]))
    assert rep.tolist() == [1, 1, 1]


def test_exact_groups_are_transitive_near_pairs_are_not() -> None:
    # Posts 1 and 4 are the same text; 0 is near 1; 2 is near 3; post 4 has the best rank.
    rank = np.array([1, 2, 3, 4, 0, 5])
    rep = representatives(6, (np.array([1]), np.array([4])), (np.array([0, 2]), np.array([1, 3])), rank)
    assert rep.tolist() == [4, 4, 2, 2, 4, 5]


def test_band_edges_small_buckets_pair_everyone_big_ones_star() -> None:
    values = np.array([9, 4, 9, 4, 9, 1], dtype=np.uint64)
    keys = np.array([50, 10, 20, 30, 40, 60])
    order = np.array([5, 1, 2, 3, 4, 6], dtype=np.uint64)
    u, v = band_edges(values, keys, order)
    assert sorted(zip(u.tolist(), v.tolist(), strict=True)) == [(10, 30), (20, 40), (20, 50), (40, 50)]
    u, v = band_edges(values, keys, order, clique_max=2)
    assert sorted(zip(u.tolist(), v.tolist(), strict=True)) == [(10, 30), (20, 40), (20, 50)]


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list[str], list[int]]:
    """The labelled posts among chatter, curated: copies reach the raw store before their originals,
    but originals have the lower ids, so the lowest id wins rather than the first to arrive."""
    ws = Workspace(tmp_path_factory.mktemp("dedup") / "home").ensure()
    texts, origin = labelled_posts()
    posts = chatter(600, seed=11)
    base = len(posts)
    for i in reversed(range(len(texts))):
        posts.append(make_post(base + i, texts[i], author=f"writer{i}"))
    small_config(ws, chunk_rows=250)
    store_posts(ws, posts)
    curate(ws)
    return ws, [make_post(base + i, "").id for i in range(len(texts))], origin


def test_near_duplicates_precision_and_recall(curated) -> None:
    ws, post_ids, origin = curated
    clusters = {
        row["id"]: row["cluster_id"]
        for row in pq.read_table(ws.corpus_dir / "clusters-g0000.parquet").to_pylist()
    }
    label = [clusters.get(post_id, post_id) for post_id in post_ids]
    pairs = list(itertools.combinations(range(len(post_ids)), 2))
    true_pairs = {(i, j) for i, j in pairs if origin[i] == origin[j]}
    found_pairs = {(i, j) for i, j in pairs if label[i] == label[j]}
    precision = len(true_pairs & found_pairs) / max(len(found_pairs), 1)
    recall = len(true_pairs & found_pairs) / len(true_pairs)
    originals = len(COFFEE + MATCH)
    caught = sum(label[i] == post_ids[origin[i]] for i in range(originals, len(post_ids)))
    print(
        f"near-dup pairs: precision {precision:.3f} recall {recall:.3f}; "
        f"copies caught {caught}/{len(post_ids) - originals}"
    )
    assert len({label[i] for i in range(originals)}) == originals, "distinct posts on one topic were merged"
    assert recall >= 0.95
    assert precision >= 0.95


def test_the_lowest_id_is_kept_and_cluster_ids_point_at_it(curated) -> None:
    ws, post_ids, origin = curated
    kept = {}
    for batch in read_corpus(ws.corpus_dir, ["id", "cluster_id"]):
        kept.update(zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True))
    originals = len(COFFEE + MATCH)
    assert all(kept.get(post_ids[i]) == post_ids[i] for i in range(originals))
    rows = pq.read_table(ws.corpus_dir / "clusters-g0000.parquet").to_pylist()
    by_id = {row["id"]: row for row in rows}
    for i in range(originals, len(post_ids)):
        row = by_id.get(post_ids[i])
        if row is not None and row["cluster_id"] == post_ids[origin[i]]:
            assert post_ids[i] not in kept and row["reason"].startswith("dedup.")
    # Every clustered post names a cluster whose kept post is in the corpus.
    assert all(row["cluster_id"] in kept for row in rows)
