"""The auction: an ad request (a timeline or search slot, the posts around it, the user) in, ads
out, each charged in the same transaction that records its impression.

For each live campaign, in this order, a reason to leave it out is counted (`excluded`): its
schedule, the user's language, targeting (roost.ads.targeting), brand safety (a category of the
slot's posts that it or the platform floor blocks), the user's frequency cap, a spent budget, and
pacing (its throttle). A campaign still in picks its creative with the highest predicted click rate
(pCTR, roost.ads.pctr) and bids its value per impression:

    value = bid × pCTR          (per-click bids: traffic, engagement)
    value = bid / 1000          (per-mille bids: awareness)

which is eCPM / 1000, in micros, and never more than the campaign's daily budget has left (a bid
it could not pay for would be refused at the charge; capped, its last micros can still buy a
cheaper impression). Values below the reserve are out. Positions are filled by value,
and each winner pays the generalized second price: the value of the one ranked just below it, at
least the reserve, never more than its own value (rounded to whole micros: up for the price, down
for the cap, and the reserve is a whole number of micros, so reserve <= price <= value holds
exactly). A bidder's payment does not depend on its own bid while it wins, so bidding its true
value per click is optimal in a single slot. The charge (Store.charge) can still refuse — another
server spent the budget first, the cap was reached meanwhile — and then that campaign drops out and
the position goes to the next, priced again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import msgspec

from roost.ads.config import AdsConfig
from roost.ads.pacing import Pacer, TrafficProfile
from roost.ads.pctr import MODEL_NAME as PCTR_MODEL
from roost.ads.pctr import PctrModel
from roost.ads.profiles import UserProfiles
from roost.ads.safety import SafetyClassifier
from roost.ads.schema import now_ms as wall_ms
from roost.ads.store import (
    Campaign,
    Creative,
    DaySpend,
    ImpressionCharge,
    Slot,
    Store,
    budget_day,
    from_ms,
    to_ms,
)
from roost.ads.targeting import Context, ContextPost, Match, Targeter
from roost.ads.topics import TopicModel

log = logging.getLogger(__name__)

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class AdRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An ad slot to fill: where it is, next to what, for whom. `request_id` makes a retry safe:
    the same id is never charged twice."""

    request_id: Id
    user_id: Id
    slot: Slot = "timeline"
    # the posts around the slot, or the search results it sits in
    posts: Annotated[list[ContextPost], msgspec.Meta(max_length=50)] = []
    query: Annotated[str, msgspec.Meta(max_length=1000)] = ""  # the search, for a search slot
    lang: Annotated[str, msgspec.Meta(max_length=20)] | None = None  # the user's language
    count: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1  # positions to fill


class ServedAd(msgspec.Struct):
    position: int
    impression_id: int
    campaign_id: int
    creative_id: int
    text: str
    landing_url: str
    handle: str
    price_micros: int  # charged for this impression
    value_micros: float  # what it bid per impression (eCPM / 1000)
    pctr: float
    match: str


class AdResponse(msgspec.Struct):
    request_id: str
    ads: list[ServedAd]
    eligible: int  # campaigns that entered the auction
    excluded: dict[str, int]  # campaigns left out, by reason
    context_categories: list[str]  # the slot's brand-safety categories


@dataclass
class _Candidate:
    campaign: Campaign
    creative: Creative
    match: Match
    features: list[str]
    pctr: float
    value: float  # micros per impression


@dataclass
class _Live:
    campaign: Campaign
    creatives: list[Creative]


def value_per_impression(campaign: Campaign, pctr: float) -> float:
    """What an impression is worth to the campaign, in micros: its eCPM / 1000."""
    return campaign.bid_micros * pctr if campaign.bid_per_click else campaign.bid_micros / 1000.0


def second_price(value: float, runner_up: float, reserve: int) -> int:
    """The generalized second price of a winner with `value` over `runner_up` (whole micros)."""
    return min(math.ceil(max(runner_up, reserve)), math.floor(value))


def features(
    campaign: Campaign,
    creative: Creative,
    match: Match,
    context: Context,
    interests: Sequence[str],
    slot: str,
    user_lang: str | None,
    hour: int,
) -> list[str]:
    """The click model's features of showing `creative` in this slot to this user."""
    c = f"c:{campaign.id}"
    names = [c, f"cr:{creative.id}", f"slot:{slot}", f"m:{match.kind}", f"{c}|m:{match.kind}", f"{c}|{slot}"]
    if context.top_topic is not None:
        names += [f"ct:{context.top_topic}", f"{c}|ct:{context.top_topic}"]
    for topic in interests:
        names += [f"ut:{topic}", f"{c}|ut:{topic}"]
    if user_lang and campaign.targeting.languages:
        names.append("lang:" + ("in" if user_lang in campaign.targeting.languages else "out"))
    names.append(f"h:{hour}")
    return names


