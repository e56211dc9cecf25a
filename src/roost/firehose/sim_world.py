"""The simulated platform's world: its topics and its users, with everything hidden about them.

Users have a persona, languages, a home region (its time zone drives their daily rhythm), hidden
topic affinities, a Zipf-distributed activity and a follower count. Brands, teams, venues and
organisations that topics name also have official accounts. The world is built once per seed;
stages that need ground truth (ads: who likes what; search: which hashtags a topic has) read it
from `Simulator(config).world`.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from roost.firehose.sim_text import LangGrammar, compile_language
from roost.firehose.simdata import people
from roost.firehose.simdata.topics import ACCOUNT_KINDS, TOPICS

if TYPE_CHECKING:
    from roost.firehose.simulate import SimConfig

#: Languages with a grammar in `simdata/`.
SUPPORTED_LANGUAGES = ("en", "es", "fr", "de")


class Persona(msgspec.Struct, frozen=True):
    """A kind of account: how common it is, what it posts, how many follow it."""

    name: str
    share: float  # of ordinary users (official accounts and bots are counted apart)
    acts: dict[str, float]  # what its original posts are
    followers: float  # median follower count
    boost: float  # how much more active than a casual user, on average
    casual_style: float  # chance a post skips capitals and final periods


PERSONAS = (
    Persona(
        "casual",
        share=0.64,
        acts={"opinion": 0.33, "question": 0.15, "ask_rec": 0.07, "experience": 0.39, "news": 0.06},
        followers=120,
        boost=1.0,
        casual_style=0.45,
    ),
    Persona(
        "enthusiast",
        share=0.22,
        acts={"opinion": 0.45, "question": 0.12, "ask_rec": 0.05, "experience": 0.22, "news": 0.16},
        followers=700,
        boost=2.0,
        casual_style=0.25,
    ),
    Persona(
        "expert",
        share=0.09,
        acts={"opinion": 0.4, "question": 0.08, "experience": 0.17, "news": 0.35},
        followers=3000,
        boost=1.5,
        casual_style=0.05,
    ),
    Persona(
        "news",
        share=0.05,
        acts={"news": 0.88, "opinion": 0.04, "question": 0.08},
        followers=20000,
        boost=3.0,
        casual_style=0.0,
    ),
    # Official accounts of the brands, teams, venues and organisations that topics name.
    Persona(
        "official",
        share=0.0,
        acts={"promo": 0.55, "news": 0.3, "question": 0.15},
        followers=40000,
        boost=2.0,
        casual_style=0.0,
    ),
    Persona("bot", share=0.0, acts={"spam": 1.0}, followers=25, boost=3.0, casual_style=0.0),
)
PERSONA_INDEX = {p.name: i for i, p in enumerate(PERSONAS)}


class SimTopic(msgspec.Struct, frozen=True):
    """A topic and its known answers: its hashtags, entities and vocabulary in every language."""

    name: str
    category: str  # one of the 19 TweetTopic categories
    weight: float  # relative popularity
    hashtags: list[str]  # without '#', every language's
    entities: dict[str, list[str]]  # kind -> canonical names
    vocab: dict[str, list[str]]  # language -> the topic's nouns and entity names as they are written
    emoji: list[str]
    domains: list[str]
    handles: dict[str, str]  # entity name -> its official account's handle


class SimUser(msgspec.Struct, frozen=True):
    """A simulated account and what is hidden about it (its affinities are never posted)."""

    id: str
    handle: str
    persona: str
    languages: list[str]  # primary first
    region: str
    utc_offset: float
    topics: dict[str, float]  # hidden topic affinities (sum 1; shares under 0.1% left out)
    is_bot: bool
    activity: float  # expected share of all original posts
    followers: int
    entity: str | None = None  # for official accounts: the entity they speak for


@dataclass(frozen=True, slots=True)
class Region:
    """Where some users live: their language, time zone, and who among them posts how much."""

    name: str
    lang: int  # index into World.languages
    utc_offset: float
    share: float  # of all users
    users: np.ndarray  # user indices
    cum_activity: np.ndarray  # cumulative activity of those users, for weighted draws


class World:
    """Topics, users and the compiled grammars, plus the arrays the generator samples from."""

    def __init__(self, config: SimConfig) -> None:
        unknown = [lang for lang in config.languages if lang not in SUPPORTED_LANGUAGES]
        if unknown:
            raise ValueError(
                f"no grammar for language(s) {unknown}; the simulator speaks {', '.join(SUPPORTED_LANGUAGES)}"
            )
        if config.users < 10:
            raise ValueError(f"users = {config.users}: the simulator needs at least 10 users")
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x574F524C44]))  # "WORLD"
        self.languages: list[str] = list(config.languages)
        language_share = np.array([config.languages[lang] for lang in self.languages], dtype=float)
        self.language_share = language_share / language_share.sum()

        handles = {name: _official_handle(name) for name in _account_entities()}
        self.grammars: list[LangGrammar] = []
        topic_specs = [_TopicSpec(name, spec, handles) for name, spec in TOPICS.items()]
        for lang in self.languages:
            module = importlib.import_module(f"roost.firehose.simdata.{lang}")
            self.grammars.append(compile_language(module, topic_specs))
        self.topics: list[SimTopic] = [self._topic(i, spec) for i, spec in enumerate(topic_specs)]
        self.topic_index = {t.name: i for i, t in enumerate(self.topics)}
        self._build_users(config, rng, handles)

    # -- topics ------------------------------------------------------------------------------
    def _topic(self, index: int, spec: _TopicSpec) -> SimTopic:
        hashtags: list[str] = []
        vocab: dict[str, list[str]] = {}
        for lang, grammar in zip(self.languages, self.grammars, strict=True):
            topic = grammar.topics[index]
            hashtags += [tag for tag in topic.hashtags if tag not in hashtags]
            entity_names = [item.nom for group in topic.entities.values() for item in group]
            vocab[lang] = [item.nom for item in topic.things] + entity_names
        entities = {kind: [_name(spec_) for spec_ in names] for kind, names in spec.entities.items()}
        return SimTopic(
            name=spec.name,
            category=spec.data["category"],
            weight=spec.data["weight"],
            hashtags=hashtags,
            entities=entities,
            vocab=vocab,
            emoji=list(spec.emoji),
            domains=list(spec.domains),
            handles={
                name: spec.handles[name]
                for group in entities.values()
                for name in group
                if name in spec.handles
            },
        )

    # -- users -------------------------------------------------------------------------------
    def _build_users(self, config: SimConfig, rng: np.random.Generator, handles: dict[str, str]) -> None:
        n_topics = len(self.topics)
        n_ordinary = config.users
        n_bots = round(config.users * config.bot_fraction)
        officials = [
            (topic_index, kind, name)
            for topic_index, topic in enumerate(self.topics)
            for kind in ACCOUNT_KINDS
            for name in topic.entities.get(kind, [])
        ]
        n = n_ordinary + n_bots + len(officials)

        persona = np.empty(n, dtype=np.int64)
        ordinary = [p for p in PERSONAS if p.share > 0]
        shares = np.array([p.share for p in ordinary])
        persona[:n_ordinary] = rng.choice(
            [PERSONA_INDEX[p.name] for p in ordinary], n_ordinary, p=shares / shares.sum()
        )
        persona[n_ordinary : n_ordinary + n_bots] = PERSONA_INDEX["bot"]
        persona[n_ordinary + n_bots :] = PERSONA_INDEX["official"]

        # Languages and regions. Official accounts post in every language's share like the rest.
        regions = [
            (lang_index, name, offset, share * self.language_share[lang_index])
            for lang_index, lang in enumerate(self.languages)
            for name, offset, share in people.REGIONS[lang]
        ]
        region_share = np.array([r[3] for r in regions])
        region = rng.choice(len(regions), n, p=region_share / region_share.sum())
        primary = np.array([regions[r][0] for r in region], dtype=np.int64)
        # A quarter of non-English speakers also post in English; a few English speakers in another.
        secondary = np.full(n, -1, dtype=np.int64)
        if len(self.languages) > 1:
            english = self.languages.index("en") if "en" in self.languages else -1
            roll = rng.random(n)
            other = rng.integers(0, len(self.languages) - 1, n)
            other = np.where(other >= primary, other + 1, other)
            if english >= 0:
                secondary = np.where((primary != english) & (roll < 0.25), english, secondary)
                secondary = np.where((primary == english) & (roll < 0.07), other, secondary)
            else:
                secondary = np.where(roll < 0.15, other, secondary)
        secondary[persona == PERSONA_INDEX["bot"]] = -1

        # Hidden topic affinities: a sparse Dirichlet, so most people care about two or three topics.
        weights = np.array([t.weight for t in self.topics])
        alpha = config.topic_concentration * weights / weights.sum()
        affinity = rng.dirichlet(alpha, n) if n_topics > 1 else np.ones((n, 1))
        affinity = np.nan_to_num(affinity, nan=1.0 / n_topics)  # a Dirichlet draw can underflow to 0/0
        for k, (topic_index, _, _) in enumerate(officials):
            affinity[n_ordinary + n_bots + k] = np.eye(n_topics)[topic_index]
        affinity = (affinity / affinity.sum(axis=1, keepdims=True)).astype(np.float64)

        # Zipf–Mandelbrot activity: weight (rank + q)^-s, ranks drawn so busier personas rank higher.
        boost = np.array([p.boost for p in PERSONAS])[persona]
        order = np.argsort(-(rng.lognormal(0.0, 1.0, n) * boost), kind="stable")
        rank = np.empty(n, dtype=np.float64)
        rank[order] = np.arange(1, n + 1)
        activity = (rank + config.activity_zipf_offset) ** -config.activity_zipf_exponent
        activity /= activity.sum()

        median_followers = np.array([p.followers for p in PERSONAS])[persona]
        # Followers: the persona's median, a lognormal spread, and a little more for busier accounts.
        spread = rng.lognormal(0.0, 1.0, n) * (activity * n) ** 0.2
        followers = np.round(median_followers * spread).astype(np.int64)
        # Engagement scale: followers^0.5 (heavy-tailed, but not as steep as followers), normalised so
        # that an average *post* (authors weighted by activity) has attention 1.
        popularity = np.sqrt(followers + 10.0)
        self.popularity = popularity / float(np.dot(activity, popularity))

        self.persona = persona
        self.primary = primary
        self.secondary = secondary
        self.affinity = affinity
        self.affinity_cum = np.cumsum(affinity, axis=1)
        self.activity = activity
        self.followers = followers
        self.is_bot = persona == PERSONA_INDEX["bot"]
        self.casual_style = np.array([p.casual_style for p in PERSONAS])[persona]

        self.handles = _handles(
            rng, n_ordinary, n_bots, [self.languages[p] for p in primary], officials, handles
        )
        self.user_ids = _account_ids(rng, n)
        #: For official accounts, the entity they speak for (None for everyone else).
        self.entity_of: list[str | None] = [None] * (n_ordinary + n_bots) + [name for _, _, name in officials]
        self._region_names = [regions[r][1] for r in region]
        self._region_offsets = [regions[r][2] for r in region]

        self.regions: list[Region] = []
        for r, (lang_index, name, offset, share) in enumerate(regions):
            members = np.flatnonzero(region == r)
            self.regions.append(
                Region(name, lang_index, offset, float(share), members, np.cumsum(activity[members]))
            )
        # Who can write in each language (for replies, quotes and trends), weighted by activity.
        self.speakers: list[np.ndarray] = []
        self.speakers_cum: list[np.ndarray] = []
        for lang_index in range(len(self.languages)):
            members = np.flatnonzero(((primary == lang_index) | (secondary == lang_index)) & ~self.is_bot)
            self.speakers.append(members)
            self.speakers_cum.append(np.cumsum(activity[members]))
        bots = np.flatnonzero(self.is_bot)
        self.bots_by_lang = [bots[primary[bots] == lang_index] for lang_index in range(len(self.languages))]

    # -- users as records (built on first use: the generator itself only needs the arrays) -----
    @functools.cached_property
    def users(self) -> list[SimUser]:
        topic_names = [t.name for t in self.topics]
        users = []
        for i, user_id in enumerate(self.user_ids):
            langs = [self.languages[self.primary[i]]]
            if self.secondary[i] >= 0:
                langs.append(self.languages[self.secondary[i]])
            users.append(
                SimUser(
                    id=user_id,
                    handle=self.handles[i],
                    persona=PERSONAS[self.persona[i]].name,
                    languages=langs,
                    region=self._region_names[i],
                    utc_offset=self._region_offsets[i],
                    topics={
                        topic_names[t]: round(float(a), 4)
                        for t, a in enumerate(self.affinity[i])
                        if a >= 0.001
                    },
                    is_bot=bool(self.is_bot[i]),
                    activity=float(self.activity[i]),
                    followers=int(self.followers[i]),
                    entity=self.entity_of[i],
                )
            )
        return users

    @functools.cached_property
    def user_index(self) -> dict[str, int]:
        return {user_id: i for i, user_id in enumerate(self.user_ids)}

    def user(self, user_id: str) -> SimUser:
        return self.users[self.user_index[user_id]]

    def topic(self, name: str) -> SimTopic:
        return self.topics[self.topic_index[name]]


class _TopicSpec:
    """A topic's language-independent data in the shape the grammar compiler reads."""

    def __init__(self, name: str, data: dict, handles: dict[str, str]) -> None:
        self.name = name
        self.data = data
        self.entities: dict[str, list[str]] = data["entities"]
        self.hashtags: list[str] = data["hashtags"]
        self.emoji: list[str] = data["emoji"]
        self.domains: list[str] = data["domains"]
        self.handles = handles


