"""The auction: generalized second price with a reserve, eligibility (targeting, brand safety,
languages, caps), and that a retried request is served and charged once."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from roost.ads.auction import AdRequest, second_price
from roost.ads.store import Store, Targeting, to_ms
from roost.ads.targeting import ContextPost
from tests.ads.conftest import DAY, ad_server, broad

NOW = to_ms(DAY) + 12 * 3_600_000
RESERVE = 500  # micros per impression: [ads] reserve_cpm_micros = 500,000


def market(store: Store, *specs) -> list[int]:
    ids = []
    for i, campaign_spec in enumerate(specs):
        advertiser = store.add_advertiser(f"advertiser {i}")
        campaign = store.add_campaign(advertiser.id, campaign_spec)
        store.add_creative(campaign.id, f"Ad number {i} https://shoes.example/spring")
        ids.append(campaign.id)
    return ids


def request(rid: str, text: str = "a quiet afternoon with my dog", **fields) -> AdRequest:
    return AdRequest(
        request_id=rid,
        user_id=fields.pop("user", "u1"),
        posts=[ContextPost(id=f"p-{rid}", text=text)],
        **fields,
    )


def cpm(dollars: float) -> int:
    return int(dollars * 1_000_000)


def test_the_winner_pays_the_runner_up_value(store: Store) -> None:
    a, _b = market(store, broad(name="A", bid_micros=cpm(6)), broad(name="B", bid_micros=cpm(4)))
    response = ad_server(store).serve(request("r1"), NOW)
    [ad] = response.ads
    assert ad.campaign_id == a
    assert ad.price_micros == 4000  # B's value: $4 per 1,000 impressions
    assert ad.value_micros == 6000
    assert store.ledger()[0].amount_micros == 4000


def test_a_lone_bidder_pays_the_reserve_and_one_below_it_never_wins(store: Store) -> None:
    market(store, broad(name="A", bid_micros=cpm(3)), broad(name="cheap", bid_micros=cpm(0.4)))
    response = ad_server(store).serve(request("r1"), NOW)
    assert [ad.price_micros for ad in response.ads] == [RESERVE]
    assert response.excluded == {"reserve": 1}


def test_positions_are_filled_by_value_each_paying_the_next(store: Store) -> None:
    market(
        store,
        broad(name="A", bid_micros=cpm(9)),
        broad(name="B", bid_micros=cpm(5)),
        broad(name="C", bid_micros=cpm(2)),
    )
    ads = ad_server(store).serve(request("r1", count=3), NOW).ads
    assert [(ad.value_micros, ad.price_micros) for ad in ads] == [(9000, 5000), (5000, 2000), (2000, RESERVE)]
    assert all(RESERVE <= ad.price_micros <= ad.value_micros for ad in ads)


def test_per_click_bids_are_ranked_by_expected_value(store: Store) -> None:
    # $0.30 per click at the prior 2% click rate is worth $6 per 1,000 impressions: more than $5 CPM
    clicks, _views = market(
        store,
        broad(name="clicks", objective="traffic", bid_micros=300_000),
        broad(name="views", bid_micros=cpm(5)),
    )
    [ad] = ad_server(store, prior_ctr=0.02).serve(request("r1"), NOW).ads
    assert ad.campaign_id == clicks and ad.value_micros == 6000 and ad.price_micros == 5000


@given(
    value=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    runner_up=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    reserve=st.integers(min_value=0, max_value=10_000),
)
def test_second_price_lies_between_the_reserve_and_the_winners_value(
    value: float, runner_up: float, reserve: int
) -> None:
    if value < reserve or runner_up > value:
        return  # not a winner: the auction never prices it
    price = second_price(value, runner_up, reserve)
    assert reserve <= price <= value
    assert price >= runner_up or price == int(value)  # at least the runner-up, unless that is within a micro


@settings(max_examples=15, deadline=None)
@given(
    true_cpm=st.integers(min_value=1, max_value=20),
    others=st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=3),
)
def test_bidding_the_true_value_is_optimal_in_a_single_slot(true_cpm: int, others: list[int]) -> None:
    """For a bidder worth `true_cpm` per 1,000 impressions, no other bid earns more than the truth:
    utility = value - price when it wins, 0 when it loses, through the real auction and store."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'ads.db'}")
        me, *_ = market(
            store,
            broad(name="me", bid_micros=cpm(true_cpm)),
            *(broad(name=f"o{i}", bid_micros=cpm(o)) for i, o in enumerate(others)),
        )
        server = ad_server(store)
        utility = {}
        for bid in sorted({1, 2, true_cpm - 1, true_cpm, true_cpm + 1, 25, 40} - {0}):
            store.update_campaign(me, {"bid_micros": cpm(bid)})
            server.refresh(NOW)
            ads = server.serve(request(f"bid{bid}"), NOW).ads
            won = [ad for ad in ads if ad.campaign_id == me]
            utility[bid] = true_cpm * 1000 - won[0].price_micros if won else 0
        store.close()
    assert utility[true_cpm] >= max(utility.values()), utility
    assert utility[true_cpm] >= 0  # bidding the truth never loses money


