"""Budget pacing: spreading each campaign's daily budget over the day instead of spending it on the
morning's first requests.

Pacing by throttling (Agarwal et al. 2014, "Budget pacing for targeted online advertisements at
LinkedIn"): a campaign with `pacing = "even"` enters each auction it is eligible for with
probability p, its throttle. Every `[ads] pacing_interval_s` a controller compares what the
campaign spent in the last interval with what its plan wanted there, and moves log p by the log of
that ratio (times `pacing_gain`, at most a factor `pacing_max_step` per step):

    wanted = budget left at the interval's start × traffic share of the interval
                                                   / traffic share left until the plan's end
    log p += gain · clip(log((wanted + ε) / (spent + ε)))      clamped to [log min_throttle, 0]

The plan is recomputed from the budget still left at every step, so whatever was over- or
under-spent earlier is spread over the rest of the day: that is the controller's integral action,
and it cannot wind up (nothing accumulates while p sits at 1 or at the floor). A campaign starts
its first day at `pacing_initial_throttle`, from which a few steps reach any level (a high start
would spend the morning's budget before the first step); later days start where the last ended.

The traffic share comes from 24 hourly weights learned from the requests of a previous day
(`TrafficProfile`; flat when there are none), and the plan ends `pacing_lead` of the day's traffic
early, so a campaign behind late in the day still has requests to catch up on. Whether a request
is admitted is a hash of (request, campaign), not a random draw: every ad server holding the same
throttle admits the same requests, and a run can be replayed exactly. The budget itself is never
enforced here: `Store.charge` refuses anything beyond it, so pacing decides how evenly the budget
is spent, never whether it is exceeded.

A budget its traffic cannot buy is reported, not silently missed: while a campaign runs at full
throttle, the pacer measures what it spends per share of the day's traffic and forecasts the day
from it (spent so far + that rate × the traffic left). Once it has watched `FORECAST_MIN_SHARE` of
the day's traffic at full throttle and even an optimistic forecast falls short of `DELIVERED` of
the budget, while `FORECAST_UNTIL` of the day's traffic is still to come, the budget is flagged
not deliverable (`undeliverable`), with the time and the forecast: the advertiser's cue to widen
its targeting or lower its budget, as an ad server's delivery estimate is.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import msgspec
import numpy as np

from roost.ads.config import AdsConfig
from roost.ads.store import Campaign, DaySpend, budget_day

PROFILE_NAME = "traffic_profile"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
DELIVERED = 0.95  # a day's budget counts as delivered at this share of it
FORECAST_MIN_SHARE = 0.05  # of the day's traffic watched at full throttle before forecasting from it
# Forecasts are for acting on while the day lasts: none once less than this share of its traffic is
# left (a late flag is mostly noise over a few impressions; the day's spend then speaks for itself).
FORECAST_UNTIL = 0.2


class TrafficProfile:
    """Expected share of a day's ad requests in each UTC hour."""

    def __init__(self, hourly: Sequence[float] | None = None) -> None:
        weights = np.ones(24) if hourly is None else np.asarray(hourly, np.float64)
        if weights.shape != (24,) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("a traffic profile is 24 non-negative hourly weights, not all zero")
        self.hourly = weights / weights.sum()
        self._cumulative = np.concatenate([[0.0], np.cumsum(self.hourly)])

    @classmethod
    def from_requests(cls, times_ms: Sequence[int]) -> TrafficProfile:
        hours = (np.asarray(times_ms, np.int64) % DAY_MS) // HOUR_MS
        return cls(np.bincount(hours, minlength=24) + 1.0)  # +1: no hour is ever assumed empty

    def share_by(self, ms: int) -> float:
        """Expected share of the day's requests that arrive before `ms` (within its UTC day)."""
        into = (ms % DAY_MS) / HOUR_MS
        hour = int(into)
        return float(self._cumulative[hour] + self.hourly[hour] * (into - hour))

    def save(self, store) -> int:  # store: roost.ads.store.Store
        data = msgspec.json.encode(self.hourly.tolist())
        return store.save_model(PROFILE_NAME, data, {"hours": 24})

    @classmethod
    def load(cls, store) -> TrafficProfile:
        saved = store.load_model(PROFILE_NAME)
        return cls(msgspec.json.decode(saved[1])) if saved else cls()


class Undeliverable(msgspec.Struct, frozen=True):
    """A budget that pacing found out of its traffic's reach."""

    at_ms: int  # when it was first found
    forecast_share: float  # of the budget the day was then forecast to spend


