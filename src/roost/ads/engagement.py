"""Predicted engagement of ad copy: which wording gets clicked, learned from the ledger.

A one-label text classifier (roost.ads.textclf) over every creative that has run: its text is a
positive example weighted by its clicks and a negative one weighted by its unclicked impressions,
so it estimates a click rate from the words alone, across campaigns. Creative generation ranks new
variants by it before they have ever been shown. Saved in the ads store as "engagement".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from roost.ads.textclf import TextClassifier

MODEL_NAME = "engagement"


class EngagementModel:
    def __init__(self, classifier: TextClassifier) -> None:
        self.classifier = classifier
        self.base_rate = float(classifier.meta["base_rate"])

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted click-through rate of each text."""
        return self.classifier.predict_proba(texts)[:, 0]

    @classmethod
    def load(cls, store) -> EngagementModel | None:  # store: roost.ads.store.Store
        saved = store.load_model(MODEL_NAME)
        return cls(TextClassifier.from_bytes(saved[1])) if saved else None

    @classmethod
    def train_from_store(cls, store, *, since_ms: int | None = None) -> EngagementModel:
        """Train on the ledger's impressions since `since_ms` and save it as a new version."""
        shown: dict[int, list[int]] = {}
        for served in store.served(since_ms=since_ms):
            counts = shown.setdefault(served.creative_id, [0, 0])
            counts[0] += 1
            counts[1] += served.clicked
        impressions = sum(c[0] for c in shown.values())
        clicks = sum(c[1] for c in shown.values())
        if not clicks or clicks == impressions:
            raise ValueError("an engagement model needs impressions both clicked and not clicked")
        texts, targets, weights = [], [], []
        for creative_id, (n, k) in shown.items():
            text = store.creative(creative_id).text
            for label, weight in ((1, k), (0, n - k)):
                if weight:
                    texts.append(text)
                    targets.append(label)
                    weights.append(weight)
        classifier = TextClassifier.fit(
            texts,
            np.array(targets)[:, None],
            ["click"],
            multilabel=True,
            n_features=2**16,
            sample_weight=np.array(weights, np.float64),
            meta={"base_rate": clicks / impressions, "creatives": len(shown), "impressions": impressions},
        )
        store.save_model(MODEL_NAME, classifier.to_bytes(), classifier.meta)
        return cls(classifier)
