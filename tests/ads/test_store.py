"""The store on SQLite and (with ROOST_TEST_POSTGRES_URL) PostgreSQL: schema versions, records,
and the one transaction that charges an impression, refusing whatever does not fit."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from roost.ads.schema import SCHEMA_VERSION, SchemaError, schema_version
from roost.ads.store import ImpressionCharge, NotFound, Store, StoreError, to_ms
from tests.ads.conftest import DAY, spec

AT = to_ms(DAY) + 3_600_000  # 01:00 on the campaign's first day


def charge(
    store: Store,
    campaign_id: int,
    creative_id: int,
    request: str,
    price: int,
    *,
    user: str = "u1",
    at: int = AT,
) -> object:
    return store.charge(
        ImpressionCharge(
            request_id=request,
            campaign_id=campaign_id,
            creative_id=creative_id,
            user_id=user,
            slot="timeline",
            at_ms=at,
            price_micros=price,
            bid_micros=1_000_000,
            pctr=0.02,
            features="c:1 slot:timeline",
        )
    )


def campaign_with_creative(store: Store, **overrides: object) -> tuple[int, int]:
    advertiser = store.add_advertiser(f"acme {len(store.advertisers())}")
    campaign = store.add_campaign(advertiser.id, spec(**overrides))
    creative = store.add_creative(campaign.id, "Spring shoes for running https://shoes.example/spring")
    return campaign.id, creative.id


def test_a_new_database_gets_the_current_schema_once(database_url: str) -> None:
    first = Store(database_url)
    assert first.schema_version == SCHEMA_VERSION
    first.add_advertiser("kept")
    first.close()
    again = Store(database_url)  # opening again migrates nothing and loses nothing
    assert [a.name for a in again.advertisers()] == ["kept"]
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema_version)).scalar_one() == 1
    again.close()


def test_a_database_from_a_newer_roost_is_refused(database_url: str) -> None:
    store = Store(database_url)
    with store._write() as conn:
        conn.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION + 1, applied_ms=0))
    store.close()
    with pytest.raises(SchemaError, match="newer"):
        Store(database_url)


def test_records_round_trip(store: Store) -> None:
    advertiser = store.add_advertiser("Acme")
    made = store.add_campaign(advertiser.id, spec(blocked_categories=["violence", "adult"], frequency_cap=3))
    assert store.campaign(made.id) == made
    assert made.start == DAY and made.spent_micros == 0 and made.status == "active"
    assert made.targeting.keywords == ["running"]
    creative = store.add_creative(
        made.id, "Run far https://shoes.example/spring", score=-1.5, details={"seed": 3}
    )
    assert store.creatives(made.id) == [creative]
    assert store.set_creative_status(creative.id, "paused").status == "paused"
    assert store.creatives(made.id, status="active") == []
    with pytest.raises(StoreError, match="already an advertiser"):
        store.add_advertiser("Acme")
    with pytest.raises(NotFound):
        store.campaign(999)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bid_micros": 0}, "positive"),
        ({"total_budget_micros": 1}, "at least daily"),
        ({"end": DAY - dt.timedelta(days=1)}, "after start"),
        ({"blocked_categories": ["gossip"]}, "unknown brand-safety category"),
        ({"landing_url": "ftp://x", "handle": ""}, "http"),
        ({"landing_url": "", "handle": ""}, "where it leads"),
        ({"frequency_cap": -1}, "frequency_cap"),
        ({"bid_micros": 2**63}, "at most"),
    ],
)
def test_campaigns_that_make_no_sense_are_refused(store: Store, overrides: dict, message: str) -> None:
    advertiser = store.add_advertiser("Acme")
    with pytest.raises(ValueError, match=message):
        store.add_campaign(advertiser.id, spec(**overrides))


def test_update_keeps_the_campaign_valid(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(store)
    assert charge(store, campaign_id, creative_id, "r1", 5_000_000).impression_id
    changed = store.update_campaign(campaign_id, {"daily_budget_micros": 20_000_000, "status": "paused"})
    assert changed.daily_budget_micros == 20_000_000 and changed.status == "paused"
    with pytest.raises(StoreError, match="already spent"):
        store.update_campaign(
            campaign_id, {"total_budget_micros": 4_000_000, "daily_budget_micros": 1_000_000}
        )
    with pytest.raises(StoreError, match="cannot change"):
        store.update_campaign(campaign_id, {"spent_micros": 0})
    with pytest.raises(StoreError):
        store.update_campaign(campaign_id, {"bid_micros": "a lot"})


def test_charges_stop_at_the_daily_budget_to_the_micro(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(store)  # $10 a day
    results = [charge(store, campaign_id, creative_id, f"r{i}", 3_000_000, user=f"u{i}") for i in range(5)]
    assert [r.refused for r in results] == [None, None, None, "daily_budget", "daily_budget"]
    assert charge(store, campaign_id, creative_id, "fits", 1_000_000).impression_id  # exactly 10.00 now
    assert store.day_spend("2024-03-01")[campaign_id].spent_micros == 10_000_000
    next_day = charge(store, campaign_id, creative_id, "tomorrow", 3_000_000, at=AT + 86_400_000)
    assert next_day.impression_id is not None  # a new budget day
    assert store.campaign(campaign_id).spent_micros == 13_000_000
    assert store.audit() == []


def test_charges_stop_at_the_total_budget(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(
        store, daily_budget_micros=4_000_000, total_budget_micros=6_000_000
    )
    assert charge(store, campaign_id, creative_id, "a", 4_000_000).impression_id
    assert (
        charge(store, campaign_id, creative_id, "b", 3_000_000, at=AT + 86_400_000).refused == "total_budget"
    )
    assert store.campaign(campaign_id).spent_micros == 4_000_000  # the refused charge left no trace
    assert store.day_spend("2024-03-02") == {}


def test_paused_or_out_of_schedule_campaigns_are_not_charged(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(store, end=DAY + dt.timedelta(days=2))
    assert charge(store, campaign_id, creative_id, "early", 1, at=to_ms(DAY) - 1).refused == "inactive"
    assert (
        charge(store, campaign_id, creative_id, "late", 1, at=to_ms(DAY) + 2 * 86_400_000).refused
        == "inactive"
    )
    store.update_campaign(campaign_id, {"status": "paused"})
    assert charge(store, campaign_id, creative_id, "paused", 1).refused == "inactive"
    assert store.ledger() == []


def test_frequency_cap_counts_per_user_and_day(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(store, frequency_cap=2)
    outcomes = [charge(store, campaign_id, creative_id, f"a{i}", 1000, user="ann").refused for i in range(3)]
    assert outcomes == [None, None, "frequency_cap"]
    assert charge(store, campaign_id, creative_id, "b0", 1000, user="bob").refused is None
    assert (
        charge(store, campaign_id, creative_id, "a-next", 1000, user="ann", at=AT + 86_400_000).refused
        is None
    )
    assert store.user_frequency("ann", "2024-03-01") == {campaign_id: 2}
    assert store.day_spend("2024-03-01")[campaign_id].spent_micros == 3000  # the capped one was not charged


def test_a_retried_request_is_charged_once(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(store, frequency_cap=1)
    first = charge(store, campaign_id, creative_id, "same", 2_000_000)
    again = charge(store, campaign_id, creative_id, "same", 2_000_000)
    assert again.duplicate and again.impression_id == first.impression_id  # not refused by the cap either
    assert store.campaign(campaign_id).spent_micros == 2_000_000
    assert [e.id for e in store.impressions_for("same", 2)] == [first.impression_id]


def test_clicks_count_once_and_are_never_charged(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(store)
    impression = charge(store, campaign_id, creative_id, "r", 1_500_000).impression_id
    assert store.record_click(impression, AT + 5_000) is not None
    assert store.record_click(impression, AT + 9_000) is None  # the same click again
    with pytest.raises(StoreError, match="before its impression"):
        store.record_click(impression, AT - 1)
    with pytest.raises(NotFound):
        store.record_click(impression + 100)
    assert store.day_spend("2024-03-01")[campaign_id].clicks == 1
    served = store.served()
    assert [(s.impression_id, s.clicked) for s in served] == [(impression, True)]
    assert store.ledger_totals()[campaign_id].spent_micros == 1_500_000
    assert store.audit() == []


def test_the_ledger_is_append_only(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(store)
    charge(store, campaign_id, creative_id, "r", 1_000)
    for statement in ("UPDATE ledger SET amount_micros = 0", "DELETE FROM ledger"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store._write() as conn:
            conn.exec_driver_sql(statement)
    assert store.ledger()[0].amount_micros == 1_000


def test_audit_finds_counters_that_disagree_with_the_ledger(store: Store) -> None:
    campaign_id, creative_id = campaign_with_creative(store)
    charge(store, campaign_id, creative_id, "r", 1_000)
    with store._write() as conn:  # a counter changed behind the ledger's back
        conn.exec_driver_sql("UPDATE campaign_days SET spent_micros = spent_micros + 1")
    problems = store.audit()
    assert len(problems) == 1 and "ledger (spent, impressions, clicks) (1000, 1, 0)" in problems[0]


def test_models_are_versioned(store: Store) -> None:
    assert store.load_model("pctr") is None and store.model_version("pctr") == 0
    assert store.save_model("pctr", b"one", {"n": 1}) == 1
    assert store.save_model("pctr", b"two", {"n": 2}) == 2
    assert store.load_model("pctr") == (2, b"two", {"n": 2})