def test_brand_safety_keeps_campaigns_away_from_what_they_block(store: Store) -> None:
    careful, bold = market(
        store,
        broad(name="careful", bid_micros=cpm(9), blocked_categories=["violence"]),
        broad(name="bold", bid_micros=cpm(2)),
    )
    server = ad_server(store)
    unsafe = server.serve(request("r1", text="Two fans killed in the violence after the derby"), NOW)
    assert [ad.campaign_id for ad in unsafe.ads] == [bold]
    assert unsafe.excluded == {"brand_safety": 1} and unsafe.context_categories == ["violence"]
    safe = server.serve(request("r2"), NOW)
    assert [ad.campaign_id for ad in safe.ads] == [careful]
    floor = server.serve(request("r3", text="new porn site just dropped"), NOW)  # the platform floor: adult
    assert floor.ads == [] and floor.excluded == {"brand_safety_floor": 2}


def test_targeting_languages_and_caps_decide_eligibility(store: Store) -> None:
    runners, spanish, capped = market(
        store,
        broad(name="runners", bid_micros=cpm(9), targeting=Targeting(keywords=["marathon", "#running"])),
        broad(name="spanish", bid_micros=cpm(8), targeting=Targeting(languages=["es"])),
        broad(name="capped", bid_micros=cpm(3), frequency_cap=1),
    )
    server = ad_server(store)
    hit = server.serve(request("r1", text="Training for my first Marathons this spring", lang="en"), NOW)
    assert [ad.campaign_id for ad in hit.ads] == [runners] and hit.ads[0].match == "keyword"
    tag = server.serve(request("r2", text="out at dawn again #Running", lang="en"), NOW)
    assert [ad.campaign_id for ad in tag.ads] == [runners]
    miss = server.serve(request("r3", text="a quiet afternoon", lang="es", user="u2"), NOW)
    assert [ad.campaign_id for ad in miss.ads] == [spanish]
    assert miss.excluded == {"targeting": 1}
    first = server.serve(request("r4", lang="en", user="u3"), NOW)
    again = server.serve(request("r5", lang="en", user="u3"), NOW)
    assert [ad.campaign_id for ad in first.ads] == [capped] and again.ads == []
    assert again.excluded["frequency_cap"] == 1


def test_a_retried_request_gets_the_same_ads_and_is_charged_once(store: Store) -> None:
    market(store, broad(name="A", bid_micros=cpm(6)), broad(name="B", bid_micros=cpm(4)))
    server = ad_server(store)
    first = server.serve(request("same", count=2), NOW)
    again = server.serve(request("same", count=2), NOW)
    assert [(a.impression_id, a.price_micros) for a in again.ads] == [
        (a.impression_id, a.price_micros) for a in first.ads
    ]
    assert len(store.ledger()) == 2 and store.audit() == []