class Pacer:
    """Each campaign's throttle, stepped by `step` at most every `pacing_interval_s`."""

    def __init__(self, config: AdsConfig, profile: TrafficProfile | None = None) -> None:
        self.config = config
        self.profile = profile or TrafficProfile()
        self.interval_ms = int(config.pacing_interval_s * 1000)
        self._log_p: dict[int, float] = {}
        # campaign -> (time, spent today, impressions today) at its last step
        self._last: dict[int, tuple[int, int, int]] = {}
        self._held: dict[int, list[int]] = {}  # campaign -> [steps today, steps with throttle < 1]
        self._full: dict[int, list] = {}  # campaign -> [spent, impressions, traffic share] at full throttle
        self._undeliverable: dict[int, Undeliverable] = {}
        self._fixed: dict[int, float] = {}
        self._day: str | None = None
        self.last_step_ms: int | None = None

    def due(self, now_ms: int) -> bool:
        return self.last_step_ms is None or now_ms - self.last_step_ms >= self.interval_ms

    def planned_share(self, ms: int) -> float:
        """Share of the daily budget the plan has spent by `ms` (the traffic's share, reached early)."""
        return min(1.0, self.profile.share_by(ms) / (1.0 - self.config.pacing_lead))

    def step(self, now_ms: int, campaigns: Sequence[Campaign], spend: dict[int, DaySpend]) -> None:
        """One controller step for every paced campaign, from today's spend so far."""
        c = self.config
        day = budget_day(now_ms)
        if day != self._day:  # a new budget day: throttles carry over, intervals start afresh
            self._last.clear()
            self._held.clear()
            self._full.clear()
            self._undeliverable.clear()
            self._day = day
        floor, bound = math.log(c.pacing_min_throttle), math.log(c.pacing_max_step)
        for campaign in campaigns:
            if campaign.pacing != "even" or campaign.id in self._fixed:
                continue
            today = spend.get(campaign.id, DaySpend())
            spent = today.spent_micros
            last = self._last.get(campaign.id)
            log_p = self._log_p.get(campaign.id, math.log(c.pacing_initial_throttle))
            if last is not None:
                then, spent_then, bought_then = last
                budget = campaign.daily_budget_micros
                behind = budget * self.planned_share(then) - spent_then  # the plan's own pace, off by this
                planned = budget * (self.planned_share(now_ms) - self.planned_share(then))
                wanted = min(max(planned + c.pacing_catch_up * behind, 0.0), budget - spent_then)
                eps = (
                    0.002 * budget
                )  # a few impressions' worth: no impression in a quiet interval is no signal
                error = math.log((wanted + eps) / (spent - spent_then + eps))
                log_p += c.pacing_gain * min(bound, max(-bound, error))
                if self._log_p.get(campaign.id, -1.0) >= 0.0:  # the interval ran at full throttle
                    self._forecast(campaign, (then, spent_then, bought_then), now_ms, today)
            self._log_p[campaign.id] = min(0.0, max(floor, log_p))
            self._last[campaign.id] = (now_ms, spent, today.impressions)
            held = self._held.setdefault(campaign.id, [0, 0])
            held[0] += 1
            held[1] += self._log_p[campaign.id] < 0.0
        self.last_step_ms = now_ms

    def _forecast(self, campaign: Campaign, last: tuple[int, int, int], now_ms: int, today: DaySpend) -> None:
        """Add an interval at full throttle to the campaign's rate, and flag its budget the first
        time even an optimistic forecast at that rate falls short of it, while there is day left to
        act on: the impressions bought at full throttle are few, so the rate is taken at a
        one-sided ~99.5% Poisson upper bound on their count (n + 3·sqrt(n + 1) + 2), and a budget
        of a few impressions is not flagged for missing by less than one of them."""
        then, spent_then, bought_then = last
        full = self._full.setdefault(campaign.id, [0, 0, 0.0])  # spent, impressions, traffic share
        full[0] += today.spent_micros - spent_then
        full[1] += today.impressions - bought_then
        full[2] += self.profile.share_by(now_ms) - self.profile.share_by(then)
        left = 1.0 - self.profile.share_by(now_ms)
        if full[2] < FORECAST_MIN_SHARE or left < FORECAST_UNTIL or campaign.id in self._undeliverable:
            return
        spent, bought, watched = full
        if bought:
            price = spent / bought
        elif today.impressions:
            price = today.spent_micros / today.impressions
        else:  # nothing bought yet: at most what it bids before a click model knows better
            price = campaign.bid_micros * (self.config.prior_ctr if campaign.bid_per_click else 0.001)
        optimistic = today.spent_micros + price * (bought + 3 * math.sqrt(bought + 1) + 2) / watched * left
        budget = campaign.daily_budget_micros
        if optimistic < DELIVERED * budget and budget - optimistic > price:
            forecast = today.spent_micros + spent / watched * left
            self._undeliverable[campaign.id] = Undeliverable(now_ms, round(forecast / budget, 4))

    def undeliverable(self, campaign_id: int) -> Undeliverable | None:
        """Whether (and since when) today's budget was found beyond what the campaign's traffic buys."""
        return self._undeliverable.get(campaign_id)

    def fix(self, campaign_id: int, throttle: float) -> None:
        """Run a campaign at a fixed throttle whatever it spends, as a delivery-rate cap or a sampled
        market (the simulation's history day: every campaign in the same share of its auctions)."""
        if not 0.0 < throttle <= 1.0:
            raise ValueError("a fixed throttle is in (0, 1]")
        self._fixed[campaign_id] = throttle

    def held_back(self, campaign_id: int) -> float:
        """Share of today's steps at which pacing held the campaign back (throttle below 1). Near
        0, the campaign had no more traffic than its budget could buy: no pacing can spend it all."""
        steps, held = self._held.get(campaign_id, (0, 0))
        return held / steps if steps else 0.0

    def throttle(self, campaign: Campaign) -> float:
        if campaign.id in self._fixed:
            return self._fixed[campaign.id]
        if campaign.pacing == "asap":
            return 1.0
        return math.exp(self._log_p.get(campaign.id, math.log(self.config.pacing_initial_throttle)))

    def admits(self, campaign: Campaign, request_id: str) -> bool:
        p = self.throttle(campaign)
        return p >= 1.0 or zlib.crc32(f"{request_id}/{campaign.id}".encode()) < p * 2**32