class AdServer:
    """Fills ad requests from the store's live campaigns. Thread-safe for `serve` from many threads
    (the store serialises charges; the caches are replaced, never mutated in place, on refresh)."""

    def __init__(
        self,
        store: Store,
        config: AdsConfig,
        *,
        targeter: Targeter,
        safety: SafetyClassifier,
        topics: TopicModel | None = None,
        profiles: UserProfiles | None = None,
        profile: TrafficProfile | None = None,
    ) -> None:
        self.store, self.config = store, config
        self.targeter, self.safety, self.topics, self.profiles = targeter, safety, topics, profiles
        self.pacer = Pacer(config, profile or TrafficProfile.load(store))
        self.reserve = math.ceil(config.reserve_cpm_micros / 1000)  # micros per impression
        self.floor = frozenset(config.floor_categories)
        self.pctr = PctrModel.prior(config.prior_ctr)
        self._pctr_version = 0
        self._live: list[_Live] = []
        self._spend: dict[int, DaySpend] = {}
        self._day: str | None = None
        self._loaded_ms: int | None = None
        self._refreshing = threading.Lock()
        self._background: tuple[threading.Event, threading.Thread] | None = None

    # -- keeping up with the store -------------------------------------------------------------------
    def refresh(self, now_ms: int) -> None:
        """Reload campaigns, creatives, today's spend and the click model; step pacing; search for
        campaigns' conversations that are due."""
        live = []
        campaigns = [
            c
            for c in self.store.campaigns(status="active")
            if to_ms(c.start) <= now_ms
            and (c.end is None or now_ms < to_ms(c.end))
            and c.spent_micros < c.total_budget_micros
        ]
        creatives: dict[int, list[Creative]] = {}
        for creative in self.store.creatives(status="active"):
            creatives.setdefault(creative.campaign_id, []).append(creative)
        for campaign in campaigns:
            if creatives.get(campaign.id):
                live.append(_Live(campaign, creatives[campaign.id]))
        self._day = budget_day(now_ms)
        self._spend = self.store.day_spend(self._day)
        self.targeter.update(campaigns)
        self.targeter.refresh(now_ms)
        version = self.store.model_version(PCTR_MODEL)
        if version != self._pctr_version:
            saved = self.store.load_model(PCTR_MODEL)
            if saved is not None:
                self.pctr, self._pctr_version = PctrModel.from_bytes(saved[1]), saved[0]
        if self.pacer.due(now_ms):
            self.pacer.step(now_ms, campaigns, self._spend)
        self._live = live
        self._loaded_ms = now_ms

    def _maybe_refresh(self, now_ms: int) -> None:
        """Refresh when due by request time (simulations, tests); with a background refresher
        running, only before the first load."""
        due = self._loaded_ms is None or (
            self._background is None
            and (now_ms - self._loaded_ms >= self.config.refresh_s * 1000 or budget_day(now_ms) != self._day)
        )
        if due and self._refreshing.acquire(blocking=self._loaded_ms is None):
            try:
                self.refresh(now_ms)
            finally:
                self._refreshing.release()
        elif self._background is None and self.pacer.due(now_ms):
            # Between reloads pacing still steps, on the spend this server has charged since.
            self.pacer.step(now_ms, [entry.campaign for entry in self._live], self._spend)
            self.targeter.refresh(now_ms)

    def start_refreshing(self) -> None:
        """Refresh every `refresh_s` of wall time on a thread of its own, so that no ad request
        waits for one (a live server; simulations refresh by request time instead)."""
        if self._background is not None:
            return
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.config.refresh_s):
                with self._refreshing:
                    try:
                        self.refresh(wall_ms())
                    except Exception:  # a failed refresh keeps the last good state; the next retries
                        log.exception("ads: refresh failed")

        self._background = (stop, threading.Thread(target=loop, name="roost-ads-refresh", daemon=True))
        self._background[1].start()

    def stop_refreshing(self) -> None:
        if self._background is not None:
            stop, thread = self._background
            stop.set()
            thread.join(timeout=30)
            self._background = None

    # -- the auction --------------------------------------------------------------------------------
    def serve(self, request: AdRequest, now_ms: int | None = None) -> AdResponse:
        """Run the auction for `request` at `now_ms` (default: the clock) and charge the winners."""
        now = wall_ms() if now_ms is None else now_ms
        self._maybe_refresh(now)
        count = min(request.count, self.config.max_ads_per_request)
        context = Context(
            request.posts,
            request.query,
            topics=self.topics,
            safety=self.safety,
            topic_threshold=self.config.topic_threshold,
        )
        categories = sorted(context.categories)
        excluded: Counter[str] = Counter()
        if context.categories & self.floor:
            excluded["brand_safety_floor"] = len(self._live)
            return AdResponse(request.request_id, [], 0, dict(excluded), categories)
        capped = any(entry.campaign.frequency_cap for entry in self._live)
        seen = self.store.user_frequency(request.user_id, budget_day(now)) if capped else {}
        candidates = self._candidates(request, context, now, excluded, seen=seen)
        ads = self._fill(request, candidates, count, now, excluded)
        if not ads:
            # A retry of a request charged before (here or on another server): `_fill` met its
            # ledger entry (None), or nothing is eligible this time. The client gets what it was
            # charged for. Looked up only now, so that the usual request pays no extra read.
            replay = self._replay(request, count, categories)
            if replay is not None:
                return replay
        return AdResponse(request.request_id, ads or [], len(candidates), dict(excluded), categories)

    def _replay(self, request: AdRequest, count: int, categories: list[str]) -> AdResponse | None:
        """A request already served (a client's retry): the same ads again, charged once."""
        entries = self.store.impressions_for(request.request_id, count)
        if not entries:
            return None
        ads = []
        for entry in entries:
            campaign = self.store.campaign(entry.campaign_id)
            ads.append(
                ServedAd(
                    position=len(ads),
                    impression_id=entry.id,
                    campaign_id=entry.campaign_id,
                    creative_id=entry.creative_id,
                    text=self.store.creative(entry.creative_id).text,
                    landing_url=campaign.landing_url,
                    handle=campaign.handle,
                    price_micros=entry.amount_micros,
                    value_micros=round(value_per_impression(campaign, entry.pctr or 0.0), 3),
                    pctr=round(entry.pctr or 0.0, 6),
                    match="replay",
                )
            )
        return AdResponse(request.request_id, ads, 0, {}, categories)

    def _candidates(
        self,
        request: AdRequest,
        context: Context,
        now: int,
        excluded: Counter[str],
        *,
        seen: dict[int, int],
    ) -> list[_Candidate]:
        live, spend = self._live, self._spend
        interests: list[str] | None = None
        hour = from_ms(now).hour
        out = []
        for entry in live:
            campaign = entry.campaign
            languages = campaign.targeting.languages
            if languages and not ({request.lang} | context.langs) & set(languages):
                excluded["language"] += 1
                continue
            targets = self.targeter.targets.get(campaign.id)
            match = targets.match(context) if targets is not None else None
            if match is None:
                excluded["targeting"] += 1
                continue
            if context.categories & set(campaign.blocked_categories):
                excluded["brand_safety"] += 1
                continue
            if campaign.frequency_cap and seen.get(campaign.id, 0) >= campaign.frequency_cap:
                excluded["frequency_cap"] += 1
                continue
            spent = spend.get(campaign.id)
            left = campaign.daily_budget_micros - (spent.spent_micros if spent is not None else 0)
            if left < self.reserve:
                excluded["budget"] += 1
                continue
            if not self.pacer.admits(campaign, request.request_id):
                excluded["pacing"] += 1
                continue
            if interests is None:
                interests = self.profiles.interests(request.user_id, now) if self.profiles else []
            options = [
                features(campaign, creative, match, context, interests, request.slot, request.lang, hour)
                for creative in entry.creatives
            ]
            pctrs = self.pctr.predict(options)
            best = int(pctrs.argmax())
            # No campaign bids more than its day has left: it could not pay for the win.
            value = min(value_per_impression(campaign, float(pctrs[best])), float(left))
            if value < self.reserve:
                excluded["reserve"] += 1
                continue
            out.append(
                _Candidate(campaign, entry.creatives[best], match, options[best], float(pctrs[best]), value)
            )
        out.sort(key=lambda c: (-c.value, c.campaign.id))
        return out

    def _fill(
        self, request: AdRequest, ranked: list[_Candidate], count: int, now: int, excluded: Counter[str]
    ) -> list[ServedAd] | None:
        ads: list[ServedAd] = []
        context_post = request.posts[0].id if request.posts else None
        while ranked and len(ads) < count:
            winner = ranked[0]
            runner_up = ranked[1].value if len(ranked) > 1 else 0.0
            price = second_price(winner.value, runner_up, self.reserve)
            result = self.store.charge(
                ImpressionCharge(
                    request_id=request.request_id,
                    position=len(ads),
                    campaign_id=winner.campaign.id,
                    creative_id=winner.creative.id,
                    user_id=request.user_id,
                    slot=request.slot,
                    context_post_id=context_post,
                    at_ms=now,
                    price_micros=price,
                    bid_micros=winner.campaign.bid_micros,
                    pctr=winner.pctr,
                    features=" ".join(winner.features),
                )
            )
            ranked = ranked[1:]
            if result.impression_id is None:
                excluded[f"refused_{result.refused}"] += 1
                continue
            if result.duplicate:
                return None
            before = self._spend.get(winner.campaign.id, DaySpend())
            self._spend = {
                **self._spend,
                winner.campaign.id: DaySpend(
                    before.spent_micros + price, before.impressions + 1, before.clicks
                ),
            }
            ads.append(
                ServedAd(
                    position=len(ads),
                    impression_id=result.impression_id,
                    campaign_id=winner.campaign.id,
                    creative_id=winner.creative.id,
                    text=winner.creative.text,
                    landing_url=winner.campaign.landing_url,
                    handle=winner.campaign.handle,
                    price_micros=price,
                    value_micros=round(winner.value, 3),
                    pctr=round(winner.pctr, 6),
                    match=winner.match.kind,
                )
            )
        return ads


def timed_serve(server: AdServer, request: AdRequest, now_ms: int | None = None) -> tuple[AdResponse, float]:
    """`serve` and how long it took, in milliseconds (benchmarks, reports)."""
    started = time.perf_counter()
    response = server.serve(request, now_ms)
    return response, (time.perf_counter() - started) * 1000
