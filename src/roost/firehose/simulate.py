"""The simulated platform: roost's built-in source of posts, so every stage runs with no data.

`simulate(config)` yields an endless, deterministic stream of Events in `created_at` order: original
posts arriving with a daily rhythm, replies forming threads several turns deep, reposts and quotes,
trending bursts, spam campaigns and copy-paste, and later deletions of some of those posts. The
world behind it (users with hidden interests, topics and their vocabularies) is `Simulator.world`;
`Simulator.labelled()` pairs each post with its hidden truth (topic, act, stance, copy of what).
How each part is modelled, and why, is in docs/simulator.md.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import math
import random
from array import array
from collections.abc import Iterable, Iterator
from typing import Annotated

import msgspec
import numpy as np

from roost.firehose import sim_dialogue as dialogue
from roost.firehose.sim_copies import Copy, Copyable, near_copy
from roost.firehose.sim_text import Composer, Item
from roost.firehose.sim_world import PERSONAS, World
from roost.firehose.simdata import people
from roost.firehose.simdata.topics import TOPICS
from roost.posts import Event, Metrics, Post

UtcDatetime = Annotated[dt.datetime, msgspec.Meta(tz=True)]

#: Twitter's snowflake epoch (2010-11-04T01:42:54.657Z): ids are (ms since it) << 22 | worker | sequence.
SNOWFLAKE_EPOCH_MS = 1288834974657
SOURCE = "simulate"
#: Shards share the snowflake's 10 worker bits, so each needs at least one of their values.
_MAX_SHARDS = 64


class SimConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The `[simulate]` section of roost.toml. docs/simulator.md explains every knob."""

    seed: int = 1
    start: UtcDatetime = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    posts_per_day: float = 50_000.0
    users: int = 20_000
    languages: dict[str, float] = msgspec.field(
        default_factory=lambda: {"en": 0.55, "es": 0.2, "fr": 0.12, "de": 0.13}
    )
    lang_missing_rate: float = 0.02
    lang_wrong_rate: float = 0.015
    activity_zipf_exponent: float = 1.0
    activity_zipf_offset: float = 10.0
    topic_concentration: float = 1.5
    bot_fraction: float = 0.01
    reply_rate: float = 0.45
    thread_decay: float = 0.85
    max_thread_depth: int = 16
    reply_delay_s: float = 900.0
    repost_rate: float = 0.2
    quote_rate: float = 0.05
    delete_rate: float = 0.025
    spam_delete_rate: float = 0.6
    delete_delay_s: float = 4 * 3600.0
    copy_rate: float = 0.015
    near_copy_share: float = 0.5
    spam_campaigns_per_day: float = 10.0
    spam_campaign_size: float = 25.0
    trends_per_day: float = 3.0
    trend_share: float = 0.03
    trend_halflife_s: float = 3600.0
    hashtag_rate: float = 0.3
    emoji_rate: float = 0.25
    url_rate: float = 0.05
    mention_rate: float = 0.04
    #: Independent sub-streams of the same world, merged by time; `roost simulate --workers` runs
    #: them in parallel processes. Part of what decides the output, like the seed.
    shards: int = 1

    def __post_init__(self) -> None:
        for name in (
            "posts_per_day",
            "reply_delay_s",
            "delete_delay_s",
            "trend_halflife_s",
            "spam_campaign_size",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in (
            "lang_missing_rate",
            "lang_wrong_rate",
            "bot_fraction",
            "delete_rate",
            "spam_delete_rate",
            "copy_rate",
            "near_copy_share",
            "hashtag_rate",
            "emoji_rate",
            "url_rate",
            "mention_rate",
            "thread_decay",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability; got {getattr(self, name)}")
        if not 1 <= self.shards <= _MAX_SHARDS:
            raise ValueError(f"shards must be between 1 and {_MAX_SHARDS}, got {self.shards}")
        if not self.languages or any(share <= 0 for share in self.languages.values()):
            raise ValueError(
                f"languages needs at least one language with a positive share, got {self.languages}"
            )


class PostTruth(msgspec.Struct, frozen=True):
    """What the simulator knows about a post and the post does not say."""

    kind: str  # original | reply | repost | quote | trend | spam | copy
    act: str  # dialogue act (sim_dialogue), "repost" for reposts
    topic: str
    lang: str  # the language it is really written in (Post.lang is what the platform declared)
    stance: int  # +1 / -1
    focus: str  # key of what it is about (an entity's name, or a topic noun)
    depth: int  # 0 for a thread's root
    root: str  # id of the thread's root post
    author_persona: str
    is_spam: bool = False
    copy_of: str | None = None  # the post whose text this one copies
    copy_change: str | None = None  # "exact", or the change a near copy made
    trend: str | None = None  # the trend hashtag, for posts a trend caused


class Trend(msgspec.Struct, frozen=True):
    """A trending burst: a topic's entity suddenly talked about, with its own hashtag."""

    topic: str
    entity: str
    hashtag: str
    lang: str | None  # None: everyone, else only that language's users
    start: dt.datetime
    posts: int


class Simulator:
    """A seeded simulated platform. Iterating it yields the same Events every time."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.world = World(self.config)
        self.trends: list[Trend] = []  # the latest run's trends so far, in order

    def __iter__(self) -> Iterator[Event]:
        if self.config.shards == 1:
            return self._runs([0], labelled=False)[0].events()
        return (event for _, _, event, _ in self.shard_stream(range(self.config.shards)))

    def labelled(self) -> Iterator[tuple[Event, PostTruth | None]]:
        """Events with the hidden truth of each post (None for delete events)."""
        for _, _, event, truth in self.shard_stream(range(self.config.shards), labelled=True):
            yield event, truth

    def shard_stream(
        self, shards: Iterable[int], labelled: bool = False
    ) -> Iterator[tuple[int, int, Event, PostTruth | None]]:
        """(time in ms, shard, event, truth) of the given shards, merged by time, then shard.

        A shard is a run of its own (its own random streams and snowflake worker bits) at
        1/`shards` of every rate, over the shared world; merged, they are one platform. Merging any
        subsets the same way gives the same order, which is what lets processes run them apart.
        """
        shards = list(shards)
        runs = self._runs(shards, labelled)

        def tagged(run: _Run, shard: int) -> Iterator[tuple[int, int, Event, PostTruth | None]]:
            for event in run.events():
                yield run.now, shard, event, run.truth

        if len(runs) == 1:
            return tagged(runs[0], shards[0])
        # Heads of different shards never tie on (time, shard), so events themselves are never compared.
        return heapq.merge(*(tagged(run, shard) for run, shard in zip(runs, shards, strict=True)))

    def _runs(self, shards: list[int], labelled: bool) -> list[_Run]:
        self.trends = []  # the runs' trends, as they start
        if len(set(shards)) != len(shards) or not all(0 <= shard < self.config.shards for shard in shards):
            raise ValueError(f"shards {shards}: each once, each one of this config's {self.config.shards}")
        return [_Run(self, labelled, shard, self.trends) for shard in shards]

    def originals_per_day(self) -> float:
        """The arrival rate of new threads that makes all posts together arrive at `posts_per_day`."""
        return _originals_per_day(self.config, self.world)


def simulate(config: SimConfig | None = None) -> Iterator[Event]:
    """An endless stream of simulated Events in time order; the same for the same config."""
    return iter(Simulator(config))


# -- the run ---------------------------------------------------------------------------------

_DELETE, _REPLY, _REPOST, _QUOTE, _TREND, _SPAM = range(6)
_BLOCK = 4096
_ACTS = dialogue.ORIGINAL_ACTS
_FOREVER = 2**62
_UTC = dt.UTC
_from_timestamp = dt.datetime.fromtimestamp


class _Node(msgspec.Struct, gc=False):
    """A post as later posts see it: what replies answer, reposts copy and copiers take.

    A msgspec Struct rather than a class with `__init__`: one is made per post, and a Struct is
    built in C at half the cost. Nodes never form reference cycles (a node points at its post and
    focus, never back), so the garbage collector need not track them (gc=False).
    """

    id: str
    author: int
    lang: int
    topic: int
    focus: Item
    stance: int
    act: str
    depth: int
    root: str  # id of the thread's root (a root's own id)
    parent_author: int  # -1 for a thread's root
    until: int = _FOREVER  # when it is deleted (ms)
    post: Post | None = None  # set once written: its text, entities and declared language


class _Trend:
    __slots__ = ("focus_index", "heat", "lang", "tag", "topic")

    def __init__(self, topic: int, focus_index: tuple[str, int], lang: int, tag: str) -> None:
        self.topic = topic
        self.focus_index = focus_index
        self.lang = lang
        self.tag = tag
        self.heat = 1.5  # trending posts draw more replies and reposts


class _Campaign:
    __slots__ = ("bots", "delete_at", "focus", "lang", "source", "topic")

    def __init__(
        self, bots: list[int], lang: int, topic: int, focus: Item, source: Copy, delete_at: int
    ) -> None:
        self.bots = bots
        self.lang = lang
        self.topic = topic
        self.focus = focus
        self.source = source
        self.delete_at = delete_at  # 0 when the platform never cleans it up


class _Run:
    """One pass over the stream. All randomness comes from the seed, so every pass is the same.

    `events()` yields Events; `now` holds the time of the latest one (ms since the epoch), and
    with `labelled`, `truth` its PostTruth. Shard `shard` of `config.shards` runs at that share of
    every rate, with random streams of its own.
    """

    def __init__(self, sim: Simulator, labelled: bool, shard: int, trends: list[Trend]) -> None:
        self.config = config = sim.config
        self.world = world = sim.world
        self.labelled = labelled
        self.truth: PostTruth | None = None
        self.now = 0
        shards = config.shards
        entropy = [config.seed, 0x52554E] if shards == 1 else [config.seed, 0x52554E, shards, shard]  # "RUN"
        seeds = np.random.SeedSequence(entropy).spawn(4)
        self.np_arrivals = np.random.default_rng(seeds[0])
        self.np_draws = np.random.default_rng(seeds[1])
        self.np_events = np.random.default_rng(seeds[2])
        # The grammar makes many small choices per post: Python's Random.random() is cheaper per draw
        # than indexing numpy arrays, and Python guarantees its sequence across versions.
        self.rand = random.Random(int(seeds[3].generate_state(1)[0])).random
        # Continuous draws come in numpy batches, one stream per use.
        self._normals = self._lognormals(None)
        self._reply_delay = self._lognormals(1.3)
        self._share_delay = self._lognormals(1.3)
        self._delete_delay = self._lognormals(1.5)
        self._views = self._lognormals(0.5)
        self._likes = self._lognormals(0.8)
        self._rows = self._post_rows()
        self._speaker_draws = [
            self._user_draws(world.speakers[i], world.speakers_cum[i]) for i in range(len(world.languages))
        ]
        self._mention_draws = self._user_draws(np.arange(len(world.user_ids)), np.cumsum(world.activity))
        handles = world.handles
        self.composer = Composer(world.grammars, self.rand, lambda: handles[next(self._mention_draws)])
        self.start_ms = int(config.start.timestamp() * 1000)
        # The snowflake's worker bits are fixed per seed, and rise with the shard, so that ids
        # still rise within a millisecond when the shards are merged by (time, shard).
        per_shard = 1024 // shards
        self.worker_bits = (((config.seed * 2654435761) % per_shard) * shards + shard) << 12
        self.last_ms = -1
        self.sequence = 0
        self.heap: list[tuple] = []
        self.order = itertools.count()  # breaks ties between events due at the same millisecond
        self.recent: list[_Node] = []  # a sample of recent originals, for copy-paste
        self.trends = trends
        self.originals_per_day = _originals_per_day(config, world) / shards
        self.trends_per_day = config.trends_per_day / shards  # each as large as on the whole platform
        self.campaigns_per_day = config.spam_campaigns_per_day / shards
        self.intensity, self.region_cum = _daily_rhythm(world)
        self.next_trend = self.start_ms + self._exp_ms(self.trends_per_day)
        self.next_campaign = self.start_ms + self._exp_ms(self.campaigns_per_day)
        self.delete_rate = np.where(world.is_bot, config.spam_delete_rate, config.delete_rate).tolist()
        self.popularity = world.popularity.tolist()
        # Per topic, every user's affinity: array lookups are far cheaper than numpy indexing.
        self.affinity_by_topic = [array("d", column.tobytes()) for column in world.affinity.T]
        self.followers = world.followers.tolist()
        self.casual = world.casual_style.tolist()
        self.user_ids = world.user_ids
        self.handles = handles
        self.languages = world.languages
        self.language_cum = np.cumsum(world.language_share).tolist()  # a trend for everyone picks by these
        # Attention a post gets beyond its author's reach: popular topics draw more (sqrt of the
        # topic's weight), and 0.78 = exp(-0.7²/2) makes the lognormal noise's mean 1.
        weights = np.array([topic.weight for topic in world.topics])
        self.heat = (0.78 * np.sqrt(weights / np.average(weights, weights=weights))).tolist()
        self.max_depth = config.max_thread_depth
        self.decay = [config.thread_decay**depth for depth in range(config.max_thread_depth + 1)]
        # Per act, looked up once per post: rates, link chances, reply delays.
        self.reply_rate = {act: config.reply_rate * factor for act, factor in dialogue.REPLY_FACTOR.items()}
        self.repost_rate = {a: config.repost_rate * dialogue.REPOST_FACTOR.get(a, 0.2) for a in _ALL_ACTS}
        self.quote_rate = {a: config.quote_rate * dialogue.QUOTE_FACTOR.get(a, 0.2) for a in _ALL_ACTS}
        self.url_rate = {a: _URL_RATE.get(a, config.url_rate) for a in _ALL_ACTS}
        # Someone answering a reply to their own post is quicker than a stranger.
        self.reply_delay_ms = {
            a: config.reply_delay_s * 1000 * (0.4 if dialogue.BACK.get(a, 0.0) > 0.5 else 1.0)
            for a in _ALL_ACTS
        }
        self.delete_delay_ms = config.delete_delay_s * 1000
        self.hashtag_rate = config.hashtag_rate
        self.emoji_rate = config.emoji_rate
        self.mention_rate = config.mention_rate
        # A declared language is right when a uniform draw lands at or above these (see _declared_lang).
        self.lang_right_from = config.lang_missing_rate + config.lang_wrong_rate
        self.lang_right_from_short = 3.0 * config.lang_missing_rate + config.lang_wrong_rate
        self.spam_topics = [
            i for i, t in enumerate(world.topics) if "product" in t.entities or "brand" in t.entities
        ]

    # -- random streams ----------------------------------------------------------------------
    def _lognormals(self, sigma: float | None) -> Iterator[float]:
        """Endless exp(sigma·Z) draws, Z standard normal (plain Z when sigma is None)."""
        while True:
            z = self.np_draws.standard_normal(1 << 14)
            yield from (z if sigma is None else np.exp(sigma * z)).tolist()

    def _user_draws(self, members: np.ndarray, cum: np.ndarray) -> Iterator[int]:
        """Endless activity-weighted draws of user indices among `members`."""
        if len(members) == 0:
            raise ValueError("a language has no users; raise `users` or that language's share")
        while True:
            picks = np.searchsorted(cum, self.np_draws.random(1 << 12) * cum[-1], side="right")
            yield from members[np.minimum(picks, len(members) - 1)].tolist()

    def _post_rows(self) -> Iterator[tuple[tuple[float, ...], tuple[float, ...], float]]:
        """Endless (tail, fate, luck) draws for a reply, quote or trend post: the uniforms `_write`
        and `_fate` read, and the lognormal luck in its attention. One numpy row per post costs
        less than a dozen scalar draws."""
        draws = self.np_draws
        sigma = np.array([[1.5], [0.5], [0.8]])  # deletion delay, views, likes
        while True:
            tail = draws.random((6, _BLOCK)).tolist()
            fate = [
                *draws.random((2, _BLOCK)).tolist(),
                *np.exp(sigma * draws.standard_normal((3, _BLOCK))).tolist(),
            ]
            luck = np.exp(0.7 * draws.standard_normal(_BLOCK)).tolist()
            yield from zip(zip(*tail, strict=True), zip(*fate, strict=True), luck, strict=True)

    def _exp_ms(self, per_day: float) -> int:
        if per_day <= 0:
            return _FOREVER
        return int(self.np_events.exponential(86_400_000 / per_day))

    def _poisson(self, lam: float) -> int:
        """A Poisson draw by inverting its CDF with one uniform (a normal for large means)."""
        if lam > 30.0:
            return max(0, round(lam + math.sqrt(lam) * next(self._normals)))
        u = self.rand()
        p = math.exp(-lam)
        if u <= p:  # most posts draw none: decide that without the loop
            return 0
        k, cdf = 0, p
        while u > cdf and p > 0.0:
            k += 1
            p *= lam / k
            cdf += p
        return k

    # -- originals: arrival times with a daily rhythm, authors by region and activity -----------
    def _originals(self) -> Iterator[tuple]:
        """Endless originals in time order, drawn in numpy blocks: who posts what, and its fate.

        Each is (t, author, lang, topic, act, casual, hashtags, url, emoji, cc, attention, fate);
        see `_fate` for the fate tuple, drawn here for a whole block at once.
        """
        world, config = self.world, self.config
        cum_intensity = np.concatenate([[0.0], np.cumsum(self.intensity)])  # 1441 points, ends at 1440
        region_cum = self.region_cum
        act_cum = np.array([[p.acts.get(a, 0.0) for a in _ACTS] for p in PERSONAS])
        act_cum = np.cumsum(act_cum / act_cum.sum(axis=1, keepdims=True), axis=1)
        spam = _ACTS.index("spam")
        by_act = {  # per act (an index into _ACTS)
            "url": np.array([_URL_RATE.get(a, config.url_rate) for a in _ACTS]),
            "cc": np.array([a in _CC_ACTS for a in _ACTS]),
            "replies": np.array([self.reply_rate[a] if self.max_depth > 0 else 0.0 for a in _ACTS]),
            "reposts": np.array([0.0 if a == "spam" else self.repost_rate[a] for a in _ACTS]),
            "quotes": np.array([0.0 if a == "spam" else self.quote_rate[a] for a in _ACTS]),
        }
        popularity, followers = world.popularity, world.followers
        delete_rate = np.array(self.delete_rate)
        heat = np.array(self.heat)
        rate_per_minute = self.originals_per_day / 1440.0
        clock = 0.0  # operational time: minutes of a constant-rate Poisson process
        rng, draws = self.np_arrivals, self.np_draws
        while True:
            # Time rescaling: a constant-rate process mapped through the inverse of the cumulative
            # daily intensity is a Poisson process with that intensity.
            clock_at = clock + np.cumsum(rng.exponential(1.0 / rate_per_minute, _BLOCK))
            clock = float(clock_at[-1])
            day = np.floor(clock_at / 1440.0)
            minute = np.interp(clock_at - day * 1440.0, cum_intensity, np.arange(1441))
            t_ms = self.start_ms + np.round((day * 1440.0 + minute) * 60_000.0).astype(np.int64)
            minute_index = np.minimum(minute.astype(np.int64), 1439)
            region = (region_cum[minute_index] < rng.random(_BLOCK)[:, None]).sum(axis=1)
            region = np.minimum(region, len(world.regions) - 1)
            author = np.empty(_BLOCK, dtype=np.int64)
            u = rng.random(_BLOCK)
            for r, reg in enumerate(world.regions):
                mask = region == r
                if mask.any():
                    picks = np.searchsorted(reg.cum_activity, u[mask] * reg.cum_activity[-1], side="right")
                    author[mask] = reg.users[np.minimum(picks, len(reg.users) - 1)]
            secondary = world.secondary[author]
            lang = np.where((secondary >= 0) & (rng.random(_BLOCK) < 0.15), secondary, world.primary[author])
            topic = (world.affinity_cum[author] < rng.random(_BLOCK)[:, None] * 0.999999).sum(axis=1)
            act = (act_cum[world.persona[author]] < rng.random(_BLOCK)[:, None]).sum(axis=1)
            act = np.minimum(act, len(_ACTS) - 1)
            # What the text carries (spam carries what its own pieces say).
            writes = act != spam
            casual = draws.random(_BLOCK) < world.casual_style[author]
            tagged = writes & (draws.random(_BLOCK) < config.hashtag_rate)
            roll = draws.random(_BLOCK)
            hashtags = np.where(tagged, np.where(roll < 0.6, 1, np.where(roll < 0.9, 2, 3)), 0)
            url = writes & (draws.random(_BLOCK) < by_act["url"][act])
            emoji = writes & (draws.random(_BLOCK) < config.emoji_rate)
            cc = by_act["cc"][act] & (draws.random(_BLOCK) < config.mention_rate)
            # The fate: attention (the author's reach, the topic's heat, luck) drives replies, shares, views.
            attention = popularity[author] * heat[topic] * np.exp(0.7 * draws.standard_normal(_BLOCK))
            delete_at = np.where(
                draws.random(_BLOCK) < delete_rate[author],
                t_ms
                + 1000
                + (self.delete_delay_ms * np.exp(1.5 * draws.standard_normal(_BLOCK))).astype(np.int64),
                _FOREVER,
            )
            replies = draws.poisson(np.minimum(by_act["replies"][act] * attention, 200.0))
            reposts = draws.poisson(np.minimum(by_act["reposts"][act] * attention, 300.0))
            quotes = draws.poisson(np.minimum(by_act["quotes"][act] * attention, 100.0))
            # Views scale with the author's followers and the post's luck, not with popularity again.
            views = (
                followers[author]
                * 0.3
                * (attention / popularity[author])
                * np.exp(0.5 * draws.standard_normal(_BLOCK))
            )
            likes_share = 0.02 * np.exp(0.8 * draws.standard_normal(_BLOCK))
            fates = zip(
                delete_at.tolist(),
                replies.tolist(),
                reposts.tolist(),
                quotes.tolist(),
                views.tolist(),
                likes_share.tolist(),
                draws.random(_BLOCK).tolist(),
                strict=True,
            )
            yield from zip(
                t_ms.tolist(),
                author.tolist(),
                lang.tolist(),
                topic.tolist(),
                [_ACTS[a] for a in act.tolist()],
                casual.tolist(),
                hashtags.tolist(),
                url.tolist(),
                emoji.tolist(),
                cc.tolist(),
                attention.tolist(),
                fates,
                strict=True,
            )

    # -- the merged stream -------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        """Originals and everything scheduled (replies, shares, trends, spam, deletes), by time."""
        heap = self.heap
        heappop = heapq.heappop
        reply, original = self._reply, self._original
        handlers = {
            _REPOST: self._repost,
            _QUOTE: self._quote,
            _TREND: self._trend_post,
            _SPAM: self._spam_copy,
        }
        originals = self._originals()
        upcoming = next(originals)
        special = min(self.next_trend, self.next_campaign)
        while True:
            t_next = upcoming[0]
            from_heap = heap and heap[0][0] <= t_next
            if from_heap:
                t_next = heap[0][0]
            if special <= t_next:
                if self.next_trend <= self.next_campaign:
                    # Trends start when people are awake: thin the candidates by the daily rhythm.
                    minute = (self.next_trend - self.start_ms) // 60_000 % 1440
                    if self.rand() * self.intensity.max() < self.intensity[minute]:
                        self._start_trend(self.next_trend)
                    self.next_trend += max(1, self._exp_ms(self.trends_per_day))
                else:
                    self._start_campaign(self.next_campaign)
                    self.next_campaign += max(1, self._exp_ms(self.campaigns_per_day))
                special = min(self.next_trend, self.next_campaign)
                continue
            if not from_heap:
                row = upcoming
                upcoming = next(originals)
                self.now = t_next
                yield original(*row)
                continue
            t, _, kind, subject, act = heappop(heap)
            self.now = t
            if kind == _REPLY:
                yield reply(t, subject, act)
            elif kind == _DELETE:
                self.truth = None
                yield Event("delete", subject)
            else:
                yield handlers[kind](t, subject)

    def _push(self, t: int, kind: int, subject: object, act: str | None = None) -> None:
        heapq.heappush(self.heap, (t, next(self.order), kind, subject, act))

    # -- posts -------------------------------------------------------------------------------
    def _original(
        self,
        t: int,
        author: int,
        lang: int,
        topic: int,
        act: str,
        casual: bool,
        hashtags: int,
        url: bool,
        emoji: bool,
        cc: bool,
        attention: float,
        fate: tuple,
    ) -> Event:
        rand, composer = self.rand, self.composer
        if act == "spam":  # bots sell things, whatever their topic
            topic = self.spam_topics[int(rand() * len(self.spam_topics))]
            focus: Item | None = _spam_focus(composer, lang, topic)
        elif self.recent and rand() < self.config.copy_rate:
            return self._human_copy(t, author)
        elif act == "opinion" or act == "question":
            focus = composer.pick_focus(lang, topic)
        elif act == "news" or act == "promo":
            entity = self.world.entity_of[author]
            focus = _own_entity(composer, lang, topic, entity) if entity is not None else None
        elif act == "ask_rec":
            focus = composer.pick_entity(lang, topic, composer.need_kind(lang, topic))
        else:
            focus = None  # an experience clause names what it is about
        stance = 1 if rand() < dialogue.POSITIVE_SHARE[act] else -1
        composer.begin(lang, topic, focus, stance)
        text = composer.compose(act, casual, None, hashtags, url, emoji, cc, None)
        node = self._node(t, author, lang, topic, act, stance, None)
        event = self._publish(t, node, text, fate, None, None)
        if act == "spam":
            self.truth = self._truth("spam", node) if self.labelled else None
            return event
        self._remember(node)
        self.truth = self._truth("original", node) if self.labelled else None
        return event

    def _reply(self, t: int, parent: _Node, act: str) -> Event:
        rand, composer = self.rand, self.composer
        author = self._reply_author(parent, act)
        stance = dialogue.reply_stance(act, parent.stance, rand())
        focus = parent.focus
        if act == "recommend":  # something else of the kind the parent asked about
            composer.begin(parent.lang, parent.topic, focus, stance)
            focus = composer.second_item(focus)
        composer.begin(parent.lang, parent.topic, focus, stance)
        handle = self.handles[parent.author] if author != parent.author and rand() < 0.88 else None
        tail, row, _ = next(self._rows)
        text = self._write(author, act, handle, None, True, tail)
        node = self._node(t, author, parent.lang, parent.topic, act, stance, parent)
        attention = 0.3 * self.popularity[author]  # replies reach fewer
        event = self._publish(
            t, node, text, self._fate(t, author, act, node.depth, attention, row), parent.id, None
        )
        self.truth = self._truth("reply", node) if self.labelled else None
        return event

    def _quote(self, t: int, quoted: _Node) -> Event:
        author = self._fresh_author(quoted.lang, quoted.topic, quoted.author)
        stance = dialogue.reply_stance("quote", quoted.stance, self.rand())
        self.composer.begin(quoted.lang, quoted.topic, quoted.focus, stance)
        tail, row, luck = next(self._rows)
        text = self._write(author, "quote", None, None, False, tail)
        node = self._node(t, author, quoted.lang, quoted.topic, "quote", stance, None)
        attention = self.popularity[author] * self.heat[quoted.topic] * luck
        event = self._publish(
            t, node, text, self._fate(t, author, "quote", 0, attention, row), None, quoted.id
        )
        self.truth = self._truth("quote", node) if self.labelled else None
        return event

    def _repost(self, t: int, original: _Node) -> Event:
        """A repost, written the way Twitter's v1.1 API shows a retweet: `RT @author: text`."""
        author = self._fresh_author(original.lang, original.topic, original.author)
        handle = self.handles[original.author]
        node = self._new_thread(t, author, original, "repost")
        self._maybe_delete(t, node)
        source = original.post
        post = Post(
            node.id,
            f"RT @{handle}: {source.text}",
            self.user_ids[author],
            _from_timestamp(t / 1000, _UTC),
            source.lang,
            repost_of=original.id,
            hashtags=list(source.hashtags),
            mentions=[handle, *source.mentions],
            urls=list(source.urls),
            source=SOURCE,
        )
        self.truth = self._truth("repost", node) if self.labelled else None
        return Event("post", node.id, post)

    def _human_copy(self, t: int, author: int) -> Event:
        """Someone posts a recent post's text as their own, as it is or slightly changed."""
        rand = self.rand
        source = self.recent[int(rand() * len(self.recent))]
        copy: Copyable = source.post
        change = "exact"
        if rand() < self.config.near_copy_share:
            copy, change = near_copy(copy, rand, self.world.grammars[source.lang].copy_words)
        node = self._new_thread(t, author, source, source.act)
        event = self._copy_post(t, node, copy, None, 0.5)
        self.truth = self._truth("copy", node, copy_of=source.id, change=change) if self.labelled else None
        return event

    # -- trends and spam campaigns -------------------------------------------------------------
    def _start_trend(self, t: int) -> None:
        world, rand, config = self.world, self.rand, self.config
        weights = np.array([topic.weight for topic in world.topics])
        topic = int(self.np_events.choice(len(weights), p=weights / weights.sum()))
        lang = (
            int(self.np_events.choice(len(world.languages), p=world.language_share)) if rand() < 0.6 else -1
        )
        entities = world.grammars[max(lang, 0)].topics[topic].entities
        kinds = list(entities)
        kind = kinds[int(rand() * len(kinds))]
        index = int(rand() ** 2 * len(entities[kind]))  # the popular (first-listed) entities trend more
        entity = entities[kind][index]
        suffixes = TOPICS[world.topics[topic].name]["trend"]
        tag = entity.tag + suffixes[int(rand() * len(suffixes))] if rand() < 0.75 else entity.tag
        # Trend sizes vary a lot (lognormal, clipped to a few times the median); a trend in one
        # language is as much smaller as that language's share of the platform.
        spread = math.exp(0.6 * min(max(next(self._normals), -2.0), 2.5))
        share = 1.0 if lang < 0 else float(world.language_share[lang])
        posts = self._poisson(config.trend_share * config.posts_per_day * 0.8 * spread * share)
        self.trends.append(
            Trend(
                world.topics[topic].name,
                entity.key,
                tag,
                world.languages[lang] if lang >= 0 else None,
                _from_timestamp(t / 1000, _UTC),
                posts,
            )
        )
        state = _Trend(topic, (kind, index), lang, tag)
        # A burst rises fast and fades slowly: gamma(2)-shaped arrival times after the start.
        scale_ms = config.trend_halflife_s * 1000 / math.log(2) / 2
        for delay in self.np_events.gamma(2.0, scale_ms, posts).tolist():
            self._push(t + int(delay), _TREND, state)

    def _trend_post(self, t: int, trend: _Trend) -> Event:
        world, rand, composer = self.world, self.rand, self.composer
        lang = trend.lang
        if lang < 0:
            lang = min(bisect.bisect_left(self.language_cum, rand()), len(world.languages) - 1)
        author = self._fresh_author(lang, trend.topic, -1)
        kind, index = trend.focus_index
        focus = world.grammars[lang].topics[trend.topic].entities[kind][index]
        act = _TREND_ACTS[bisect.bisect(_TREND_ACTS_CUM, rand())]
        stance = 1 if rand() < dialogue.POSITIVE_SHARE[act] else -1
        composer.begin(lang, trend.topic, focus, stance)
        tag = trend.tag if rand() < 0.75 else None
        tail, row, luck = next(self._rows)
        text = self._write(author, act, None, tag, False, tail)
        node = self._node(t, author, lang, trend.topic, act, stance, None)
        attention = self.popularity[author] * self.heat[trend.topic] * luck * trend.heat
        event = self._publish(t, node, text, self._fate(t, author, act, 0, attention, row), None, None)
        self._remember(node)
        self.truth = self._truth("trend", node, trend=trend.tag) if self.labelled else None
        return event

    def _start_campaign(self, t: int) -> None:
        """A spam campaign: a few bots post one message, exactly or slightly changed, many times."""
        world, rand, config, composer = self.world, self.rand, self.config, self.composer
        english = world.languages.index("en") if "en" in world.languages else 0
        lang = english if rand() < 0.7 else int(rand() * len(world.languages))
        bots = world.bots_by_lang[lang]
        if len(bots) == 0:
            return
        members = [int(bots[int(rand() * len(bots))]) for _ in range(1 + int(rand() * 8))]
        topic = self.spam_topics[int(rand() * len(self.spam_topics))]
        focus = _spam_focus(composer, lang, topic)
        composer.begin(lang, topic, focus, 1)
        text = composer.compose("spam")
        source = Copy(text, composer.hashtags, composer.mentions, composer.urls)
        size = 1 + self._poisson(config.spam_campaign_size * 0.7 * math.exp(0.8 * next(self._normals)))
        window_ms = int(30 * 60_000 * math.exp(0.6 * next(self._normals)))
        delete_at = 0
        if rand() < config.spam_delete_rate:  # the platform sweeps the whole campaign at once, later
            delete_at = t + window_ms + int(6 * 3_600_000 * math.exp(0.5 * next(self._normals)))
        campaign = _Campaign(members, lang, topic, focus, source, delete_at)
        for offset in sorted(self.np_events.random(size).tolist()):
            self._push(t + int(offset * window_ms), _SPAM, campaign)

    def _spam_copy(self, t: int, campaign: _Campaign) -> Event:
        rand = self.rand
        author = campaign.bots[int(rand() * len(campaign.bots))]
        if rand() < 0.5:
            copy, change = campaign.source, "exact"
        else:
            copy, change = near_copy(campaign.source, rand, self.world.grammars[campaign.lang].copy_words)
        id_ = self._next_id(t)
        node = _Node(id_, author, campaign.lang, campaign.topic, campaign.focus, 1, "spam", 0, id_, -1)
        if campaign.delete_at > t:
            node.until = campaign.delete_at
            self._push(campaign.delete_at, _DELETE, node.id)
        event = self._copy_post(t, node, copy, self.languages[campaign.lang], 0.05)
        self.truth = self._truth("spam", node, change=change) if self.labelled else None
        return event

    # -- pieces shared by every kind of post ---------------------------------------------------
    def _next_id(self, t: int) -> str:
        """A snowflake id: increasing with time, and within a millisecond by a sequence number."""
        if t == self.last_ms:
            self.sequence += 1
        else:
            self.last_ms, self.sequence = t, 0
        return str(((t - SNOWFLAKE_EPOCH_MS) << 22) | self.worker_bits | self.sequence)

    def _new_thread(self, t: int, author: int, like: _Node, act: str) -> _Node:
        """The node of a post that starts its own thread about what `like` is about (repost, copy)."""
        id_ = self._next_id(t)
        return _Node(id_, author, like.lang, like.topic, like.focus, like.stance, act, 0, id_, -1)

    def _write(
        self, author: int, act: str, reply_handle: str | None, trend_tag: str | None, reply: bool, tail: tuple
    ) -> str:
        """The text of a post the composer has begun, its tail decided by the uniforms in `tail`
        (originals decide theirs in blocks: see `_originals`)."""
        casual_u, tags_u, tags_roll, url_u, emoji_u, cc_u = tail
        n_tags = 0
        if tags_u < (self.hashtag_rate * 0.2 if reply else self.hashtag_rate):
            n_tags = 1 if tags_roll < 0.6 else 2 if tags_roll < 0.9 else 3
        return self.composer.compose(
            act,
            casual_u < self.casual[author],
            reply_handle,
            n_tags,
            url_u < self.url_rate[act],
            emoji_u < self.emoji_rate,
            reply_handle is None and act in _CC_ACTS and cc_u < self.mention_rate,
            trend_tag,
        )

    def _node(
        self, t: int, author: int, lang: int, topic: int, act: str, stance: int, parent: _Node | None
    ) -> _Node:
        """The node of a post just composed (its focus is what the text is about), with a new id."""
        composer = self.composer
        focus = composer.focus or composer.pick_focus(lang, topic)
        id_ = self._next_id(t)
        if parent is None:
            return _Node(id_, author, lang, topic, focus, stance, act, 0, id_, -1)
        return _Node(
            id_, author, lang, topic, focus, stance, act, parent.depth + 1, parent.root, parent.author
        )

    def _fate(self, t: int, author: int, act: str, depth: int, attention: float, row: tuple) -> tuple:
        """What will become of a post: (deleted at, replies, reposts, quotes it draws, its views
        before those, the share of views that like it, the roll for its declared language).

        `attention` is the author's reach times the post's luck (a reply's replies follow the
        thread's depth instead); `row` holds the draws (see `_post_rows`)."""
        delete_u, lang_roll, delete_noise, views_noise, likes_noise = row
        delete_at = _FOREVER
        if delete_u < self.delete_rate[author]:
            delete_at = t + 1000 + int(self.delete_delay_ms * delete_noise)
        replies = reposts = quotes = 0
        if depth < self.max_depth:
            lam = self.reply_rate[act] * (self.decay[depth] if depth else attention)
            replies = self._poisson(min(lam, 200.0))
        if depth == 0:
            reposts = self._poisson(min(self.repost_rate[act] * attention, 300.0))
            quotes = self._poisson(min(self.quote_rate[act] * attention, 100.0))
        views = self.followers[author] * 0.3 * attention / self.popularity[author] * views_noise
        return delete_at, replies, reposts, quotes, views, 0.02 * likes_noise, lang_roll

    def _publish(
        self, t: int, node: _Node, text: str, fate: tuple, reply_to: str | None, quote_of: str | None
    ) -> Event:
        """Schedule what its fate holds (its deletion, replies, reposts, quotes), then build the post."""
        delete_at, n_replies, n_reposts, n_quotes, views, likes_share, lang_roll = fate
        if delete_at != _FOREVER:
            node.until = delete_at
            self._push(delete_at, _DELETE, node.id)
        # Only what comes before the post's deletion is carried (and counted).
        replies = self._schedule_replies(t, node, n_replies) if n_replies else 0
        reposts = self._schedule(t, node, n_reposts, _REPOST, 3_600_000) if n_reposts else 0
        quotes = self._schedule(t, node, n_quotes, _QUOTE, 2 * 3_600_000) if n_quotes else 0
        author = node.author
        views = int(views) + 5 * (replies + reposts + quotes)
        short = len(text) < 30
        if lang_roll >= (self.lang_right_from_short if short else self.lang_right_from):
            lang = self.languages[node.lang]
        else:
            lang = self._mislabelled(node.lang, author, lang_roll, short)
        composer = self.composer  # its entity lists are this post's: the next post begins new ones
        post = Post(
            node.id,
            text,
            self.user_ids[author],
            _from_timestamp(t / 1000, _UTC),
            lang,
            reply_to,
            None,
            quote_of,
            composer.hashtags,
            composer.mentions,
            composer.urls,
            Metrics(int(views * likes_share) + reposts, reposts, replies, quotes, views),
            SOURCE,
        )
        node.post = post
        return Event("post", node.id, post)

    def _copy_post(self, t: int, node: _Node, copy: Copyable, lang: str | None, reach: float) -> Event:
        """A copied text (human copy-paste or spam) as a post; copies draw no replies.

        `lang` is the declared language when it is given (spam bots declare theirs)."""
        if node.until == _FOREVER:
            self._maybe_delete(t, node)
        author = node.author
        views = int(self.followers[author] * reach * next(self._views))
        post = Post(
            node.id,
            copy.text,
            self.user_ids[author],
            _from_timestamp(t / 1000, _UTC),
            lang or self._declared_lang(node.lang, author, copy.text),
            hashtags=list(copy.hashtags),
            mentions=list(copy.mentions),
            urls=list(copy.urls),
            metrics=Metrics(int(views * 0.02 * next(self._likes)), 0, 0, 0, views),
            source=SOURCE,
        )
        node.post = post
        return Event("post", node.id, post)

    def _declared_lang(self, lang: int, author: int, text: str) -> str | None:
        """What the platform declares: mostly right, sometimes missing (short posts more often) or wrong."""
        roll, short = self.rand(), len(text) < 30
        if roll >= (self.lang_right_from_short if short else self.lang_right_from):
            return self.languages[lang]
        return self._mislabelled(lang, author, roll, short)

    def _mislabelled(self, lang: int, author: int, roll: float, short: bool) -> str | None:
        """The declared language of a post whose `roll` fell below the right-language threshold."""
        if roll < self.config.lang_missing_rate * (3.0 if short else 1.0):
            return None
        languages = self.languages
        if len(languages) == 1:
            return languages[lang]
        # Platforms most often mislabel a post with the author's main (interface) language.
        primary = int(self.world.primary[author])
        if primary != lang:
            return languages[primary]
        other = int(self.rand() * (len(languages) - 1))
        return languages[other + (other >= lang)]

    def _maybe_delete(self, t: int, node: _Node) -> None:
        if self.rand() < self.delete_rate[node.author]:
            at = t + 1000 + int(self.delete_delay_ms * next(self._delete_delay))
            node.until = at
            self._push(at, _DELETE, node.id)

    def _schedule_replies(self, t: int, node: _Node, n: int) -> int:
        """Schedule `n` replies to `node`, each of an act its parent's act calls for; count those due
        before the post is deleted."""
        rand, count = self.rand, 0
        for _ in range(n):
            act = dialogue.reply_act(node.act, rand())
            at = t + 1000 + int(self.reply_delay_ms[act] * next(self._reply_delay))
            if at < node.until:
                self._push(at, _REPLY, node, act)
                count += 1
        return count

    def _schedule(self, t: int, node: _Node, n: int, kind: int, median_ms: float) -> int:
        """Schedule `n` reposts or quotes of `node`; count those due before it is deleted."""
        count = 0
        for _ in range(n):
            at = t + 1000 + int(median_ms * next(self._share_delay))
            if at < node.until:
                self._push(at, kind, node)
                count += 1
        return count

    def _remember(self, node: _Node) -> None:
        recent = self.recent
        if len(recent) < 2000:
            recent.append(node)
        else:
            recent[int(self.rand() * 2000)] = node

    def _reply_author(self, parent: _Node, act: str) -> int:
        if act in dialogue.SELF_ACTS:
            return parent.author
        if parent.parent_author >= 0 and self.rand() < dialogue.BACK.get(act, 0.0):
            return parent.parent_author
        return self._fresh_author(parent.lang, parent.topic, parent.author)

    def _fresh_author(self, lang: int, topic: int, not_author: int) -> int:
        """Someone who writes `lang`: of two activity-weighted draws, the one keener on the topic."""
        draws = self._speaker_draws[lang]
        affinity = self.affinity_by_topic[topic]
        author = not_author
        for _ in range(4):
            a, b = next(draws), next(draws)
            author = a if affinity[a] >= affinity[b] else b
            if author != not_author:
                break
        return author

    def _truth(
        self,
        kind: str,
        node: _Node,
        *,
        copy_of: str | None = None,
        change: str | None = None,
        trend: str | None = None,
    ) -> PostTruth:
        world = self.world
        return PostTruth(
            kind=kind,
            act=node.act,
            topic=world.topics[node.topic].name,
            lang=world.languages[node.lang],
            stance=node.stance,
            focus=node.focus.key,
            depth=node.depth,
            root=node.root,
            author_persona=PERSONAS[world.persona[node.author]].name,
            is_spam=bool(world.is_bot[node.author]),
            copy_of=copy_of,
            copy_change=change,
            trend=trend,
        )


_CC_ACTS = frozenset({"opinion", "news", "experience"})
_ALL_ACTS = tuple(dialogue.REPLY_FACTOR)
#: Links: news and promos carry one far more often than other posts; spam's are in its text.
_URL_RATE = {"news": 0.55, "promo": 0.7, "spam": 0.0}

#: What people post about a trend: mostly opinions and news, some questions and experiences.
_TREND_ACTS = ("opinion", "news", "question", "experience")
_TREND_ACTS_CUM = (0.45, 0.75, 0.9)


def _own_entity(composer: Composer, lang: int, topic: int, name: str) -> Item | None:
    for group in composer.grammars[lang].topics[topic].entities.values():
        for item in group:
            if item.key == name:
                return item
    return None


def _daily_rhythm(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Posting intensity by UTC minute of the day (mean 1), and per minute the cumulative share of
    each region among the posters, from every region's local-hour curve weighted by its users."""
    hourly = np.array(people.HOURLY_ACTIVITY)
    minutes = np.arange(1440)
    local_hour = (minutes[None, :] / 60.0 + np.array([r.utc_offset for r in world.regions])[:, None]) % 24
    # HOURLY_ACTIVITY[h] is the rate over hour h, so it sits at h + 0.5; wrap around midnight.
    curve = np.interp(local_hour, np.arange(-0.5, 25.0), np.concatenate([hourly[-1:], hourly, hourly[:1]]))
    by_region = curve * np.array([r.share for r in world.regions])[:, None]  # (regions, 1440)
    intensity = by_region.sum(axis=0)
    region_cum = np.cumsum(by_region / intensity, axis=0).T  # (1440, regions)
    return intensity / intensity.mean(), region_cum


def _spam_focus(composer: Composer, lang: int, topic: int) -> Item:
    entities = composer.grammars[lang].topics[topic].entities
    return composer.pick(entities["product"] if "product" in entities else entities["brand"])


def _originals_per_day(config: SimConfig, world: World) -> float:
    """New threads per day such that, with their replies, reposts, quotes, trends and spam
    campaigns, about `posts_per_day` posts arrive.

    A post of act a at depth d draws reply_rate·REPLY_FACTOR[a]·decay^d replies on average (an
    original's attention has mean 1), each of an act drawn from TRANSITIONS[a]; solving that
    branching process from the deepest level up gives the expected thread size per act.
    """
    acts = list(dialogue.REPLY_FACTOR)
    descendants = {a: 0.0 for a in acts}
    for depth in range(config.max_thread_depth - 1, -1, -1):
        deeper = descendants
        descendants = {}
        for a in acts:
            lam = config.reply_rate * dialogue.REPLY_FACTOR[a] * config.thread_decay**depth
            row = dialogue.TRANSITIONS.get(a, ())
            total = sum(w for _, w in row) or 1.0
            descendants[a] = lam * sum(w / total * (1.0 + deeper[b]) for b, w in row)
    persona_weight = np.bincount(world.persona, weights=world.activity, minlength=len(PERSONAS))
    per_original = 0.0
    for persona, weight in zip(PERSONAS, persona_weight, strict=True):
        for act, share in persona.acts.items():
            shares = 0.0
            if act != "spam":
                reposts = config.repost_rate * dialogue.REPOST_FACTOR.get(act, 0.2)
                quotes = config.quote_rate * dialogue.QUOTE_FACTOR.get(act, 0.2)
                shares = reposts + quotes * (1.0 + descendants["quote"])
            per_original += weight * share * (1.0 + descendants[act] + shares)
    per_original /= persona_weight.sum()
    # Trends: candidates thinned by the daily rhythm (accepted at mean/max intensity), each of
    # E[size] = trend_share·posts_per_day·0.8·E[exp(0.6 Z)]·E[language share], with threads of their own.
    intensity, _ = _daily_rhythm(world)
    language_factor = 0.4 + 0.6 * float(np.sum(world.language_share**2))
    trend_size = config.trend_share * config.posts_per_day * 0.8 * math.exp(0.18) * language_factor
    trend_posts = config.trends_per_day / float(intensity.max()) * trend_size * per_original
    spam_posts = config.spam_campaigns_per_day * (1.0 + config.spam_campaign_size)
    rate = (config.posts_per_day - trend_posts - spam_posts) / per_original
    if rate <= 0:
        raise ValueError(
            f"posts_per_day = {config.posts_per_day} leaves no room for ordinary posts after trends and spam "
            "campaigns; raise it or lower trends_per_day / spam_campaigns_per_day"
        )
    return rate
