"""The planner's section of roost.toml, `[plan]`: the cluster the platform has, what a GPU-hour
costs, and how much the firehose yields (for the data-constrained mode). Flags override it."""

from __future__ import annotations

import msgspec


class PlanConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    gpu: str = "h100"  # a key of roost.plan.hardware.GPUS (or an alias: h100, a100)
    gpus: int = 10_000
    price_per_gpu_hour: float = 2.0  # USD
    # The firehose's volume; 0 posts per day leaves training unconstrained by data.
    posts_per_day: float = 0.0
    tokens_per_post: float = 40.0  # a short post and its metadata, in BPE tokens
    history_days: float = 365.0
    curation_loss: float = 0.5  # share of tokens curation removes (spam, duplicates, PII, language)
