"""What a post is about, among the platform's topics: for targeting campaigns by topic and for
the interest profiles the click model reads.

The topics are the simulated platform's twenty (roost.firehose.simdata.topics: tech, football,
food, ...), each mapped to one of TweetTopic's 19 categories. The classifier (roost.ads.textclf,
Complement Naive Bayes) learns from simulated posts, whose true topic the simulator knows
(`Simulator.labelled`), drawn from a seed of their own so that a simulated day it later runs on
is unseen text; `evaluate_on_real` scores it on the real TweetTopic posts through that mapping.
Saved in the ads store as the model "topics".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from roost.ads.textclf import TextClassifier
from roost.firehose.simdata.topics import TOPICS

MODEL_NAME = "topics"
TOPIC_NAMES = list(TOPICS)
TRAIN_SEED = 9001  # simulated days the ads tests and benchmarks run use other seeds


def simulated_examples(n: int, *, seed: int = TRAIN_SEED, users: int = 5000) -> tuple[list[str], np.ndarray]:
    """`n` simulated posts (originals, replies, quotes; no reposts, spam or copies) and their topics."""
    from roost.firehose.simulate import SimConfig, Simulator

    index = {name: i for i, name in enumerate(TOPIC_NAMES)}
    texts: list[str] = []
    labels: list[int] = []
    for event, truth in Simulator(SimConfig(seed=seed, users=users)).labelled():
        if event.post is None or truth is None or truth.is_spam or truth.kind in ("repost", "copy"):
            continue
        texts.append(event.post.text)
        labels.append(index[truth.topic])
        if len(texts) == n:
            break
    return texts, np.asarray(labels)


def train_topics(n: int = 20_000, *, seed: int = TRAIN_SEED, n_features: int = 2**17) -> TextClassifier:
    """Fit on `n` simulated posts, then scale its probabilities on a tenth more, held out."""
    texts, labels = simulated_examples(n + n // 10, seed=seed)
    classifier = TextClassifier.fit(
        texts[:n],
        labels[:n],
        TOPIC_NAMES,
        multilabel=False,
        n_features=n_features,
        meta={"trained_on": f"simulated posts, seed {seed}", "posts": n},
    )
    classifier.calibrate(texts[n:], labels[n:])
    return classifier


class TopicModel:
    """Topic probabilities of texts, cached by text."""

    def __init__(self, classifier: TextClassifier, *, cache_size: int = 65536) -> None:
        self.classifier = classifier
        self.labels = classifier.labels
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def load(cls, store) -> TopicModel | None:  # store: roost.ads.store.Store
        saved = store.load_model(MODEL_NAME)
        return cls(TextClassifier.from_bytes(saved[1])) if saved else None

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, topics) float32; rows sum to one."""
        out = np.empty((len(texts), len(self.labels)), np.float32)
        todo = []
        for i, text in enumerate(texts):
            row = self._cache.get(text)
            if row is None:
                todo.append(i)
            else:
                out[i] = row
        if todo:
            fresh = self.classifier.predict_proba([texts[i] for i in todo])
            for i, row in zip(todo, fresh, strict=True):
                out[i] = row
                self._cache[texts[i]] = row
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def top(self, text: str) -> tuple[str, float]:
        row = self.proba([text])[0]
        best = int(row.argmax())
        return self.labels[best], float(row[best])


class TopicQuality(msgspec.Struct):
    lang: str
    posts: int
    accuracy: float  # the predicted topic's TweetTopic category is one of the post's gold ones


def evaluate_on_real(model: TopicModel, path: Path) -> list[TopicQuality]:
    """Accuracy on the real TweetTopic posts (task `topic`) per language, through each topic's
    TweetTopic category. Posts whose gold categories no platform topic maps to are left out."""
    categories = [TOPICS[name]["category"] for name in model.labels]
    reachable = set(categories)
    by_lang: dict[str, list[tuple[str, set[str]]]] = {}
    with open(path, "rb") as f:
        for line in f:
            post = msgspec.json.decode(line)
            if post["task"] == "topic" and reachable & set(post["topics"]):
                by_lang.setdefault(post["lang"], []).append((post["text"], set(post["topics"])))
    out = []
    for lang, posts in sorted(by_lang.items()):
        predicted = model.proba([text for text, _ in posts]).argmax(axis=1)
        hits = sum(categories[p] in gold for p, (_, gold) in zip(predicted, posts, strict=True))
        out.append(TopicQuality(lang, len(posts), round(hits / len(posts), 4)))
    return out
