"""Ads: what roost's ad stack does next to what a user would otherwise build or pick.

- **spend**: many threads charging one campaign at once. roost's `Store.charge` (each check the
  WHERE clause of the UPDATE that spends) against the read-check-write most code writes with
  SQLAlchemy (SELECT the spend, compare in Python, UPDATE to the new total), on SQLite and, when
  one can be started or `ROOST_TEST_PG_URL` names one, PostgreSQL: charges per second, money
  charged beyond the budget, and updates lost (the counter short of the ledger).
- **day**: a simulated day (`roost.ads.simulate`) through the real auction: ad requests per
  second and latency, pacing (spend / budget per campaign), frequency caps, impressions next to
  a blocked category.
- **pctr**: on that day's ledger, the hashed logistic regression roost serves with against
  scikit-learn's HistGradientBoostingClassifier (the gradient-boosted trees a user would reach
  for) on the same features, and a constant click rate: AUC, normalized entropy, calibration on
  the last third of the day after training on the first two thirds.
- **safety**: brand safety on the real posts' test split (OLID, HatEval): a keyword blocklist (the
  lexicons alone) against lexicons plus the trained classifier.

    python -m benchmarks.bench_ads [spend|day|pctr|safety ...] [--posts 3000] [--threads 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from roost.ads.store import CampaignSpec, ImpressionCharge, Store, to_ms
from tests.ads.postgres import postgres_server

DAY = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
PRICE = 7_000  # micros per impression; the budget holds BUDGET_IMPRESSIONS of them
BUDGET_IMPRESSIONS = 1_000


# -- spend ---------------------------------------------------------------------------------------------
def naive_tables(engine: sa.Engine) -> tuple[sa.Table, sa.Table]:
    """The two tables a first version has: the campaign with its spend, and the impressions."""
    meta = sa.MetaData()
    campaign = sa.Table(
        "naive_campaign",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("budget_micros", sa.BigInteger, nullable=False),
        sa.Column("spent_micros", sa.BigInteger, nullable=False),
    )
    impressions = sa.Table(
        "naive_impressions",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
    )
    meta.drop_all(engine)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(campaign).values(id=1, budget_micros=PRICE * BUDGET_IMPRESSIONS, spent_micros=0)
        )
    return campaign, impressions


def naive_charge(engine: sa.Engine, campaign: sa.Table, impressions: sa.Table, *, lock: bool = False) -> bool:
    """Read the spend, check it in Python, write the new total: the lost update waiting to happen,
    unless `lock` takes the row with SELECT ... FOR UPDATE first (the textbook fix; PostgreSQL)."""
    with engine.begin() as conn:
        query = sa.select(campaign.c.spent_micros, campaign.c.budget_micros).where(campaign.c.id == 1)
        row = conn.execute(query.with_for_update() if lock else query).one()
        if row.spent_micros + PRICE > row.budget_micros:
            return False
        conn.execute(
            sa.update(campaign).where(campaign.c.id == 1).values(spent_micros=row.spent_micros + PRICE)
        )
        conn.execute(sa.insert(impressions).values(campaign_id=1, amount_micros=PRICE))
    return True


def run_threads(threads: int, attempts: int, charge) -> tuple[float, int, int]:
    """(seconds, charged, errors) of `threads` threads each calling charge(worker, i) `attempts` times."""
    counts = [[0, 0] for _ in range(threads)]

    def work(w: int) -> None:
        for i in range(attempts):
            try:
                counts[w][0] += bool(charge(w, i))
            except sa.exc.OperationalError:  # e.g. SQLite's "database is locked"
                counts[w][1] += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started, sum(c[0] for c in counts), sum(c[1] for c in counts)


def bench_spend_on(url: str, label: str, threads: int) -> None:
    attempts = BUDGET_IMPRESSIONS * 3 // 2 // threads  # 1.5× what the budget holds
    budget = PRICE * BUDGET_IMPRESSIONS

    store = Store(url)
    campaign = store.add_campaign(
        store.add_advertiser("bench").id,
        CampaignSpec(
            name="bench",
            bid_micros=1_000_000,
            daily_budget_micros=budget,
            total_budget_micros=budget * 10,
            start=DAY,
            landing_url="https://shoes.example/spring",
        ),
    )
    creative = store.add_creative(campaign.id, "Run https://shoes.example/spring")
    at = to_ms(DAY) + 60_000

    def roost_charge(w: int, i: int) -> bool:
        result = store.charge(
            ImpressionCharge(
                request_id=f"w{w}-{i}",
                campaign_id=campaign.id,
                creative_id=creative.id,
                user_id=f"u{w}-{i}",
                slot="timeline",
                at_ms=at,
                price_micros=PRICE,
                bid_micros=1_000_000,
                pctr=0.02,
            )
        )
        return result.impression_id is not None

    took, charged, errors = run_threads(threads, attempts, roost_charge)
    in_ledger = sum(e.amount_micros for e in store.ledger(campaign_id=campaign.id))
    counter = store.day_spend("2024-03-01")[campaign.id].spent_micros
    roost_rate = threads * attempts / took
    print(
        f"  roost Store.charge           {roost_rate:8,.0f} charges/s  charged {charged:5,}  "
        f"beyond budget {max(in_ledger - budget, 0) / budget:6.1%}  lost {in_ledger - counter:>9,} micros  "
        f"errors {errors}"
    )
    store.close()

    engine = sa.create_engine(sa.engine.make_url(url).set(drivername=_driver(url)), pool_size=threads)
    variants = [("SQLAlchemy read-check-write", False)]
    if engine.dialect.name == "postgresql":
        variants.append(("... with SELECT FOR UPDATE", True))
    for name, lock in variants:
        naive, impressions = naive_tables(engine)
        took, charged, errors = run_threads(
            threads,
            attempts,
            lambda w, i, t=(naive, impressions), lock=lock: naive_charge(engine, *t, lock=lock),
        )
        with engine.connect() as conn:
            in_ledger = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(impressions.c.amount_micros), 0))
            ).scalar()
            counter = conn.execute(sa.select(naive.c.spent_micros)).scalar()
        rate = threads * attempts / took
        print(
            f"  {name:28s} {rate:8,.0f} charges/s  charged {charged:5,}  "
            f"beyond budget {max(in_ledger - budget, 0) / budget:6.1%}  "
            f"lost {in_ledger - counter:>9,} micros  errors {errors}"
        )
        if not lock:
            naive_rate, naive_over, naive_lost = (
                rate,
                max(in_ledger - budget, 0) / budget,
                in_ledger - counter,
            )
    print(
        f"  {label}: roost {roost_rate:,.0f} charges/s vs read-check-write {naive_rate:,.0f} "
        f"({roost_rate / naive_rate:.2f}x); roost never past the budget, read-check-write "
        f"{naive_over:.1%} past it and {naive_lost:,} micros unaccounted"
    )
    engine.dispose()


def _driver(url: str) -> str:
    return "postgresql+psycopg" if url.startswith("postgresql") else "sqlite"


def bench_spend(threads: int) -> None:
    print(
        f"\n-- spend: {threads} threads charging one campaign, "
        f"a budget of {BUDGET_IMPRESSIONS:,} impressions --"
    )
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite (WAL):")
        bench_spend_on(f"sqlite:///{Path(tmp) / 'ads.db'}", "SQLite", threads)
    with postgres_server() as (url, why):
        if url is None:
            print(f"PostgreSQL: skipped ({why})")
            return
        print(f"PostgreSQL ({why}):")
        schema = f"bench_{os.getpid()}"
        admin = sa.create_engine(sa.engine.make_url(url).set(drivername="postgresql+psycopg"))
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            scoped = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
            bench_spend_on(scoped.render_as_string(hide_password=False), "PostgreSQL", threads)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


# -- a simulated day, and the click models on its ledger -------------------------------------------------
def simulated_day(posts: int, workdir: Path):
    from roost.ads.simulate import DayConfig, DaySimulation

    store = Store(f"sqlite:///{workdir / 'ads.db'}")
    report = DaySimulation(
        store, DayConfig(seed=5, posts=posts, users=max(2000, posts // 2)), workdir=workdir
    ).run()
    return store, report


def bench_day(report) -> None:
    from roost.ads.money import format_money

    print(f"\n-- day: a simulated day of {report.posts:,} posts, seed {report.seed} --")
    print(
        f"{report.requests:,} ad requests, {report.impressions:,} impressions, {report.clicks:,} clicks; "
        f"auction p50 {report.latency_ms['p50']} ms, p99 {report.latency_ms['p99']} ms per request "
        f"({1000 / report.latency_ms['p50']:,.0f} requests/s on one thread); whole run {report.took_s} s"
    )
    print(
        f"brand safety: {report.blocked_impressions} impressions next to a blocked category "
        f"({report.blocked_incident_impressions} by the incidents' own labels), "
        f"{report.excluded.get('brand_safety', 0) + report.excluded.get('brand_safety_floor', 0):,} "
        "exclusions"
    )
    for c in report.campaigns:
        if c.daily_budget_micros >= 10**15:
            continue
        print(
            f"  {c.name[:24]:24s} {c.pacing:5s} budget {format_money(c.daily_budget_micros):>8}  spent "
            f"{c.spent_share:7.1%} (held back {c.held_back:4.0%})  {c.impressions:5,} imps  "
            f"frequency ≤{c.max_user_frequency}/{c.frequency_cap or '-'}"
            + (
                f"  NOT DELIVERABLE from {c.undeliverable_at} ({c.forecast_share:.1%})"
                if c.undeliverable_at
                else ""
            )
        )


def bench_pctr(store: Store, report) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from roost.ads.metrics import click_metrics
    from roost.ads.pctr import PctrModel

    day_ms = to_ms(dt.datetime.fromisoformat(report.day).replace(tzinfo=dt.UTC))
    served = store.served(since_ms=day_ms, until_ms=day_ms + 86_400_000)
    cut = len(served) * 2 // 3
    train, test = served[:cut], served[cut:]
    y_train = np.array([s.clicked for s in train])
    y_test = np.array([s.clicked for s in test])
    print(
        f"\n-- pctr: trained on {len(train):,} impressions ({y_train.sum()} clicks), "
        f"tested on {len(test):,} --"
    )

    started = time.perf_counter()
    lr = PctrModel.train([s.features.split() for s in train], y_train)
    lr_ms = (time.perf_counter() - started) * 1000
    lr_m = click_metrics(lr.predict([s.features.split() for s in test]), y_test)

    # The trees get each base feature as a column and find the crosses themselves.
    names = sorted({f for s in train for f in s.features.split() if "|" not in f})
    column = {n: j for j, n in enumerate(names)}

    def matrix(rows) -> np.ndarray:
        x = np.zeros((len(rows), len(names)), np.float32)
        for i, s in enumerate(rows):
            for f in s.features.split():
                if f in column:
                    x[i, column[f]] = 1.0
        return x

    started = time.perf_counter()
    gbt = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0).fit(
        matrix(train), y_train
    )
    gbt_ms = (time.perf_counter() - started) * 1000
    gbt_m = click_metrics(gbt.predict_proba(matrix(test))[:, 1], y_test)
    const_m = click_metrics(np.full(len(test), y_train.mean()), y_test)
    for name, m, ms in (
        ("roost hashed logistic regression", lr_m, lr_ms),
        ("HistGradientBoostingClassifier", gbt_m, gbt_ms),
        ("constant click rate", const_m, 0.0),
    ):
        print(
            f"  {name:34s} AUC {m.auc}  normalized entropy {m.normalized_entropy}  "
            f"calibration {m.calibration}  train {ms:,.0f} ms"
        )
    print(
        f"  roost AUC {lr_m.auc} vs gradient-boosted trees {gbt_m.auc}; normalized entropy "
        f"{lr_m.normalized_entropy} vs {gbt_m.normalized_entropy}; "
        f"training {gbt_ms / max(lr_ms, 1e-9):.1f}x faster"
    )


# -- brand safety ---------------------------------------------------------------------------------------
def bench_safety() -> None:
    from roost.ads.safety import SafetyClassifier, evaluate, train_from_real_posts
    from tests.conftest import REAL_POSTS

    print(
        "\n-- safety: keyword blocklist (the lexicons) vs lexicons + trained classifier, real test splits --"
    )
    if not REAL_POSTS.exists():
        print(f"  skipped: {REAL_POSTS} is absent")
        return
    model = train_from_real_posts(REAL_POSTS)
    for q in evaluate(SafetyClassifier(model), REAL_POSTS):
        print(
            f"  {q.category:10s} {q.posts:,} posts ({q.positives:,} positive): "
            f"blocklist F1 {q.lexicon['f1']:.3f} (P {q.lexicon['precision']:.3f} R {q.lexicon['recall']:.3f})"
            f" vs roost F1 {q.combined['f1']:.3f} "
            f"(P {q.combined['precision']:.3f} R {q.combined['recall']:.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["spend", "day", "pctr", "safety"])
    parser.add_argument("--posts", type=int, default=3000, help="simulated posts per day")
    parser.add_argument("--threads", type=int, default=8, help="threads charging at once")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    if "spend" in args.parts:
        bench_spend(args.threads)
    if {"day", "pctr"} & set(args.parts):
        with tempfile.TemporaryDirectory() as tmp:
            store, report = simulated_day(args.posts, Path(tmp))
            if "day" in args.parts:
                bench_day(report)
            if "pctr" in args.parts:
                bench_pctr(store, report)
            store.close()
    if "safety" in args.parts:
        bench_safety()


if __name__ == "__main__":
    main()
