"""How `roost demo` spends its time budget: how many posts to simulate, which model to train, and
how long each elastic stage (pretraining, chat tuning, the search embedder) may run.

Data stages (streaming, curation, indexing, ads) take time in proportion to the posts, so the
post count is set from the budget up front; the training stages then share what is left, each
taking its share when it starts, after a reserve for the stages still to come. The default budget
holds on a 2-core machine without a GPU; one under about two minutes is overrun, since the fixed
costs (process start-ups, the index, the ads) take about that long (docs/web.md has the times).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

MIN_BUDGET_S = 30.0
DEFAULT_BUDGET_S = 900.0
SMALL_BUDGET_S = 300.0  # below this the model is the `tiny` preset: anything bigger learns nothing
# What each of the four training and indexing processes spends outside its own budget (imports,
# reading the data, the last checkpoint), measured on the 2-core development machine.
STARTUP_S = 20.0
# How the time left after the reserves is shared by pretraining, chat tuning and tuning the search
# embedder, and the least each gets.
ELASTIC_SHARES = (0.68, 0.20, 0.12)
ELASTIC_MINIMUM_S = (8.0, 5.0, 5.0)


@dataclass(frozen=True)
class Plan:
    budget_s: float
    events: int  # simulated events streamed through the firehose (posts and deletes)
    preset: str
    train: dict[str, object]  # `--set` overrides for pretraining (and, with lr, chat tuning)
    embedder_batch: int  # pairs per contrastive step when tuning the search embedder
    ads_posts: int  # posts of the simulated ad day
    topic_posts: int  # simulated posts the ads' topic classifier learns from
    # When the simulated platform starts: as long before the first build as its events span, so
    # that they end at about the time it ran (recent conversations, which is what ads target)
    # rather than on the simulator's default date.
    sim_start: str

    @property
    def index_reserve_s(self) -> float:
        """Time kept back for building the index (lexical, and embedding every post)."""
        return 10.0 + self.events / 1500

    @property
    def ads_reserve_s(self) -> float:
        """Time kept back for the ads: the topic model, copy for the campaigns, a simulated day."""
        return 20.0 + self.topic_posts / 1000 + self.ads_posts / 35

    def elastic_seconds(self, stage: int, left_s: float) -> float:
        """Seconds for elastic stage `stage` (0 pretraining, 1 chat tuning, 2 tuning the search
        embedder) when it starts with `left_s` of the budget left: its share, among itself and the
        elastic stages after it, of what the reserves for the later stages leave. Each stage takes
        from what is left when it starts, so one that ran over (a loaded machine starts processes
        slowly) is made up by the ones after it. Each gets a few seconds at least, so every one runs."""
        startups = len(ELASTIC_SHARES) - stage + 1  # its process, the later elastic ones', the index build's
        pool = max(0.0, left_s - self.index_reserve_s - self.ads_reserve_s - STARTUP_S * startups - 10.0)
        share = ELASTIC_SHARES[stage] / sum(ELASTIC_SHARES[stage:])
        # A rerun after Ctrl-C starts a new clock: no stage takes more than its share of a whole build.
        whole = self.budget_s - self.index_reserve_s - self.ads_reserve_s - STARTUP_S * 4 - 10.0
        return max(ELASTIC_MINIMUM_S[stage], min(share * pool, ELASTIC_SHARES[stage] * max(0.0, whole)))


def plan_for(budget_s: float, *, posts_per_day: float = 50_000.0, now: dt.datetime | None = None) -> Plan:
    """The demo's plan for a total build time of `budget_s` seconds, starting at `now`, on a
    simulated platform of `posts_per_day`."""
    if budget_s < MIN_BUDGET_S:
        raise ValueError(f"the time budget must be at least {MIN_BUDGET_S:.0f} s, not {budget_s:g}")
    small = budget_s < SMALL_BUDGET_S
    events = int(min(50_000, max(2_000, budget_s * 55)))
    if small:
        # The tiny preset reads 128 tokens at most; a high rate because it has few steps to learn in.
        train: dict[str, object] = {"seq_len": 128, "micro_batch": 16, "global_batch": 16, "lr": 3e-3}
        evals = {"eval_every": 10, "eval_sequences": 16, "checkpoint_every": 20}
    else:
        # The 20M preset at batch 16: ~5 s a step on two loaded cores (docs/benchmarks.md).
        train = {"seq_len": 256, "micro_batch": 8, "global_batch": 16, "lr": 2e-3}
        evals = {"eval_every": 20, "eval_sequences": 64, "checkpoint_every": 25}
    # A constant rate after warm-up: the run ends on the clock, not at a step a schedule knows.
    train |= evals | {
        "schedule": "constant",
        "warmup_steps": 10,
        "max_steps": 1_000_000,
        "keep_checkpoints": 2,
    }
    return Plan(
        budget_s=budget_s,
        events=events,
        preset="tiny" if small else "20m",
        train=train,
        embedder_batch=32 if small else 128,
        ads_posts=600 if small else 2_000,
        topic_posts=1_500 if small else 6_000,
        sim_start=((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=events / posts_per_day))
        .replace(microsecond=0)
        .isoformat(),
    )


def parse_duration(text: str) -> float:
    """Seconds from "900", "90s", "15m" or "1h"."""
    value = text.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(value[-1:])
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration: write seconds (900), or 90s, 15m, 1h") from None
    if seconds <= 0:
        raise ValueError(f"the duration must be positive, not {text!r}")
    return seconds
