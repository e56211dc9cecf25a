"""Pacing over a day of traffic: each paced campaign's spend ends within [95%, 100%] of its
daily budget (never above), spread along the day as the traffic is; a campaign spending as soon
as it can is done by morning; frequency caps never give way. A budget its traffic cannot buy is
reported as not deliverable in the morning, and one it can buy never is; a fixed throttle holds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from roost.ads.auction import AdRequest
from roost.ads.config import AdsConfig
from roost.ads.pacing import HOUR_MS, Pacer, TrafficProfile
from roost.ads.store import DaySpend, Store, to_ms
from roost.ads.targeting import ContextPost
from tests.ads.conftest import DAY, ad_server, broad

# Requests by UTC hour: a trough before dawn and an evening peak, as the simulator's rhythm.
HOURLY = np.array([3, 2, 1, 1, 1, 2, 4, 6, 7, 7, 7, 7, 8, 8, 8, 8, 9, 10, 12, 13, 12, 9, 6, 4], float)
REQUESTS = 4000
USERS = 700


def day_of_requests(seed: int = 0) -> list[tuple[int, AdRequest]]:
    rng = np.random.default_rng(seed)
    hours = rng.choice(24, size=REQUESTS, p=HOURLY / HOURLY.sum())
    times = np.sort(to_ms(DAY) + hours * HOUR_MS + rng.integers(0, HOUR_MS, REQUESTS))
    users = rng.integers(0, USERS, REQUESTS)
    return [
        (
            int(t),
            AdRequest(
                request_id=f"r{i}", user_id=f"u{u}", posts=[ContextPost(id=f"p{i}", text="hello there")]
            ),
        )
        for i, (t, u) in enumerate(zip(times, users, strict=True))
    ]


@pytest.mark.slow
def test_a_day_of_pacing(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ads.db'}")
    specs = {
        # value per impression: A $6, B $4 per 1,000; the filler sets a $2 floor price everywhere
        "A": broad(
            name="A", bid_micros=6_000_000, daily_budget_micros=2_500_000, pacing="even", frequency_cap=2
        ),
        "B": broad(
            name="B", bid_micros=4_000_000, daily_budget_micros=2_000_000, pacing="even", frequency_cap=3
        ),
        "early": broad(name="early", bid_micros=5_000_000, daily_budget_micros=400_000, pacing="asap"),
        "filler": broad(name="filler", bid_micros=2_000_000),
    }
    ids = {}
    for name, spec in specs.items():
        campaign = store.add_campaign(store.add_advertiser(name).id, spec)
        store.add_creative(campaign.id, f"{name} https://shoes.example/spring")
        ids[name] = campaign.id
    server = ad_server(store, pacing_interval_s=300.0, refresh_s=3600.0)  # one server: reload hourly
    server.pacer.profile = TrafficProfile(HOURLY)  # what yesterday's traffic taught it
    excluded: Counter[str] = Counter()
    for at, request in day_of_requests():
        excluded.update(server.serve(request, at).excluded)

    spent = store.ledger_totals()
    for name in ("A", "B", "early"):
        share = spent[ids[name]].spent_micros / specs[name].daily_budget_micros
        print(f"{name}: {share:.2%} of its budget, {spent[ids[name]].impressions} impressions")
        assert 0.95 <= share <= 1.0, f"{name} spent {share:.2%} of its daily budget"
    assert excluded["pacing"] > 0 and excluded["frequency_cap"] > 0  # both were at work

    entries = store.ledger(kind="impression")
    hours = np.array([(e.at_ms - to_ms(DAY)) // HOUR_MS for e in entries])
    by = {name: np.array([e.campaign_id == cid for e in entries]) for name, cid in ids.items()}
    traffic = np.cumsum(HOURLY) / HOURLY.sum()
    for name in ("A", "B"):
        amounts = np.array([e.amount_micros for e in entries])[by[name]]
        cumulative = np.cumsum(np.bincount(hours[by[name]], weights=amounts, minlength=24)) / amounts.sum()
        worst = np.abs(cumulative - traffic).max()
        print(f"{name}: spend follows traffic within {worst:.1%} of the budget at every hour")
        assert worst < 0.08
    early_done = hours[by["early"]].max()
    assert early_done <= 6, f"an asap campaign should be spent by morning, not hour {early_done}"

    per_user = Counter((e.campaign_id, e.user_id) for e in entries)
    for name in ("A", "B"):
        assert max(n for (c, _), n in per_user.items() if c == ids[name]) <= specs[name].frequency_cap
    assert store.audit() == []
    store.close()


def test_a_budget_its_traffic_cannot_buy_is_reported_early(local_store: Store) -> None:
    """The controller alone, over a day of 5-minute steps: at throttle p a campaign buys
    Poisson(p × its reach in the interval) impressions at $2.50 CPM. "short" can reach a tenth of
    its budget, "ample" three times its budget."""
    adv = local_store.add_advertiser("pacing").id
    price, budget = 2_500, 2_500_000  # a budget of 1,000 impressions
    reach = {"short": 100, "ample": 3_000}  # impressions a day at full throttle
    campaigns = {
        name: local_store.add_campaign(adv, broad(name=name, daily_budget_micros=budget, pacing="even"))
        for name in reach
    }
    pacer = Pacer(AdsConfig(), TrafficProfile(HOURLY))
    rng = np.random.default_rng(3)
    spend = {c.id: DaySpend() for c in campaigns.values()}
    step_ms = 300_000
    for now in range(to_ms(DAY), to_ms(DAY) + 86_400_000, step_ms):
        pacer.step(now, list(campaigns.values()), spend)
        share = pacer.profile.share_by(now + step_ms - 1) - pacer.profile.share_by(now)
        for name, c in campaigns.items():
            left = (budget - spend[c.id].spent_micros) // price
            bought = min(int(rng.poisson(pacer.throttle(c) * reach[name] * share)), left)
            spend[c.id] = DaySpend(
                spend[c.id].spent_micros + bought * price, spend[c.id].impressions + bought
            )
    short, ample = (pacer.undeliverable(campaigns[n].id) for n in ("short", "ample"))
    print(f"short: flagged {short}; ample: {spend[campaigns['ample'].id].spent_micros / budget:.1%} spent")
    assert ample is None and spend[campaigns["ample"].id].spent_micros >= 0.95 * budget
    assert short is not None and short.at_ms < to_ms(DAY) + 12 * HOUR_MS  # by noon
    assert 0.05 < short.forecast_share < 0.2  # it could buy a tenth of its budget


def test_a_fixed_throttle_holds_whatever_the_spend(local_store: Store) -> None:
    adv = local_store.add_advertiser("fixed").id
    campaign = local_store.add_campaign(adv, broad(name="fixed", daily_budget_micros=10**9, pacing="even"))
    pacer = Pacer(AdsConfig())
    pacer.fix(campaign.id, 0.25)
    for k in range(12):  # far behind its plan all along: an even campaign's throttle would rise
        pacer.step(to_ms(DAY) + k * 300_000, [campaign], {})
    assert pacer.throttle(campaign) == 0.25
    admitted = np.mean([pacer.admits(campaign, f"r{i}") for i in range(4000)])
    assert 0.22 < admitted < 0.28
    with pytest.raises(ValueError):
        pacer.fix(campaign.id, 0.0)
