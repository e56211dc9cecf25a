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
import math
import random
from array import array
from collections.abc import Iterator
from typing import Annotated

import msgspec
import numpy as np

from roost.firehose import sim_dialogue as dialogue
from roost.firehose.sim_copies import Copy, near_copy
from roost.firehose.sim_text import Composer, Item
from roost.firehose.sim_world import PERSONAS, World
from roost.firehose.simdata import people
from roost.firehose.simdata.topics import TOPICS
from roost.posts import Event, Metrics, Post

UtcDatetime = Annotated[dt.datetime, msgspec.Meta(tz=True)]

#: Twitter's snowflake epoch (2010-11-04T01:42:54.657Z): ids are (ms since it) << 22 | worker | sequence.
SNOWFLAKE_EPOCH_MS = 1288834974657
SOURCE = "simulate"


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
        for event, _ in self._start(truth=False).events():
            yield event

    def labelled(self) -> Iterator[tuple[Event, PostTruth | None]]:
        """Events with the hidden truth of each post (None for delete events)."""
        return self._start(truth=True).events()

    def _start(self, truth: bool) -> _Run:
        run = _Run(self, truth)
        self.trends = run.trends
        return run

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


class _Node:
    """A post as later posts see it: what replies answer, reposts copy and copiers take."""

    __slots__ = (
        "act",
        "author",
        "depth",
        "focus",
        "hashtags",
        "id",
        "lang",
        "lang_decl",
        "mentions",
        "parent_author",
        "root",
        "stance",
        "text",
        "topic",
        "until",
        "urls",
    )

    def __init__(
        self,
        id_: str,
        author: int,
        lang: int,
        topic: int,
        focus: Item,
        stance: int,
        act: str,
        depth: int,
        root: str | None,
        parent_author: int,
    ) -> None:
        self.id = id_
        self.author = author
        self.lang = lang
        self.topic = topic
        self.focus = focus
        self.stance = stance
        self.act = act
        self.depth = depth
        self.root = root or id_  # a new thread's root is the post itself
        self.parent_author = parent_author
        self.until = _FOREVER  # when it is deleted (ms)
        self.lang_decl: str | None = None
        self.text = ""
        self.hashtags: list[str] = []
        self.mentions: list[str] = []
        self.urls: list[str] = []


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
    """One pass over the stream. All randomness comes from the seed, so every pass is the same."""

    def __init__(self, sim: Simulator, truth: bool) -> None:
        self.config = config = sim.config
        self.world = world = sim.world
        self.truth = truth
        seeds = np.random.SeedSequence([config.seed, 0x52554E]).spawn(4)  # "RUN"
        self.np_arrivals = np.random.default_rng(seeds[0])
        self.np_draws = np.random.default_rng(seeds[1])
        self.np_events = np.random.default_rng(seeds[2])
        # The grammar makes many small choices per post: Python's Random.random() is cheaper per draw
        # than indexing numpy arrays, and Python guarantees its sequence across versions.
        self.rand = random.Random(int(seeds[3].generate_state(1)[0])).random
        # Continuous draws come in numpy batches, one stream per use.
        self._normals = self._lognormals(None)
        self._attention = self._lognormals(0.7)
        self._reply_delay = self._lognormals(1.3)
        self._share_delay = self._lognormals(1.3)
        self._delete_delay = self._lognormals(1.5)
        self._views = self._lognormals(0.5)
        self._likes = self._lognormals(0.8)
        self._speaker_draws = [
            self._user_draws(world.speakers[i], world.speakers_cum[i]) for i in range(len(world.languages))
        ]
        self._mention_draws = self._user_draws(np.arange(len(world.user_ids)), np.cumsum(world.activity))
        handles = world.handles
        self.composer = Composer(world.grammars, self.rand, lambda: handles[next(self._mention_draws)])
        self.start_ms = int(config.start.timestamp() * 1000)
        self.worker = (config.seed * 2654435761) % 1024  # the snowflake's worker bits: fixed per seed
        self.last_ms = -1
        self.sequence = 0
        self.heap: list[tuple] = []
        self.order = 0
        self.recent: list[_Node] = []  # a sample of recent originals, for copy-paste
        self.trends: list[Trend] = []
        self.originals_per_day = _originals_per_day(config, world)
        self.intensity, self.region_cum = _daily_rhythm(world)
        self.next_trend = self.start_ms + self._exp_ms(config.trends_per_day)
        self.next_campaign = self.start_ms + self._exp_ms(config.spam_campaigns_per_day)
        self.delete_rate = np.where(world.is_bot, config.spam_delete_rate, config.delete_rate).tolist()
        self.popularity = world.popularity.tolist()
        # Per topic, every user's affinity: array lookups are far cheaper than numpy indexing.
        self.affinity_by_topic = [array("d", column) for column in world.affinity.T]
        self.followers = world.followers.tolist()
        self.casual = world.casual_style.tolist()
        self.user_ids = world.user_ids
        self.handles = handles
        self.languages = world.languages
        # Attention a post gets beyond its author's reach: popular topics draw more (sqrt of the
        # topic's weight), and 0.78 = exp(-0.7²/2) makes the lognormal noise's mean 1.
        weights = np.array([topic.weight for topic in world.topics])
        self.heat = (0.78 * np.sqrt(weights / np.average(weights, weights=weights))).tolist()
        self.max_depth = config.max_thread_depth
        self.reply_rate = {act: config.reply_rate * factor for act, factor in dialogue.REPLY_FACTOR.items()}
        self.decay = [config.thread_decay**depth for depth in range(config.max_thread_depth + 1)]
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
        k, cdf = 0, p
        while u > cdf and p > 0.0:
            k += 1
            p *= lam / k
            cdf += p
        return k

    # -- originals: arrival times with a daily rhythm, authors by region and activity -----------
    def _originals(self) -> Iterator[tuple[int, int, int, int, str]]:
        world = self.world
        cum_intensity = np.concatenate([[0.0], np.cumsum(self.intensity)])  # 1441 points, ends at 1440
        region_cum = self.region_cum
        act_cum = np.array([[p.acts.get(a, 0.0) for a in _ACTS] for p in PERSONAS])
        act_cum = np.cumsum(act_cum / act_cum.sum(axis=1, keepdims=True), axis=1)
        rate_per_minute = self.originals_per_day / 1440.0
        clock = 0.0  # operational time: minutes of a constant-rate Poisson process
        rng = self.np_arrivals
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
            acts = [_ACTS[a] for a in np.minimum(act, len(_ACTS) - 1).tolist()]
            yield from zip(t_ms.tolist(), author.tolist(), lang.tolist(), topic.tolist(), acts, strict=True)

    # -- the merged stream -------------------------------------------------------------------
    def events(self) -> Iterator[tuple[Event, PostTruth | None]]:
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
                    self.next_trend += max(1, self._exp_ms(self.config.trends_per_day))
                else:
                    self._start_campaign(self.next_campaign)
                    self.next_campaign += max(1, self._exp_ms(self.config.spam_campaigns_per_day))
                special = min(self.next_trend, self.next_campaign)
                continue
            if not from_heap:
                t, author, lang, topic, act = upcoming
                upcoming = next(originals)
                yield original(t, author, lang, topic, act)
                continue
            t, _, kind, subject, act = heappop(heap)
            if kind == _REPLY:
                yield reply(t, subject, act)
            elif kind == _DELETE:
                yield Event(type="delete", id=subject), None
            else:
                yield handlers[kind](t, subject)

    def _push(self, t: int, kind: int, subject: object, act: str | None = None) -> None:
        self.order += 1
        heapq.heappush(self.heap, (t, self.order, kind, subject, act))

    # -- posts -------------------------------------------------------------------------------
    def _original(
        self, t: int, author: int, lang: int, topic: int, act: str
    ) -> tuple[Event, PostTruth | None]:
        rand, composer = self.rand, self.composer
        if act != "spam" and self.recent and rand() < self.config.copy_rate:
            return self._human_copy(t, author)
        if act == "opinion" or act == "question":
            focus: Item | None = composer.pick_focus(lang, topic)
        elif act == "news" or act == "promo":
            entity = self.world.entity_of[author]
            focus = _own_entity(composer, lang, topic, entity) if entity is not None else None
        elif act == "ask_rec":
            focus = composer.pick_entity(lang, topic, composer.need_kind(lang, topic))
        elif act == "spam":  # bots sell things, whatever their topic
            topic = self.spam_topics[int(rand() * len(self.spam_topics))]
            focus = _spam_focus(composer, lang, topic)
        else:
            focus = None  # an experience clause names what it is about
        stance = 1 if rand() < dialogue.POSITIVE_SHARE[act] else -1
        composer.begin(lang, topic, focus, stance)
        node = self._write(t, author, lang, topic, act, stance, 0, None, -1, None)
        attention = self.popularity[author] * self.heat[topic] * next(self._attention)
        post = self._finish(t, node, attention, None, None)
        if act != "spam":
            self._remember(node)
        truth = self._truth("spam" if act == "spam" else "original", node) if self.truth else None
        return Event(type="post", id=node.id, post=post), truth

    def _reply(self, t: int, parent: _Node, act: str) -> tuple[Event, PostTruth | None]:
        rand, composer = self.rand, self.composer
        author = self._reply_author(parent, act)
        stance = dialogue.reply_stance(act, parent.stance, rand)
        composer.begin(parent.lang, parent.topic, parent.focus, stance)
        if act == "recommend":  # something else of the kind the parent asked about
            composer.begin(parent.lang, parent.topic, composer.second_item(parent.focus), stance)
        handle = self.handles[parent.author] if author != parent.author and rand() < 0.88 else None
        node = self._write(
            t,
            author,
            parent.lang,
            parent.topic,
            act,
            stance,
            parent.depth + 1,
            parent.root,
            parent.author,
            handle,
        )
        post = self._finish(t, node, 0.3 * self.popularity[author], parent.id, None)  # replies reach fewer
        truth = self._truth("reply", node) if self.truth else None
        return Event(type="post", id=node.id, post=post), truth

    def _quote(self, t: int, quoted: _Node) -> tuple[Event, PostTruth | None]:
        author = self._fresh_author(quoted.lang, quoted.topic, quoted.author)
        stance = dialogue.reply_stance("quote", quoted.stance, self.rand)
        self.composer.begin(quoted.lang, quoted.topic, quoted.focus, stance)
        node = self._write(t, author, quoted.lang, quoted.topic, "quote", stance, 0, None, -1, None)
        attention = self.popularity[author] * self.heat[quoted.topic] * next(self._attention)
        post = self._finish(t, node, attention, None, quoted.id)
        truth = self._truth("quote", node) if self.truth else None
        return Event(type="post", id=node.id, post=post), truth

    def _repost(self, t: int, original: _Node) -> tuple[Event, PostTruth | None]:
        """A repost, written the way Twitter's v1.1 API shows a retweet: `RT @author: text`."""
        author = self._fresh_author(original.lang, original.topic, original.author)
        handle = self.handles[original.author]
        node = self._new_thread(t, author, original, "repost")
        self._maybe_delete(t, node)
        post = Post(
            id=node.id,
            text=f"RT @{handle}: {original.text}",
            author_id=self.user_ids[author],
            created_at=_from_timestamp(t / 1000, _UTC),
            lang=original.lang_decl,
            repost_of=original.id,
            hashtags=list(original.hashtags),
            mentions=[handle, *original.mentions],
            urls=list(original.urls),
            source=SOURCE,
        )
        truth = self._truth("repost", node) if self.truth else None
        return Event(type="post", id=node.id, post=post), truth

    def _human_copy(self, t: int, author: int) -> tuple[Event, PostTruth | None]:
        """Someone posts a recent post's text as their own, as it is or slightly changed."""
        rand = self.rand
        source = self.recent[int(rand() * len(self.recent))]
        if rand() < self.config.near_copy_share:
            copy, change = near_copy(source, rand, self.world.grammars[source.lang].copy_words)
        else:
            copy, change = source, "exact"
        node = self._new_thread(t, author, source, source.act)
        post = self._copy_post(t, node, copy, 0.5)
        truth = self._truth("copy", node, copy_of=source.id, change=change) if self.truth else None
        return Event(type="post", id=node.id, post=post), truth

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

    def _trend_post(self, t: int, trend: _Trend) -> tuple[Event, PostTruth | None]:
        world, rand, composer = self.world, self.rand, self.composer
        lang = trend.lang
        if lang < 0:
            lang = min(
                int(np.searchsorted(np.cumsum(world.language_share), rand())), len(world.languages) - 1
            )
        author = self._fresh_author(lang, trend.topic, -1)
        kind, index = trend.focus_index
        focus = world.grammars[lang].topics[trend.topic].entities[kind][index]
        act = _TREND_ACTS[bisect.bisect(_TREND_ACTS_CUM, rand())]
        stance = 1 if rand() < dialogue.POSITIVE_SHARE[act] else -1
        composer.begin(lang, trend.topic, focus, stance)
        tag = trend.tag if rand() < 0.75 else None
        node = self._write(t, author, lang, trend.topic, act, stance, 0, None, -1, None, tag)
        attention = self.popularity[author] * self.heat[trend.topic] * next(self._attention) * trend.heat
        post = self._finish(t, node, attention, None, None)
        self._remember(node)
        truth = self._truth("trend", node, trend=trend.tag) if self.truth else None
        return Event(type="post", id=node.id, post=post), truth

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

    def _spam_copy(self, t: int, campaign: _Campaign) -> tuple[Event, PostTruth | None]:
        rand = self.rand
        author = campaign.bots[int(rand() * len(campaign.bots))]
        if rand() < 0.5:
            copy, change = campaign.source, "exact"
        else:
            copy, change = near_copy(campaign.source, rand, self.world.grammars[campaign.lang].copy_words)
        node = _Node(
            self._next_id(t), author, campaign.lang, campaign.topic, campaign.focus, 1, "spam", 0, None, -1
        )
        node.lang_decl = self.languages[campaign.lang]
        if campaign.delete_at > t:
            node.until = campaign.delete_at
            self._push(campaign.delete_at, _DELETE, node.id)
        post = self._copy_post(t, node, copy, 0.05)
        truth = self._truth("spam", node, change=change) if self.truth else None
        return Event(type="post", id=node.id, post=post), truth

    # -- pieces shared by every kind of post ---------------------------------------------------
    def _next_id(self, t: int) -> str:
        """A snowflake id: increasing with time, and within a millisecond by a sequence number."""
        if t == self.last_ms:
            self.sequence += 1
        else:
            self.last_ms, self.sequence = t, 0
        return str(((t - SNOWFLAKE_EPOCH_MS) << 22) | (self.worker << 12) | self.sequence)

    def _new_thread(self, t: int, author: int, like: _Node, act: str) -> _Node:
        """The node of a post that starts its own thread about what `like` is about (repost, copy)."""
        return _Node(
            self._next_id(t), author, like.lang, like.topic, like.focus, like.stance, act, 0, None, -1
        )

    def _write(
        self,
        t: int,
        author: int,
        lang: int,
        topic: int,
        act: str,
        stance: int,
        depth: int,
        root: str | None,
        parent_author: int,
        reply_handle: str | None,
        trend_tag: str | None = None,
    ) -> _Node:
        """Compose the text of a post the composer has begun, and its node."""
        rand, config, composer = self.rand, self.config, self.composer
        spam = act == "spam"
        n_tags = 0
        if not spam and rand() < (config.hashtag_rate if depth == 0 else config.hashtag_rate * 0.2):
            roll = rand()
            n_tags = 1 if roll < 0.6 else 2 if roll < 0.9 else 3
        text = composer.compose(
            act,
            casual=rand() < self.casual[author],
            reply_to=reply_handle,
            hashtags=n_tags,
            url=not spam and rand() < (0.55 if act == "news" else 0.7 if act == "promo" else config.url_rate),
            emoji=not spam and rand() < config.emoji_rate,
            cc=reply_handle is None and act in _CC_ACTS and rand() < config.mention_rate,
            trend_tag=trend_tag,
        )
        id_ = self._next_id(t)
        focus = composer.focus or composer.pick_focus(lang, topic)
        node = _Node(id_, author, lang, topic, focus, stance, act, depth, root, parent_author)
        node.text = text
        node.hashtags = composer.hashtags
        node.mentions = composer.mentions
        node.urls = composer.urls
        return node

    def _finish(
        self, t: int, node: _Node, attention: float, reply_to: str | None, quote_of: str | None
    ) -> Post:
        """Decide the post's fate (deletion, replies, reposts, quotes), then build it."""
        self._maybe_delete(t, node)
        replies = reposts = quotes = 0
        if node.depth < self.max_depth:
            replies = self._schedule_replies(t, node, attention)
        if node.depth == 0 and node.act != "spam":
            reposts, quotes = self._schedule_shares(t, node, attention)
        # Views scale with the author's followers and the post's luck, not with popularity again.
        luck = attention / self.popularity[node.author]
        views = int(self.followers[node.author] * 0.3 * luck * next(self._views)) + 5 * (
            replies + reposts + quotes
        )
        metrics = Metrics(int(views * 0.02 * next(self._likes)) + reposts, reposts, replies, quotes, views)
        node.lang_decl = self._declared_lang(node.lang, node.author, node.text)
        return Post(
            id=node.id,
            text=node.text,
            author_id=self.user_ids[node.author],
            created_at=_from_timestamp(t / 1000, _UTC),
            lang=node.lang_decl,
            reply_to=reply_to,
            quote_of=quote_of,
            hashtags=list(node.hashtags),
            mentions=list(node.mentions),
            urls=list(node.urls),
            metrics=metrics,
            source=SOURCE,
        )

    def _copy_post(self, t: int, node: _Node, copy: Copy | _Node, reach: float) -> Post:
        """A copied text (human copy-paste or spam) as a post; copies draw no replies."""
        node.text = copy.text
        node.hashtags, node.mentions, node.urls = copy.hashtags, copy.mentions, copy.urls
        if node.until == _FOREVER:
            self._maybe_delete(t, node)
        if node.lang_decl is None:
            node.lang_decl = self._declared_lang(node.lang, node.author, node.text)
        views = int(self.followers[node.author] * reach * next(self._views))
        return Post(
            id=node.id,
            text=node.text,
            author_id=self.user_ids[node.author],
            created_at=_from_timestamp(t / 1000, _UTC),
            lang=node.lang_decl,
            hashtags=list(node.hashtags),
            mentions=list(node.mentions),
            urls=list(node.urls),
            metrics=Metrics(int(views * 0.02 * next(self._likes)), 0, 0, 0, views),
            source=SOURCE,
        )

    def _declared_lang(self, lang: int, author: int, text: str) -> str | None:
        """What the platform declares: mostly right, sometimes missing (short posts more often) or wrong."""
        config, languages = self.config, self.languages
        roll = self.rand()
        missing = config.lang_missing_rate * (3.0 if len(text) < 30 else 1.0)
        if roll >= missing + config.lang_wrong_rate:
            return languages[lang]
        if roll < missing:
            return None
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
            at = t + 1000 + int(self.config.delete_delay_s * 1000 * next(self._delete_delay))
            node.until = at
            self._push(at, _DELETE, node.id)

    def _schedule_replies(self, t: int, node: _Node, attention: float) -> int:
        lam = self.reply_rate[node.act] * (self.decay[node.depth] if node.depth else attention)
        if lam <= 0.0:
            return 0
        rand, count = self.rand, 0
        for _ in range(self._poisson(min(lam, 200.0))):
            act = dialogue.reply_act(node.act, rand())
            # Someone answering a reply to their own post is quicker than a stranger.
            median = self.config.reply_delay_s * (0.4 if dialogue.BACK.get(act, 0.0) > 0.5 else 1.0)
            at = t + 1000 + int(median * 1000 * next(self._reply_delay))
            if at < node.until:
                self._push(at, _REPLY, node, act)
                count += 1
        return count

    def _schedule_shares(self, t: int, node: _Node, attention: float) -> tuple[int, int]:
        config = self.config
        reposts = quotes = 0
        lam = config.repost_rate * dialogue.REPOST_FACTOR.get(node.act, 0.2) * attention
        for _ in range(self._poisson(min(lam, 300.0))):
            at = t + 1000 + int(3_600_000 * next(self._share_delay))
            if at < node.until:
                self._push(at, _REPOST, node)
                reposts += 1
        lam = config.quote_rate * dialogue.QUOTE_FACTOR.get(node.act, 0.2) * attention
        for _ in range(self._poisson(min(lam, 100.0))):
            at = t + 1000 + int(2 * 3_600_000 * next(self._share_delay))
            if at < node.until:
                self._push(at, _QUOTE, node)
                quotes += 1
        return reposts, quotes

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
