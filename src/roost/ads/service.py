"""The ads stage put together: the store, its trained models, targeting through the search index,
the ad server and the copywriter, opened once and shared by the /ads routes and `roost ads`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import numpy as np

from roost.ads.auction import AdServer
from roost.ads.config import AdsConfig
from roost.ads.creative import Brief, CreativeResult, CreativeWriter, validate
from roost.ads.engagement import EngagementModel
from roost.ads.metrics import ClickMetrics, click_metrics
from roost.ads.profiles import UserProfiles
from roost.ads.safety import SafetyClassifier
from roost.ads.store import Campaign, Creative, Store, to_ms
from roost.ads.targeting import Targeter, TargetHit
from roost.ads.topics import TopicModel
from roost.search.retrieve import Retriever
from roost.workspace import Workspace

DAY_MS = 86_400_000


class CreativeRejected(ValueError):
    """A hand-written creative breaks the rules; `reasons` says which."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("the creative breaks the rules: " + "; ".join(reasons))
        self.reasons = reasons


class CampaignReport(msgspec.Struct):
    campaign_id: int
    since: dt.datetime
    until: dt.datetime
    spent_micros: int
    impressions: int
    clicks: int
    ctr: float
    cpm_micros: int
    clicks_metrics: ClickMetrics


class AdsService:
    """`index` (a SearchIndex) makes targeting and previews work through search; `engine` (a
    serving Engine) writes creatives. Either may be None: the rest still works."""

    def __init__(self, store: Store, config: AdsConfig, *, index=None, engine=None) -> None:
        self.store, self.config, self.index, self.engine = store, config, index, engine
        self.safety = SafetyClassifier.load(store, config.safety_threshold)
        self.topics = TopicModel.load(store)
        self.retriever = Retriever(index, log_queries=False) if index is not None else None
        self.targeter = Targeter(config, self.retriever)
        profiles = UserProfiles(self.retriever, self.topics) if self.retriever and self.topics else None
        self.server = AdServer(
            store, config, targeter=self.targeter, safety=self.safety, topics=self.topics, profiles=profiles
        )
        self.writer = (
            CreativeWriter(engine, config, EngagementModel.load(store)) if engine is not None else None
        )

    @classmethod
    def open(cls, ws: Workspace, *, index: Any = "workspace", engine: Any = "workspace") -> AdsService:
        """The workspace's ads: its store, its search index (read-only) when one has been built,
        and an engine over `[ads] creative_model` when a run exists. Pass None to do without."""
        config = ws.config("ads", AdsConfig)
        store = Store.open(ws, config.database, sqlite_synchronous=config.sqlite_synchronous)
        if index == "workspace":
            from roost.search.index import SearchIndex

            index = SearchIndex.open(ws, readonly=True) if (ws.index_dir / "index.db").exists() else None
        if engine == "workspace":
            engine = _workspace_engine(ws, config.creative_model)
        return cls(store, config, index=index, engine=engine)

    def close(self) -> None:
        self.server.stop_refreshing()
        if self.engine is not None:
            self.engine.close()
        if self.index is not None:
            self.index.close()
        self.store.close()

    # -- what the routes and commands ask ---------------------------------------------------------
    def preview(self, campaign_id: int, *, limit: int = 20, now_ms: int | None = None) -> list[TargetHit]:
        """The live conversations a campaign would target now, each with its brand-safety
        categories and whether they keep the campaign away."""
        from roost.ads.schema import now_ms as wall_ms
        from roost.ads.targeting import Targets

        campaign = self.store.campaign(campaign_id)
        hits = self.targeter.search(Targets(campaign), wall_ms() if now_ms is None else now_ms, limit)
        refuses = set(campaign.blocked_categories) | set(self.config.floor_categories)
        for hit, found in zip(hits, self.safety.categories([h.post.text for h in hits]), strict=True):
            hit.categories = sorted(found)
            hit.blocked = bool(found & refuses)
        return hits

    def brief_for(self, campaign: Campaign, fields: dict) -> Brief:
        """A brief whose destination and language default to the campaign's."""
        defaults = {
            "landing_url": campaign.landing_url,
            "handle": campaign.handle,
            "language": (campaign.targeting.languages or ["en"])[0],
        }
        return msgspec.convert({**defaults, **fields}, Brief)

    def generate(
        self, campaign_id: int, fields: dict, *, save: bool = False
    ) -> tuple[CreativeResult, list[Creative]]:
        """Write variants for a campaign's brief; with `save`, the passing ones become its creatives."""
        if self.writer is None:
            raise RuntimeError("no model to write with: train a run, or set [ads] creative_model")
        campaign = self.store.campaign(campaign_id)
        result = self.writer.write(self.brief_for(campaign, fields))
        saved = []
        if save:
            for variant in result.variants:
                details = {"source": "generated", "score": variant.score, "engagement": variant.engagement}
                saved.append(
                    self.store.add_creative(campaign_id, variant.text, score=variant.score, details=details)
                )
        return result, saved

    def add_creative(self, campaign_id: int, text: str) -> Creative:
        """A hand-written creative, held to the same rules as generated ones."""
        campaign = self.store.campaign(campaign_id)
        brief = self.brief_for(campaign, {"product": campaign.name})
        reasons = validate(text, brief, self.config.blocked_claims)
        if reasons:
            raise CreativeRejected(reasons)
        return self.store.add_creative(campaign_id, text, details={"source": "written"})

    def report(
        self, campaign_id: int, *, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> CampaignReport:
        """Spend, impressions, clicks and click-model quality of a campaign over [since, until)
        (default: the last 24 hours), from the ledger itself."""
        self.store.campaign(campaign_id)
        end = until or dt.datetime.now(dt.UTC)
        start = since or end - dt.timedelta(days=1)
        served = [
            s
            for s in self.store.served(since_ms=to_ms(start), until_ms=to_ms(end))
            if s.campaign_id == campaign_id
        ]
        spent = self.store.ledger_totals(since_ms=to_ms(start), until_ms=to_ms(end)).get(campaign_id)
        impressions = spent.impressions if spent else 0
        clicks = spent.clicks if spent else 0
        amount = spent.spent_micros if spent else 0
        return CampaignReport(
            campaign_id,
            start,
            end,
            amount,
            impressions,
            clicks,
            round(clicks / impressions, 6) if impressions else 0.0,
            amount * 1000 // impressions if impressions else 0,
            click_metrics(np.array([s.pctr or 0.0 for s in served]), np.array([s.clicked for s in served])),
        )


def _workspace_engine(ws: Workspace, source: str):
    """An engine over `source` (or the newest run), or None when the workspace has no model."""
    if not source and not any((p / "config.json").exists() for p in ws.runs_dir.glob("*")):
        return None
    from roost.search.embedder import engine_for

    return engine_for(ws, source, cuda_graphs=False)
