"""Many ad servers charging one campaign at once, as threads and as processes, on SQLite and
PostgreSQL: the budget is never exceeded by a micro, no charge is lost, and the ledger and the
counters agree."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from multiprocessing.pool import Pool

import pytest

from roost.ads.store import ImpressionCharge, Store, to_ms
from tests.ads.conftest import DAY, spec

AT = to_ms(DAY) + 60_000
PRICE = 700_000  # 10.00 / 0.70: 14 fit in the day's budget, with 0.20 left over


def _charges(url: str, worker: int, attempts: int, user: str | None) -> list[str | None]:
    store = Store(url)
    try:
        return [
            store.charge(
                ImpressionCharge(
                    request_id=f"w{worker}-{i}",
                    campaign_id=1,
                    creative_id=1,
                    user_id=user or f"u{worker}-{i}",
                    slot="timeline",
                    at_ms=AT + i,
                    price_micros=PRICE,
                    bid_micros=1_000_000,
                    pctr=0.02,
                )
            ).refused
            for i in range(attempts)
        ]
    finally:
        store.close()


def _setup(url: str, **overrides: object) -> Store:
    store = Store(url)
    advertiser = store.add_advertiser("acme")
    campaign = store.add_campaign(advertiser.id, spec(**overrides))
    store.add_creative(campaign.id, "Run https://shoes.example/spring")
    return store


def _check(store: Store, outcomes: list[str | None], *, expected: int) -> None:
    charged = sum(r is None for r in outcomes)
    assert charged == expected, f"{charged} impressions charged, {expected} fit"
    day = store.day_spend("2024-03-01")[1]
    assert day.spent_micros == expected * PRICE <= 10_000_000
    assert day.impressions == expected == len(store.ledger())
    assert store.campaign(1).spent_micros == expected * PRICE
    assert store.audit() == []


def test_threads_never_overspend(database_url: str) -> None:
    store = _setup(database_url)
    outcomes: list[str | None] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        found = _charges(database_url, worker, 6, None)
        with lock:
            outcomes.extend(found)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check(store, outcomes, expected=14)
    assert set(outcomes) == {None, "daily_budget"}
    store.close()


@pytest.fixture(scope="module")
def processes() -> Iterator[Pool]:
    """Four worker processes (spawned: nothing inherited), shared by both databases' runs: each
    worker opens its own Store for every task, so they share no connection, only start-up time."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        yield pool


def test_processes_never_overspend(database_url: str, processes: Pool) -> None:
    store = _setup(database_url)
    parts = processes.starmap(_charges, [(database_url, w, 8, None) for w in range(4)])
    _check(store, [r for part in parts for r in part], expected=14)
    store.close()


def test_a_frequency_cap_holds_under_concurrency(database_url: str) -> None:
    store = _setup(database_url, frequency_cap=3)
    outcomes: list[str | None] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        found = _charges(database_url, worker, 4, "the-same-user")
        with lock:
            outcomes.extend(found)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check(store, outcomes, expected=3)
    assert outcomes.count("frequency_cap") == 21
    store.close()


def test_the_total_budget_holds_under_concurrency(database_url: str) -> None:
    store = _setup(database_url)
    store.update_campaign(1, {"daily_budget_micros": 2_000_000, "total_budget_micros": 2_000_000})
    outcomes: list[str | None] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        found = _charges(database_url, worker, 4, None)
        with lock:
            outcomes.extend(found)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is None for r in outcomes) == 2  # 2.00 holds two charges of 0.70, not three
    assert set(outcomes) == {None, "total_budget"}
    assert store.campaign(1).spent_micros == 2 * PRICE
    assert store.audit() == []
    store.close()
