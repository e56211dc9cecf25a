"""The curation pipeline end to end: outputs, threads, spam, deletes, reruns and incremental runs."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roost.curate.corpus import CORPUS_SCHEMA, read_corpus, read_manifest
from roost.curate.pipeline import curate
from roost.curate.shards import ShardSet
from roost.quarantine import read_quarantine
from roost.tokenizer import END_OF_POST, MENTION_PLACEHOLDER, URL_PLACEHOLDER
from roost.train.data import TokenWindows
from roost.workspace import Workspace
from tests.curate.handmade import chatter, delete_posts, make_post, small_config, store_posts

REQUIRED = [
    "id",
    "text",
    "author_id",
    "created_at",
    "lang",
    "declared_lang",
    "reply_to",
    "repost_of",
    "quote_of",
    "hashtags",
    "cluster_id",
]


def corpus_rows(ws: Workspace) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for batch in read_corpus(ws.corpus_dir):
        rows.update((row["id"], row) for row in batch.to_pylist())
    return rows


def special_posts(start: int) -> list:
    """Posts whose fate is known: threads with short replies, spam, a bot, PII, mentions, links."""
    n = start
    posts = []

    def add(text: str, **fields) -> str:
        nonlocal n
        post = make_post(n, text, **fields)
        posts.append(post)
        n += 1
        return post.id

    root = add("Anyone else watching the eclipse from the rooftop tonight? Bring glasses!", author="sky")
    reply = add("yes!!", author="moon", reply_to=root)
    add("😂", author="sun", reply_to=reply)
    add("ok", author="lonely")  # short and not a reply: removed
    add("no", author="orphan", reply_to="999")  # a reply whose parent is not in the corpus: removed
    add("follow for follow, check my bio for free followers", author="promo")
    add("@alice @bob @carol http://x.co/1 #tag", author="links")
    add("Hey @Alice, the slides are at https://example.com/deck.pdf (final version).", author="dana")
    add("&lt;3 this &amp; that", author="html", lang="en")
    for post in chatter(300, seed=9):  # a bot: hundreds of posts in a day, each different
        add(post.text, author="bot")
    for i in range(5):  # a copy-paste blaster: the same text again and again
        add(f"BUY CHEAP WATCHES AT OUR STORE TODAY {'!' * i}", author="blaster")
    return posts


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("pipeline") / "home").ensure()
    # The bot below posts 300 a day: a threshold that catches it without a thousand test posts.
    small_config(ws, chunk_rows=400, extra="[curate.spam]\nbot_posts_per_day = 200")
    store_posts(ws, chatter(1200, seed=1) + special_posts(5000))
    curate(ws)
    return ws


def test_corpus_has_the_columns_training_and_search_read(curated) -> None:
    for path in sorted(curated.corpus_dir.glob("part-*.parquet")):
        schema = pq.read_schema(path)
        assert schema.equals(CORPUS_SCHEMA)
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    schema = CORPUS_SCHEMA
    assert all(name in schema.names for name in REQUIRED)
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("hashtags").type == pa.list_(pa.string())
    rows = corpus_rows(curated)
    post = next(r for r in rows.values() if r["author_id"] == "dana")
    assert post["text"] == f"Hey {MENTION_PLACEHOLDER}, the slides are at {URL_PLACEHOLDER} (final version)."
    assert post["created_at"].tzinfo is not None and post["declared_lang"] == "en" and post["lang"] == "en"
    assert next(r for r in rows.values() if r["author_id"] == "html")["text"] == "<3 this & that"


def test_threads_survive_and_spam_goes(curated) -> None:
    rows = corpus_rows(curated)
    authors = {r["author_id"] for r in rows.values()}
    assert {"sky", "moon", "sun"} <= authors  # short replies in a kept thread stay
    assert not {"lonely", "orphan", "promo", "links", "bot", "blaster"} & authors
    removed = read_manifest(curated.corpus_dir)["removed"]
    assert removed["spam.most_active"] == 300
    assert removed["spam.copy_paste"] == 5
    assert removed["spam.boilerplate"] == 1
    assert removed["quality.only_links_mentions_hashtags"] == 1
    assert removed["quality.too_short"] == 2


def test_manifest_counts_add_up(curated) -> None:
    manifest = read_manifest(curated.corpus_dir)
    assert manifest["read"] == 1200 + len(special_posts(5000))
    assert manifest["posts"] + sum(manifest["removed"].values()) == manifest["read"]
    assert manifest["posts"] == len(corpus_rows(curated))
    assert manifest["tokenizer"]["sha256"] and manifest["tokens"]["train"] > 0
    assert set(manifest["generations"][0]["steps"]) >= {
        "normalize",
        "pii",
        "quality",
        "spam",
        "langid",
        "dedup",
    }


def test_tokenizer_loads_in_transformers(curated) -> None:
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(curated.tokenizer_dir))
    assert tokenizer.eos_token == END_OF_POST
    text = "thanks @user, see http for more"
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert len(tokenizer.encode(" @user")) == 1 and len(tokenizer.encode(" http")) == 1


def test_shards_hold_every_kept_post_once_split_by_id(curated) -> None:
    shards = ShardSet.open(curated.shards_dir)
    rows = corpus_rows(curated)
    seen: dict[str, str] = {}
    for split in ("train", "val"):
        for shard in shards.shards(split):
            assert shard.tokens.dtype == np.uint16 and shard.tokens[-1] == shards.eot_id
            for post_id in shard.post_ids:
                assert post_id not in seen
                seen[post_id] = split
    assert seen.keys() == rows.keys()
    assert all(rows[i]["split"] == split for i, split in seen.items())
    assert 0 < sum(s == "val" for s in seen.values()) < 0.25 * len(seen)


def test_second_run_does_nothing(curated) -> None:
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in curated.home.rglob("*") if p.is_file()}
    result = curate(curated)
    assert result.up_to_date and result.tasks_run == 0 and result.tombstoned == 0
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in curated.home.rglob("*") if p.is_file()}
    assert before == after


def test_deletes_before_and_after_curation(ws) -> None:
    small_config(ws)
    posts = chatter(600, seed=2)
    store_posts(ws, posts)
    early, late = posts[10].id, posts[20].id
    delete_posts(ws, [early])
    curate(ws)
    ids = set(corpus_rows(ws))
    assert early not in ids and late in ids
    assert all(early not in shard.post_ids for shard in ShardSet.open(ws.shards_dir).shards("train"))

    delete_posts(ws, [late])
    result = curate(ws)
    assert result.up_to_date and result.tombstoned == 1
    shards = ShardSet.open(ws.shards_dir)
    assert shards.tombstones() == {late}
    assert late not in corpus_rows(ws)  # corpus readers obey the same list
    assert curate(ws).tombstoned == 0  # listed once

    # The training loader reads every live post's tokens, in shard order, and never the deleted one.
    split = next(s for s in ("train", "val") if any(late in shard.post_ids for shard in shards.shards(s)))
    seq_len = 8
    windows = TokenWindows(shards.shards(split), seq_len, shards.tombstones())
    streams = []
    for shard in shards.shards(split):
        live = [shard.post_tokens(i) for i, post_id in enumerate(shard.post_ids) if post_id != late]
        streams.append(np.concatenate(live))
    assert windows.tokens == sum(s.size for s in streams)
    assert windows.tokens < sum(s.n_tokens for s in shards.shards(split))
    start = 0
    for stream in streams:
        count = (stream.size - 1) // seq_len
        read = [windows.example(start + i)[0] for i in range(count)]
        assert np.array_equal(np.concatenate(read), stream[: count * seq_len])
        start += count
    assert start == len(windows)


def test_incremental_run_dedups_against_the_corpus(ws) -> None:
    small_config(ws)
    first = chatter(500, seed=4)
    store_posts(ws, first)
    curate(ws)
    old = first[7]
    later = [
        make_post(9000, old.text.upper() + " !!", author="copier"),  # near copy of a curated post
        make_post(9001, old.text, author="copier2"),  # exact copy
        make_post(9002, "so true", author="fan", reply_to=old.id),  # short reply to a curated post
        *chatter(200, seed=5, start=9100),
    ]
    store_posts(ws, later)
    result = curate(ws)
    assert result.generation == 1 and result.read == len(later)
    rows = corpus_rows(ws)
    assert later[0].id not in rows and later[1].id not in rows and later[2].id in rows
    clusters = {r["id"]: r for r in pq.read_table(ws.corpus_dir / "clusters-g0001.parquet").to_pylist()}
    assert clusters[later[0].id]["cluster_id"] == old.id and clusters[later[0].id]["reason"] == "dedup.near"
    assert clusters[later[1].id]["reason"] == "dedup.exact"
    manifest = read_manifest(ws.corpus_dir)
    assert [g["generation"] for g in manifest["generations"]] == [0, 1]
    assert len(manifest["parts"]) == len(list(ws.corpus_dir.glob("part-*.parquet")))
    names = [s["name"] for s in ShardSet.open(ws.shards_dir).index["splits"]["train"]]
    assert len(names) == len(manifest["parts"]) and names == sorted(names)


def test_config_turns_steps_off(ws) -> None:
    small_config(ws, extra='steps = ["normalize"]')
    store_posts(
        ws, [make_post(1, "ok"), make_post(2, "ok"), make_post(3, "mail a@b.example.com now", lang=None)]
    )
    curate(ws)
    rows = corpus_rows(ws)
    assert len(rows) == 3  # nothing filtered, nothing deduplicated
    assert rows[make_post(3, "").id]["text"] == "mail a@b.example.com now"
    assert rows[make_post(3, "").id]["lang"] == "und"


def test_created_at_stays_utc(curated) -> None:
    rows = corpus_rows(curated)
    first = min(rows.values(), key=lambda r: r["created_at"])
    assert first["created_at"] >= dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def test_removals_go_to_quarantine_with_their_reason(ws) -> None:
    small_config(ws, extra="quarantine_sample = 1.0")
    posts = chatter(300, seed=6)
    posts += [
        make_post(900, "follow for follow, check my bio", author="promo"),
        make_post(901, "@a @b http://x.co/1 jane.doe@example.com", author="links"),
        make_post(902, posts[5].text, author="copier"),
    ]
    store_posts(ws, posts)
    with sqlite3.connect(ws.raw_dir / "raw.db") as db:  # a record that is not a Post
        db.execute("INSERT INTO posts (id, seq, data) VALUES ('broken', NULL, '{\"id\": 1')")
    curate(ws)

    records = read_quarantine(ws.quarantine_dir, "curate")
    by_reason = {r.reason.split(":")[0]: r for r in records}
    assert {"spam.boilerplate", "quality.only_links_mentions_hashtags", "dedup.exact"} <= by_reason.keys()
    assert json.loads(by_reason["read.decode_error"].record)["text"] == '{"id": 1'
    # The removed text is kept as the steps left it: scrubbed, so quarantine holds no PII either.
    links = json.loads(by_reason["quality.only_links_mentions_hashtags"].record)
    assert links["text"] == "@user http [email]" and "jane" not in links["text"]
    assert json.loads(by_reason["dedup.exact"].record)["id"] == posts[-1].id
    manifest = read_manifest(ws.corpus_dir)
    assert manifest["read"] == len(posts) + 1 and manifest["removed"]["read.decode_error"] == 1
    assert len(records) == sum(manifest["removed"].values())  # every removal, at sample 1.0
    size = (ws.quarantine_dir / "curate.jsonl").stat().st_size
    assert curate(ws).up_to_date and (ws.quarantine_dir / "curate.jsonl").stat().st_size == size
