"""A simulated day through the real auction, store and pacing: nothing next to a blocked
category, no frequency cap exceeded, no budget exceeded and every paced one spent, the ledger
agreeing with the counters, and a click model that learned from the ledger."""

from __future__ import annotations

import pytest

from roost.ads.config import AdsConfig
from roost.ads.simulate import DayConfig, DaySimulation
from roost.ads.store import Store
from roost.ads.topics import MODEL_NAME as TOPICS


@pytest.mark.slow
def test_a_simulated_day(local_store: Store, topic_model, tmp_path) -> None:
    local_store.save_model(TOPICS, topic_model.classifier.to_bytes(), topic_model.classifier.meta)
    # A small day (the test's time budget) with each post seen next to 3 ad slots, and budgets of
    # 0.4 (not 0.15) of what each campaign's traffic could buy: so that the topical campaigns'
    # budgets still buy tens of impressions, enough to pace.
    day = DayConfig(seed=11, posts=1200, users=2000, retrain_hours=3.0, requests_per_post=3, budget_fill=0.4)
    # Campaigns' conversations searched hourly rather than every 15 minutes: the same matches, a
    # quarter of the searches (the test's time budget).
    config = AdsConfig(targeting_refresh_s=3600.0)
    report = DaySimulation(local_store, day, config, workdir=tmp_path).run()
    print(
        f"{report.requests} requests, {report.impressions} impressions, {report.clicks} clicks, "
        f"{report.took_s} s"
    )
    print(f"pCTR {report.clicks_metrics}")
    print(f"excluded {report.excluded}; incidents shown next to {report.incident_impressions} times")
    for c in report.campaigns:
        print(
            f"  {c.name}: {c.pacing} spent {c.spent_share:.1%} of {c.daily_budget_micros}, "
            f"held back {c.held_back:.0%} of the day, not deliverable from {c.undeliverable_at}, "
            f"{c.impressions} imps, frequency {c.max_user_frequency}/{c.frequency_cap}"
        )
    assert report.requests > 1000 and report.impressions > 300 and report.clicks > 20

    assert report.blocked_impressions == 0 and report.blocked_incident_impressions == 0
    assert report.excluded["brand_safety"] > 20  # brand safety had work to do
    assert report.context_categories.get("disasters", 0) > 0

    paced = 0
    for c in report.campaigns:
        assert c.spent_micros <= c.daily_budget_micros
        if c.frequency_cap:
            assert c.max_user_frequency <= c.frequency_cap
        if c.pacing != "even":
            continue
        paced += 1
        # Every paced campaign spends [95%, 100%] of its budget. The one allowance is granularity:
        # a budget that buys fewer than 20 impressions may end short by less than one impression
        # at its own average price (the last micros cannot outbid the house ads' floor).
        short = c.daily_budget_micros - c.spent_micros
        assert short <= 0.05 * c.daily_budget_micros or short * 1000 < c.cpm_micros, (
            f"{c.name} spent {c.spent_share:.1%} of its budget ({c.impressions} impressions)"
        )
    assert paced == 9
    assert report.excluded["pacing"] > 0 and report.excluded["frequency_cap"] > 0
    assert report.audit == []

    metrics = report.clicks_metrics
    assert report.pctr_versions >= 6
    assert metrics.auc > 0.7 and metrics.normalized_entropy < 0.95 and 0.7 < metrics.calibration < 1.4