def _name(spec: str) -> str:
    gender, sep, name = spec.partition(":")
    return name if sep and gender in ("m", "f") else spec


def _account_entities() -> list[str]:
    return [
        _name(spec) for t in TOPICS.values() for kind in ACCOUNT_KINDS for spec in t["entities"].get(kind, [])
    ]


def _official_handle(name: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w and w.lower() != "the"]
    return "".join(w[:1].upper() + w[1:] for w in words)[:15]


def _handles(
    rng: np.random.Generator,
    n_ordinary: int,
    n_bots: int,
    langs: Sequence[str],
    officials: Sequence[tuple[int, str, str]],
    official_handles: dict[str, str],
) -> list[str]:
    """Unique handles (Twitter's rule: letters, digits and _, at most 15 characters)."""
    taken: set[str] = set()
    result: list[str] = []

    def claim(handle: str) -> str:
        handle = handle[:15]
        while handle.lower() in taken:
            handle = handle[:11] + str(int(rng.integers(10, 10000)))
        taken.add(handle.lower())
        return handle

    for _, _, name in officials:
        taken.add(official_handles[name].lower())
    rolls = rng.random((n_ordinary + n_bots, 4))
    for i in range(n_ordinary + n_bots):
        lang = langs[i]
        first_names, last_names = people.FIRST_NAMES[lang], people.LAST_NAMES[lang]
        r = rolls[i]
        first = first_names[int(r[1] * len(first_names))]
        last = last_names[int(r[2] * len(last_names))]
        if i >= n_ordinary:  # bots: a name and a long run of digits, the classic generated handle
            handle = f"{first}{int(r[3] * 9e7) + 10**7}"
        elif r[0] < 0.3:
            handle = f"{first}{last}"
        elif r[0] < 0.5:
            handle = f"{first}_{last}"
        elif r[0] < 0.7:
            handle = f"{first}{int(r[3] * 99) + 1:02d}"
        elif r[0] < 0.85:
            adjective = people.HANDLE_ADJECTIVES[int(r[2] * len(people.HANDLE_ADJECTIVES))]
            noun = people.HANDLE_NOUNS[int(r[3] * len(people.HANDLE_NOUNS))]
            handle = f"{adjective}{'_' if r[1] < 0.5 else ''}{noun}"
        else:
            handle = f"{first[0]}{last}"
        result.append(claim(handle))
    for _, _, name in officials:
        result.append(official_handles[name])
    return result


def _account_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Distinct numeric account ids spanning old (short) and new (snowflake-sized) accounts."""
    digits = rng.integers(6, 19, n)
    low = 10 ** (digits - 1)
    values = low + (rng.random(n) * (9 * low)).astype(np.int64)
    _, first = np.unique(values, return_index=True)
    duplicate = np.ones(n, dtype=bool)
    duplicate[first] = False
    values[duplicate] = 10**18 + np.arange(int(duplicate.sum()))  # rare; keeps every id distinct
    return [str(v) for v in values.tolist()]
