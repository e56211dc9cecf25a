"""The `[ads]` section of roost.toml: where the ads database is, the auction's reserve and pacing,
targeting and brand-safety thresholds, and how ad copy is written. Every default works on one CPU
with the workspace's SQLite file."""

from __future__ import annotations

import msgspec

from roost.ads.categories import CATEGORIES

# Claims an ad may never make, whatever the brief says (health, money and safety promises that ad
# policies forbid), in the simulator's four languages. Matched as words, stemmed, case- and
# accent-insensitively, so "Guaranteed" and "guarantees" count.
DEFAULT_BLOCKED_CLAIMS = [
    "guaranteed",
    "guarantee",
    "cure",
    "cures",
    "risk-free",
    "no risk",
    "miracle",
    "100% effective",
    "get rich",
    "instant results",
    "doctor approved",
    "clinically proven",
    "lose weight fast",
    "garantizado",
    "cura",
    "sin riesgo",
    "milagro",
    "garanti",
    "guérit",
    "sans risque",
    "miracle",
    "garantiert",
    "heilt",
    "risikofrei",
    "wunder",
]


class AdsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # -- store ------------------------------------------------------------------------------------
    database: str = ""  # SQLAlchemy URL (postgresql://user:pass@host/db); "" = <home>/ads.db (SQLite)
    # SQLite durability: NORMAL (WAL) survives a killed process, a power cut may lose the last
    # commits; FULL syncs every commit. PostgreSQL ignores it.
    sqlite_synchronous: str = "NORMAL"

    # -- auction ----------------------------------------------------------------------------------
    reserve_cpm_micros: int = 500_000  # no impression sells for less than this per 1,000 ($0.50 CPM)
    max_ads_per_request: int = 4  # positions one request may ask for
    prior_ctr: float = 0.02  # the click rate assumed before a pCTR model is trained
    floor_categories: list[str] = msgspec.field(
        default_factory=lambda: ["adult", "hate", "terrorism"]
    )  # never next to an ad, whatever a campaign allows (GARM's floor)
    refresh_s: float = 5.0  # how often a server reloads campaigns, spend and models

    # -- pacing -----------------------------------------------------------------------------------
    pacing_interval_s: float = 300.0  # the controller's step
    pacing_gain: float = 0.5  # of log(wanted / spent) applied to log(throttle) each step
    pacing_catch_up: float = 0.3  # share of the gap to the plan that each interval should close
    pacing_max_step: float = 4.0  # the throttle changes at most this factor per step
    pacing_initial_throttle: float = 0.1  # a campaign's first throttle (later days carry theirs over)
    pacing_min_throttle: float = 0.0005
    pacing_lead: float = 0.03  # plan to have spent the budget this share of the day's traffic early

    # -- targeting --------------------------------------------------------------------------------
    targeting_window_hours: float = 24.0  # "live" conversations: posts this recent
    targeting_posts: int = 300  # conversations per campaign taken from the index
    targeting_refresh_s: float = 900.0  # how often each campaign's conversations are searched again
    targeting_min_similarity: float = 0.5  # a dense-only hit must be at least this close to the brief
    topic_threshold: float = 0.5  # a post is about a topic at this (calibrated) probability or more

    # -- brand safety -----------------------------------------------------------------------------
    safety_threshold: float = 0.5  # a category's model probability that flags a post (if no tuned one)

    # -- creatives ----------------------------------------------------------------------------------
    creative_model: str = ""  # run or export that writes ad copy; "" = the newest run
    creative_max_tokens: int = 48
    creative_temperature: float = 0.9
    creative_top_p: float = 0.95
    creative_oversample: int = 3  # candidates written per requested variant in each round
    creative_rounds: int = 4  # rounds of fresh seeds before giving up on the rest
    blocked_claims: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_BLOCKED_CLAIMS))

    def __post_init__(self) -> None:
        if self.reserve_cpm_micros < 0:
            raise ValueError("[ads] reserve_cpm_micros cannot be negative")
        if not 1 <= self.max_ads_per_request <= 10:
            raise ValueError("[ads] max_ads_per_request must be 1 to 10")
        if not 0.0 < self.prior_ctr < 1.0:
            raise ValueError("[ads] prior_ctr must be in (0, 1)")
        unknown = [c for c in self.floor_categories if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"[ads] floor_categories: unknown {unknown}; known: {', '.join(CATEGORIES)}")
        for name in ("pacing_interval_s", "targeting_window_hours", "targeting_refresh_s", "refresh_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"[ads] {name} must be positive")
        if not 0.0 < self.pacing_min_throttle <= self.pacing_initial_throttle <= 1.0:
            raise ValueError("[ads] need 0 < pacing_min_throttle <= pacing_initial_throttle <= 1")
        if not 0.0 <= self.pacing_lead < 0.5 or self.pacing_gain <= 0 or self.pacing_max_step <= 1:
            raise ValueError("[ads] need pacing_lead in [0, 0.5), pacing_gain > 0, pacing_max_step > 1")
        if not 0.0 < self.pacing_catch_up <= 1.0:
            raise ValueError("[ads] pacing_catch_up must be in (0, 1]")
        if self.creative_oversample < 1 or self.creative_rounds < 1 or self.creative_max_tokens < 4:
            raise ValueError("[ads] creative_oversample, creative_rounds >= 1 and creative_max_tokens >= 4")
