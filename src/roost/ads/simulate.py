"""A simulated day of the ad business: the simulated platform's users read and search its posts,
ad slots next to them go through the real auction, store and pacing, and users click by their
hidden topic affinities. `roost ads simulate --day` runs it and prints the report.

How the day runs (every draw seeded):
1. The platform (roost.firehose.simulate) with `posts` posts a day. Its first day is history: its
   posts fill the search index, their times become the traffic profile pacing plans with, and its
   ad requests go through the auction with every campaign's budget unlimited and its throttle
   fixed at `budget_fill`: each enters that share of the auctions it is eligible for, its rivals
   too, so the prices are those of a paced market. What that share of its traffic cost is its
   daily budget on the second day, the one reported: a budget its traffic can buy about
   1 / `budget_fill` times over at those prices, so every campaign must be paced, and can be.
2. Ad requests: each post is seen in `Poisson(requests_per_post)` timelines, minutes to hours
   after it is posted, each view by a user drawn by activity × affinity for the post's topic
   among those who read its language; a `search_share` of requests are searches instead, a user
   looking for one of their topics (a hashtag), the slot among the index's results.
3. Clicks (hidden from the ad system): logit = CLICK_BASE + CLICK_AFFINITY × the user's affinity
   for the campaign's topic + CLICK_CONTEXT if the slot's post is really about that topic +
   CLICK_COPY if the ad's text names something of the topic; broad campaigns have no topic and
   a lower base. The auction never sees affinities: it learns from the ledger.
4. Every `retrain_hours` the click model is retrained on the ledger so far; the report's pCTR
   metrics are of the predictions made when each ad was served, before its outcome was known.
5. The simulated platform is a pleasant place, so an `incident_share` of extra posts report
   incidents next to the topics campaigns buy — violence at a derby, a flood, a plane crash, a
   drunk crowd, a pirated download — each knowing which brand-safety categories it belongs to.
   The report counts impressions next to a blocked category twice: by the classifier, and by those
   known categories (both must be 0).
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from roost.ads.auction import AdRequest, AdServer
from roost.ads.config import AdsConfig
from roost.ads.metrics import ClickMetrics, click_metrics
from roost.ads.money import MICROS
from roost.ads.pacing import HOUR_MS, TrafficProfile
from roost.ads.pctr import train_from_store
from roost.ads.profiles import UserProfiles
from roost.ads.safety import MODEL_NAME as SAFETY_MODEL
from roost.ads.safety import SafetyClassifier
from roost.ads.store import CampaignSpec, Store, Targeting, budget_day, from_ms, to_ms
from roost.ads.targeting import ContextPost, Targeter
from roost.ads.topics import MODEL_NAME as TOPICS_MODEL
from roost.ads.topics import TopicModel, train_topics
from roost.firehose.sim_world import PERSONA_INDEX
from roost.firehose.simulate import PostTruth, SimConfig, Simulator
from roost.posts import Event, Post
from roost.search.config import SearchConfig
from roost.search.index import SearchIndex
from roost.search.query import SearchRequest
from roost.search.retrieve import Retriever
from roost.search.text import hashtags_in
from roost.workspace import Workspace

CLICK_BASE = -4.6  # ~1% for a user who does not care about the topic
CLICK_AFFINITY = 6.0  # a user with half their interest in the topic: ~17%
CLICK_CONTEXT = 0.6
CLICK_COPY = 0.4
CLICK_BASE_BROAD = -5.0
DAY_MS = 86_400_000
UNLIMITED = 10**15  # micros: a budget nothing in a simulated day comes near
HOUSE = "Roost house ads"  # the platform's own campaign: never budgeted, never paced


class DayConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    seed: int = 7
    posts: int = 20_000  # the platform's posts per day
    users: int = 5_000
    requests_per_post: float = 1.5  # ad slots each post is seen next to, on average
    search_share: float = 0.1  # of requests: search result slots rather than timeline slots
    # Yesterday every campaign entered this share of its eligible auctions (a fixed throttle, all
    # campaigns at once, so at a paced market's prices); what that cost is today's daily budget,
    # about this share of what its traffic could buy. Sized by what a campaign could have bought,
    # not by what it spent unpaced: unpaced, rivals' bids set higher second prices than any paced
    # day sees, and a share of that spend can be beyond a paced day's reach.
    budget_fill: float = 0.15
    retrain_hours: float = 2.0  # how often the click model is retrained on the ledger
    topic_posts: int = 8_000  # simulated posts the topic model learns from, if the store has none
    index_lag_s: float = 3600.0  # posts reach the search index at most this late (a commit each)
    incident_share: float = 0.04  # extra posts, per simulated post, that report a sensitive incident

    def __post_init__(self) -> None:
        if self.posts < 100 or self.users < 100:
            raise ValueError("a simulated day needs at least 100 posts and 100 users")
        if not 0 < self.requests_per_post <= 20 or not 0 <= self.search_share <= 1:
            raise ValueError("requests_per_post must be in (0, 20], search_share in [0, 1]")
        if not 0 < self.budget_fill <= 1 or self.retrain_hours <= 0:
            raise ValueError("budget_fill must be in (0, 1] and retrain_hours positive")


# (topic, categories it belongs to, text): reports of incidents in the topics campaigns buy.
INCIDENTS: list[tuple[str, tuple[str, ...], str]] = [
    ("football", ("violence",), "Two fans wounded as violence broke out after the {team} derby"),
    ("football", ("crime",), "{team} supporter stabbed outside the stadium after the match"),
    ("football", ("crime",), "Man charged with assault after the {team} game, police say"),
    ("football", ("obscenity",), "what a fucking joke of a referee, {team} robbed again #matchday"),
    ("football", ("drugs",), "drunk {team} fans smashed up the train after the derby"),
    (
        "travel",
        ("disasters",),
        "Flights cancelled as the hurricane nears {place}, the airport is being evacuated",
    ),
    ("travel", ("violence", "disasters"), "Death toll rises after the plane crash near {place}"),
    ("travel", ("terrorism",), "Bombing near the old town in {place}: tourists told to stay away #travel"),
    (
        "weather",
        ("disasters",),
        "Flooding in {place}: homes evacuated as the river bursts its banks #weather",
    ),
    ("weather", ("disasters",), "Wildfire forces thousands to evacuate near {place} #heatwave"),
    ("weather", ("disasters",), "Earthquake hits {place}, buildings down and roads flooded"),
    ("food", ("drugs",), "Bottomless brunch: free beer and tequila shots all night #foodie"),
    ("food", ("crime",), "Restaurant owner in {place} charged with fraud over fake reviews"),
    ("tech", ("piracy",), "Nova X2 cracked version, torrent link in bio, free download #tech"),
    ("fitness", ("drugs",), "Half the gym is on steroids and cocaine, no wonder the workout records fall"),
    ("music", ("drugs",), "The festival crowd was drunk and high on mdma before the headliner"),
]
PLACES = ("Leeds", "Madrid", "Lyon", "Hamburg", "Austin", "Porto", "Naples", "Osaka")


@dataclass(frozen=True)
class Plan:
    """One campaign of the simulated market: who advertises what, to which topic."""

    advertiser: str
    topic: str | None  # None: a broad (awareness) campaign
    spec: CampaignSpec
    creatives: tuple[str, ...]


class CampaignReport(msgspec.Struct):
    id: int
    name: str
    topic: str | None
    objective: str
    pacing: str
    yesterday_micros: int  # what it spent yesterday entering `budget_fill` of its auctions
    daily_budget_micros: int
    spent_micros: int
    spent_share: float  # of the daily budget
    held_back: float  # share of the day pacing held it back (0: its traffic could not buy its budget)
    undeliverable_at: str | None  # UTC time pacing found the budget beyond its traffic's reach, if it did
    forecast_share: float | None  # of the budget, the day's spend forecast then
    impressions: int
    clicks: int
    ctr: float
    cpm_micros: int  # spent per 1,000 impressions
    frequency_cap: int
    max_user_frequency: int  # most impressions any one user saw of it
    blocked_categories: list[str]
    hourly_spend_micros: list[int]  # by UTC hour
    clicks_metrics: ClickMetrics


class DayReport(msgspec.Struct):
    day: str
    seed: int
    posts: int
    requests: int
    filled: int  # requests that showed an ad
    impressions: int
    clicks: int
    spent_micros: int
    budget_micros: int
    clicks_metrics: ClickMetrics
    campaigns: list[CampaignReport]
    excluded: dict[str, int]  # campaign exclusions summed over all requests, by reason
    blocked_impressions: int  # next to a post the classifier puts in a category the campaign blocks (0)
    blocked_incident_impressions: int  # next to an incident in a category the campaign blocks (0)
    incident_impressions: int  # next to an incident of a category the campaign allows
    context_categories: dict[str, int]  # requests whose slot fell in each brand-safety category
    pctr_versions: int  # click models trained during the day (each on the 24 hours before)
    audit: list[str]  # ledger/counter disagreements (must be empty)
    latency_ms: dict[str, float]  # per ad request: p50, p99
    took_s: float


def scenario(start: dt.datetime) -> list[Plan]:
    """The simulated market: a campaign per topic (one spending as soon as it can), two broad
    awareness campaigns competing with all of them, and the platform's own house ads, unpaced and
    unlimited, which fill what nobody buys and so set a price floor under every auction."""

    def plan(
        advertiser,
        topic,
        name,
        bid,
        keywords,
        *,
        objective="traffic",
        pacing="even",
        cap=3,
        blocked=("violence", "crime", "obscenity"),
        languages=("en",),
        creatives=(),
    ) -> Plan:
        slug = advertiser.lower().replace(" ", "")
        spec = CampaignSpec(
            name=name,
            objective=objective,
            bid_micros=int(bid * MICROS),
            daily_budget_micros=MICROS,
            total_budget_micros=100 * MICROS,
            start=start,
            end=start + dt.timedelta(days=30),
            targeting=Targeting(
                keywords=list(keywords),
                topics=[topic] if topic else [],
                languages=list(languages),
                brief=f"{name}: {', '.join(keywords)}" if topic else "",
            ),
            blocked_categories=list(blocked),
            frequency_cap=cap,
            pacing=pacing,
            landing_url=f"https://{slug}.example/{topic or 'hello'}",
        )
        return Plan(advertiser, topic, spec, tuple(creatives))

    return [
        plan(
            "Stride",
            "fitness",
            "Stride running shoes",
            0.8,
            ["running", "gym", "workout", "#marathon"],
            creatives=("Stride: shoes for your morning runs and leg day.", "Stride. Shoes that last."),
        ),
        plan(
            "Kickoff",
            "football",
            "Kickoff match tickets",
            1.2,
            ["football", "matchday", "derby", "referee"],
            languages=("en", "es"),
            cap=4,
            creatives=("Kickoff: every derby, every matchday, one app.", "Kickoff. Tickets in two taps."),
        ),
        plan(
            "Hoops Gear",
            "basketball",
            "Hoops Gear jerseys",
            0.9,
            ["basketball", "playoffs", "#NBA"],
            creatives=("Hoops Gear: jerseys for the playoff race.", "Hoops Gear. Wear it loud."),
        ),
        plan(
            "Pixel Labs",
            "tech",
            "Pixel Labs earbuds",
            1.5,
            ["earbuds", "battery life", "#gadgets"],
            creatives=("Pixel Labs earbuds: two days of battery life.", "Pixel Labs. Hear more."),
        ),
        plan(
            "Arcade",
            "gaming",
            "Arcade game deals",
            1.0,
            ["gaming", "battle pass", "#esports"],
            pacing="asap",
            cap=0,
            creatives=("Arcade: the battle pass, half price.", "Arcade. Play more."),
        ),
        plan(
            "Tastebud",
            "food",
            "Tastebud meal kits",
            0.6,
            ["brunch", "ramen", "meal prep", "#foodie"],
            blocked=("violence", "crime", "obscenity", "drugs"),
            creatives=("Tastebud: ramen and brunch kits at your door.", "Tastebud. Dinner, sorted."),
        ),
        plan(
            "Wanderly",
            "travel",
            "Wanderly city breaks",
            1.0,
            ["flight", "hotel", "night trains", "#travel"],
            blocked=("violence", "crime", "terrorism", "disasters"),
            creatives=("Wanderly: night trains and old towns.", "Wanderly. Go somewhere."),
        ),
        plan(
            "Brollyco",
            "weather",
            "Brollyco umbrellas",
            0.5,
            ["rain", "forecast", "#weather", "#storm"],
            blocked=("violence", "disasters"),
            creatives=("Brollyco: umbrellas for the rain in the forecast.", "Brollyco. Stay dry."),
        ),
        plan(
            "Metro Bank",
            None,
            "Metro Bank brand",
            4.0,
            [],
            objective="awareness",
            cap=2,
            blocked=("violence", "crime", "obscenity", "drugs", "disasters", "social_issues", "arms"),
            languages=("en", "es", "fr", "de"),
            creatives=("Metro Bank. Banking that keeps up.",),
        ),
        plan(
            "Fizz",
            None,
            "Fizz soda brand",
            3.0,
            [],
            objective="awareness",
            cap=3,
            blocked=("violence", "obscenity", "disasters"),
            languages=("en",),
            creatives=("Fizz. Open happy.",),
        ),
        plan(
            "Roost",
            None,
            HOUSE,
            2.0,
            [],
            objective="awareness",
            pacing="asap",
            cap=0,
            blocked=(),
            languages=(),
            creatives=("Roost: say what you see.",),
        ),
    ]


class _Audience:
    """Who sees a post about a topic in a language: users drawn by activity × affinity."""

    def __init__(self, world, rng: np.random.Generator) -> None:
        self.world, self.rng = world, rng
        self.humans = np.flatnonzero(~world.is_bot & np.array([e is None for e in world.entity_of]))
        self._cum: dict[tuple[int, int], np.ndarray] = {}

    def viewer(self, topic: int, lang: int) -> int:
        cum = self._cum.get((topic, lang))
        if cum is None:
            w = self.world
            reads = (w.primary[self.humans] == lang) | (w.secondary[self.humans] == lang)
            weight = w.activity[self.humans] * (w.affinity[self.humans, topic] + 0.02) * reads
            cum = self._cum[(topic, lang)] = np.cumsum(weight)
        return int(self.humans[min(np.searchsorted(cum, self.rng.random() * cum[-1]), len(cum) - 1)])

    def searcher(self) -> tuple[int, int]:
        """A user searching, and the topic they search for (by their affinities)."""
        w = self.world
        user = int(self.humans[self.rng.choice(len(self.humans), p=self._activity_p())])
        topic = int(self.rng.choice(w.affinity.shape[1], p=w.affinity[user] / w.affinity[user].sum()))
        return user, topic

    def _activity_p(self) -> np.ndarray:
        if not hasattr(self, "_p"):
            a = self.world.activity[self.humans]
            self._p = a / a.sum()
        return self._p


@dataclass(order=True)
class _Slot:
    at_ms: int
    seq: int
    user: int = 0
    post: ContextPost | None = None
    topic: int = -1  # the true topic of what the user is looking at
    query: str = ""


class DaySimulation:
    """Runs `run()` once; the store must be empty (a database of its own)."""

    def __init__(
        self,
        store: Store,
        config: DayConfig,
        ads_config: AdsConfig | None = None,
        *,
        engine=None,
        workdir: Path | None = None,
    ) -> None:
        self.store, self.config = store, config
        # One ad server runs the day and knows its own spend as it goes, and campaigns change only
        # when the day starts: reloading them hourly (not every few seconds) changes nothing but the
        # time the run takes. Pacing still steps every pacing_interval_s.
        base = ads_config or AdsConfig()
        self.ads_config = msgspec.structs.replace(base, refresh_s=max(base.refresh_s, 3600.0))
        self.engine = engine
        self._tmp = tempfile.TemporaryDirectory(prefix="roost-ads-sim-") if workdir is None else None
        self.workdir = Path(self._tmp.name) if self._tmp else workdir
        self.sim = Simulator(SimConfig(seed=config.seed, users=config.users, posts_per_day=config.posts))
        self.world = self.sim.world
        self.start = self.sim.config.start
        self.day1_ms = to_ms(self.start) + DAY_MS
        self.rng = np.random.default_rng([config.seed, 0xAD5])
        self.audience = _Audience(self.world, np.random.default_rng([config.seed, 0x5EE]))
        self.topic_index = self.world.topic_index
        self.texts: dict[str, str] = {}
        self.truth: dict[str, PostTruth] = {}
        self.day_posts: Counter[str] = Counter()
        self.incident_categories: dict[str, frozenset[str]] = {}
        self.slot_posts: dict[str, list[str]] = {}  # request id -> the posts around its slot
        self.plans: dict[int, Plan] = {}
        self.yesterday: dict[int, int] = {}  # campaign -> what it spent yesterday at `budget_fill`
        self.yesterday_times: list[int] = []
        self.latencies: list[float] = []
        self.excluded: Counter[str] = Counter()
        self.categories: Counter[str] = Counter()
        self.requests = self.filled = self.pctr_versions = 0
        self._reported_day = False
        self._next_train = to_ms(self.start) + int(config.retrain_hours * HOUR_MS)
        self._clicks_rng = np.random.default_rng([config.seed, 0xC11C])
        self._incident_rng = np.random.default_rng([config.seed, 0x1C1])
        self._reporters = np.flatnonzero(self.world.persona == PERSONA_INDEX["news"])

    # -- setup ----------------------------------------------------------------------------------
    def _models(self) -> tuple[TopicModel, SafetyClassifier]:
        topics = TopicModel.load(self.store)
        if topics is None:
            classifier = train_topics(self.config.topic_posts)
            self.store.save_model(TOPICS_MODEL, classifier.to_bytes(), classifier.meta)
            topics = TopicModel(classifier)
        return topics, SafetyClassifier.load(self.store, self.ads_config.safety_threshold)

    def _index(self) -> SearchIndex:
        from roost.search.embedder import EngineEmbedder

        embedder = (
            EngineEmbedder(self.engine, f"roost:{self.engine.name}") if self.engine is not None else None
        )
        config = SearchConfig(partition_posts=50_000, embedder="none", vector_save_s=3600.0, embed_batch=128)
        return SearchIndex(self.workdir / "index", config, embedder)

    def _campaigns(self) -> dict[int, Plan]:
        """Create the scenario's advertisers, campaigns and creatives. Yesterday they run with no
        budget to speak of, each in `budget_fill` of its auctions (`_loop`); `_start_reported_day`
        gives them their budgets and pacing."""
        plans = {}
        for plan in scenario(self.start):
            advertiser = self.store.add_advertiser(plan.advertiser)
            unpaced = msgspec.structs.replace(
                plan.spec, pacing="asap", daily_budget_micros=UNLIMITED, total_budget_micros=UNLIMITED
            )
            campaign = self.store.add_campaign(advertiser.id, unpaced)
            for text in self._copy(plan):
                self.store.add_creative(campaign.id, text)
            plans[campaign.id] = plan
        return plans

    def _copy(self, plan: Plan) -> list[str]:
        """The advertiser's own lines, and with a model, variants it writes that pass every check."""
        url = plan.spec.landing_url
        texts = [f"{line} {url}" for line in plan.creatives]
        if self.engine is not None and plan.topic is not None:
            from roost.ads.creative import Brief, CreativeWriter

            brief = Brief(
                product=plan.spec.name,
                audience=f"people who love {plan.topic}",
                landing_url=url,
                language="en",
                n=2,
            )
            texts += [v.text for v in CreativeWriter(self.engine, self.ads_config).write(brief).variants]
        return texts

    # -- traffic --------------------------------------------------------------------------------
    def _slots_for(self, event: Event, truth: PostTruth, seq: int) -> list[_Slot]:
        post = event.post
        if truth.is_spam or post.lang is None:
            return []
        created = to_ms(post.created_at)
        lang = self.world.languages.index(truth.lang) if truth.lang in self.world.languages else 0
        slots = []
        for k in range(self.rng.poisson(self.config.requests_per_post)):
            at = created + int(self.rng.exponential(1_800_000))
            if self.rng.random() < self.config.search_share:
                user, topic = self.audience.searcher()
                tags = self.world.topics[topic].hashtags
                query = "#" + tags[int(self.rng.integers(len(tags)))]
                slots.append(_Slot(at, seq * 64 + k, user, None, topic, query))
            else:
                user = self.audience.viewer(self.topic_index[truth.topic], lang)
                slots.append(
                    _Slot(at, seq * 64 + k, user, ContextPost.of(post), self.topic_index[truth.topic])
                )
        return slots

    def _incident(self, at: dt.datetime) -> tuple[Event, PostTruth]:
        """A post reporting an incident in one of the topics, with the categories it belongs to."""
        rng = self._incident_rng
        topic, categories, template = INCIDENTS[int(rng.integers(len(INCIDENTS)))]
        teams = self.world.topic("football").entities["team"]
        text = template.format(
            team=teams[int(rng.integers(len(teams)))], place=PLACES[int(rng.integers(len(PLACES)))]
        )
        author = self.world.user_ids[int(self._reporters[int(rng.integers(len(self._reporters)))])]
        post_id = f"incident-{len(self.incident_categories)}"
        post = Post(
            id=post_id,
            text=text,
            author_id=author,
            created_at=at + dt.timedelta(milliseconds=1),
            lang="en",
            hashtags=hashtags_in(text),
            source="ads-simulate",
        )
        self.incident_categories[post_id] = frozenset(categories)
        truth = PostTruth(
            kind="incident",
            act="news",
            topic=topic,
            lang="en",
            stance=-1,
            focus="incident",
            depth=0,
            root=post_id,
            author_persona="news",
        )
        return Event(type="post", id=post_id, post=post), truth

    def _request(self, slot: _Slot, retriever: Retriever) -> AdRequest:
        user = self.world.user_ids[slot.user]
        lang = self.world.languages[self.world.primary[slot.user]]
        if slot.post is not None:
            return AdRequest(
                request_id=f"r{slot.seq}", user_id=user, slot="timeline", posts=[slot.post], lang=lang
            )
        hits = retriever.search(SearchRequest(query=slot.query, mode="lexical", limit=3)).hits
        posts = [ContextPost.of(h.post) for h in hits]
        return AdRequest(
            request_id=f"r{slot.seq}", user_id=user, slot="search", posts=posts, query=slot.query, lang=lang
        )

    def _click_probability(
        self, slot: _Slot, campaign_topic: str | None, text: str, context_truth: int
    ) -> float:
        if campaign_topic is None:
            return 1 / (1 + math.exp(-CLICK_BASE_BROAD))
        t = self.topic_index[campaign_topic]
        vocab = self.world.topics[t].vocab.get("en", [])
        relevant = any(word.removeprefix("the ").lower() in text.lower() for word in vocab)
        logit = (
            CLICK_BASE
            + CLICK_AFFINITY * float(self.world.affinity[slot.user, t])
            + CLICK_CONTEXT * (context_truth == t)
            + CLICK_COPY * relevant
        )
        return 1 / (1 + math.exp(-logit))

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> DayReport:
        started = time.perf_counter()
        self.topics, self.safety = self._models()
        index = self._index()
        retriever = Retriever(index, log_queries=False)
        self.plans = self._campaigns()
        profiles = UserProfiles(retriever, self.topics)
        try:
            self._loop(index, retriever, profiles)
        finally:
            index.close()
            if self._tmp is not None:
                self._tmp.cleanup()
        report = self._report()
        report.took_s = round(time.perf_counter() - started, 2)
        return report

    def _server(self, retriever: Retriever, profiles: UserProfiles, profile: TrafficProfile) -> AdServer:
        return AdServer(
            self.store,
            self.ads_config,
            targeter=Targeter(self.ads_config, retriever),
            safety=self.safety,
            topics=self.topics,
            profiles=profiles,
            profile=profile,
        )

    def _loop(self, index: SearchIndex, retriever: Retriever, profiles: UserProfiles) -> None:
        """Both days, event by event: posts go to the index (in batches, `index_lag_s` apart) and
        through the topic and safety models (in batches, as on ingest); each slot is served when
        the stream reaches its time."""
        self.server = self._server(retriever, profiles, TrafficProfile())
        for cid, plan in self.plans.items():
            if plan.spec.name != HOUSE:
                self.server.pacer.fix(cid, self.config.budget_fill)
        end_ms = self.day1_ms + DAY_MS
        pending: list[_Slot] = []
        batch: list[Event] = []
        unread: dict[str, None] = {}
        lag, flushed = int(self.config.index_lag_s * 1000), -(1 << 62)

        def take(event: Event, truth: PostTruth | None) -> None:
            batch.append(event)
            if event.post is None or truth is None:
                return
            unread[event.post.text] = None
            self.texts[event.post.id] = event.post.text
            self.truth[event.post.id] = truth
            self.day_posts[budget_day(to_ms(event.post.created_at))] += 1
            for slot in self._slots_for(event, truth, len(self.texts)):
                heapq.heappush(pending, slot)
            if truth.kind != "incident" and self._incident_rng.random() < self.config.incident_share:
                take(*self._incident(event.post.created_at))

        def serve_until(t: int) -> None:
            nonlocal flushed
            while pending and pending[0].at_ms <= t and pending[0].at_ms < end_ms:
                slot = heapq.heappop(pending)
                if slot.at_ms - flushed >= lag and batch:
                    index.apply(batch)
                    if index.embedder is not None:
                        index.wait_dense()
                    batch.clear()
                    flushed = slot.at_ms
                if slot.post is not None and slot.post.text in unread:
                    # as the platform would on ingest: posts a batch at a time, not one per slot
                    texts = list(unread)
                    self.topics.proba(texts)
                    self.safety.categories(texts)
                    unread.clear()
                self._serve(slot, retriever, profiles)

        for event, truth in self.sim.labelled():
            if event.post is not None:  # a delete has no time of its own: it follows its post
                t = to_ms(event.post.created_at)
                serve_until(t)
                if t >= end_ms:
                    break
            take(event, truth)
        serve_until(end_ms)

    def _serve(self, slot: _Slot, retriever: Retriever, profiles: UserProfiles) -> None:
        if slot.at_ms >= self.day1_ms and not self._reported_day:
            self._start_reported_day(retriever, profiles)
        if slot.at_ms >= self._next_train:
            if self._train(slot.at_ms):
                self.server.refresh(slot.at_ms)  # serve with the new model from now on
                self.pctr_versions += self._reported_day
            self._next_train += int(self.config.retrain_hours * HOUR_MS)
        request = self._request(slot, retriever)
        began = time.perf_counter()
        response = self.server.serve(request, slot.at_ms)
        took = (time.perf_counter() - began) * 1000
        if self._reported_day:
            self.latencies.append(took)
            self.requests += 1
            self.filled += bool(response.ads)
            self.excluded.update(response.excluded)
            self.categories.update(response.context_categories)
            self.slot_posts[request.request_id] = [p.id for p in request.posts]
        else:
            self.yesterday_times.append(slot.at_ms)
        context_truth = slot.topic
        if request.posts and request.posts[0].id in self.truth:
            context_truth = self.topic_index[self.truth[request.posts[0].id].topic]
        for ad in response.ads:
            p = self._click_probability(slot, self.plans[ad.campaign_id].topic, ad.text, context_truth)
            if self._clicks_rng.random() < p:
                self.store.record_click(
                    ad.impression_id, slot.at_ms + int(self._clicks_rng.integers(1000, 60_000))
                )

    def _start_reported_day(self, retriever: Retriever, profiles: UserProfiles) -> None:
        """Yesterday every campaign bought `budget_fill` of its traffic; today what that cost is its
        daily budget, with its own pacing, which plans with yesterday's traffic by hour."""
        totals = self.store.ledger_totals(since_ms=self.day1_ms - DAY_MS, until_ms=self.day1_ms)
        for campaign in self.store.campaigns():
            spent = totals[campaign.id].spent_micros if campaign.id in totals else 0
            self.yesterday[campaign.id] = spent
            if campaign.name == HOUSE:
                continue
            daily = max(spent, 1000)
            self.store.update_campaign(
                campaign.id,
                {
                    "daily_budget_micros": daily,
                    "total_budget_micros": campaign.spent_micros + 30 * daily,
                    "pacing": self.plans[campaign.id].spec.pacing,
                },
            )
        profile = TrafficProfile.from_requests(self.yesterday_times)
        profile.save(self.store)
        self.server = self._server(retriever, profiles, profile)
        self._reported_day = True

    def _train(self, now_ms: int) -> bool:
        """Retrain the click model on the last day of the ledger (if it has clicks to learn from)."""
        try:
            train_from_store(self.store, since_ms=now_ms - DAY_MS, until_ms=now_ms)
        except ValueError:
            return False
        return True

    # -- the report -----------------------------------------------------------------------------------
    def _report(self) -> DayReport:
        store, end_ms = self.store, self.day1_ms + DAY_MS
        served = store.served(since_ms=self.day1_ms, until_ms=end_ms)
        entries = store.ledger(since_ms=self.day1_ms, until_ms=end_ms, kind="impression")
        totals = store.ledger_totals(since_ms=self.day1_ms, until_ms=end_ms)
        floor = set(self.ads_config.floor_categories)
        campaigns = {c.id: c for c in store.campaigns()}
        blocked = blocked_incidents = incidents = 0
        hourly: dict[int, list[int]] = defaultdict(lambda: [0] * 24)
        per_user: Counter[tuple[int, str]] = Counter()
        for entry in entries:
            refuses = set(campaigns[entry.campaign_id].blocked_categories) | floor
            posts = self.slot_posts[entry.event_key.split(":")[1]]
            found = frozenset().union(*self.safety.categories([self.texts[p] for p in posts]))
            blocked += bool(found & refuses)
            known = frozenset().union(*(self.incident_categories.get(p, frozenset()) for p in posts))
            if known:
                incidents += not known & refuses
                blocked_incidents += bool(known & refuses)
            hourly[entry.campaign_id][(entry.at_ms - self.day1_ms) // HOUR_MS] += entry.amount_micros
            per_user[(entry.campaign_id, entry.user_id)] += 1
        reports = []
        for cid, campaign in campaigns.items():
            spent = totals.get(cid)
            mine = [s for s in served if s.campaign_id == cid]
            impressions = spent.impressions if spent else 0
            undeliverable = self.server.pacer.undeliverable(cid)
            reports.append(
                CampaignReport(
                    id=cid,
                    name=campaign.name,
                    topic=self.plans[cid].topic,
                    yesterday_micros=self.yesterday.get(cid, 0),
                    objective=campaign.objective,
                    pacing=campaign.pacing,
                    daily_budget_micros=campaign.daily_budget_micros,
                    spent_micros=spent.spent_micros if spent else 0,
                    spent_share=round((spent.spent_micros if spent else 0) / campaign.daily_budget_micros, 4),
                    held_back=round(self.server.pacer.held_back(cid), 4),
                    undeliverable_at=(
                        from_ms(undeliverable.at_ms).strftime("%H:%M") if undeliverable else None
                    ),
                    forecast_share=undeliverable.forecast_share if undeliverable else None,
                    impressions=impressions,
                    clicks=spent.clicks if spent else 0,
                    ctr=round(spent.clicks / impressions, 5) if impressions else 0.0,
                    cpm_micros=(spent.spent_micros * 1000 // impressions) if impressions else 0,
                    frequency_cap=campaign.frequency_cap,
                    max_user_frequency=max((n for (c, _), n in per_user.items() if c == cid), default=0),
                    blocked_categories=campaign.blocked_categories,
                    hourly_spend_micros=hourly[cid],
                    clicks_metrics=click_metrics(
                        np.array([s.pctr for s in mine]), np.array([s.clicked for s in mine]), bins=5
                    ),
                )
            )
        ordered = np.sort(np.asarray(self.latencies)) if self.latencies else np.zeros(1)
        return DayReport(
            day=budget_day(self.day1_ms),
            seed=self.config.seed,
            posts=self.day_posts[budget_day(self.day1_ms)],
            requests=self.requests,
            filled=self.filled,
            impressions=len(served),
            clicks=sum(s.clicked for s in served),
            spent_micros=sum(r.spent_micros for r in reports),
            budget_micros=sum(r.daily_budget_micros for r in reports),
            clicks_metrics=click_metrics(
                np.array([s.pctr for s in served]), np.array([s.clicked for s in served])
            ),
            campaigns=reports,
            excluded=dict(sorted(self.excluded.items())),
            blocked_impressions=blocked,
            blocked_incident_impressions=blocked_incidents,
            incident_impressions=incidents,
            context_categories=dict(sorted(self.categories.items())),
            pctr_versions=self.pctr_versions,
            audit=store.audit(),
            latency_ms={
                "p50": round(float(np.percentile(ordered, 50)), 3),
                "p99": round(float(np.percentile(ordered, 99)), 3),
            },
            took_s=0.0,
        )


def run_isolated(
    config: DayConfig,
    ads_config: AdsConfig,
    directory: Path,
    *,
    source: Store | None = None,
    database: str = "",
    engine=None,
) -> DayReport:
    """A simulated day in a database of its own (`database`, which must be empty, or a SQLite file
    in `directory`), never among real campaigns; the topic and safety models of `source` (the
    workspace's store) are used when it has them."""
    store = Store(database or f"sqlite:///{directory / 'ads.db'}")
    try:
        if store.campaigns():
            raise ValueError("a simulated day needs an empty database: this one has campaigns")
        if source is not None:
            for name in (TOPICS_MODEL, SAFETY_MODEL):
                saved = source.load_model(name)
                if saved is not None:
                    store.save_model(name, saved[1], saved[2])
        return DaySimulation(store, config, ads_config, engine=engine, workdir=directory).run()
    finally:
        store.close()


def simulate_day(ws: Workspace, config: DayConfig, *, database: str = "", model: str = "none") -> DayReport:
    """`roost ads simulate --day`: the day in <home>/ads-sim (replaced each run; its database and
    search index stay there to look at), with `model` ("none", "auto" for the newest run, or a
    run or export) embedding posts for targeting and writing copy."""
    directory = ws.home / "ads-sim"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    ads_config = ws.config("ads", AdsConfig)
    source = Store.open(ws, ads_config.database) if ads_config.database or ws.ads_db.exists() else None
    engine = None
    if model != "none":
        from roost.search.embedder import engine_for

        engine = engine_for(ws, "" if model == "auto" else model, cuda_graphs=False)
    try:
        return run_isolated(config, ads_config, directory, source=source, database=database, engine=engine)
    finally:
        if engine is not None:
            engine.close()
        if source is not None:
            source.close()
