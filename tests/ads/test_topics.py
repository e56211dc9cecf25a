"""The topic model learns the simulated platform's topics from simulated posts and reads unseen
ones; its probabilities are calibrated enough to threshold."""

from __future__ import annotations

import numpy as np

from roost.ads.topics import TOPIC_NAMES, TopicModel, simulated_examples


def test_topics_of_unseen_simulated_posts(topic_model: TopicModel) -> None:
    texts, labels = simulated_examples(600, seed=77)  # another seed than the model learned from
    proba = topic_model.proba(texts)
    assert proba.shape == (600, len(TOPIC_NAMES))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
    accuracy = (proba.argmax(axis=1) == labels).mean()
    confident = proba.max(axis=1) >= 0.5
    precision = (proba.argmax(axis=1) == labels)[confident].mean()
    print(f"accuracy {accuracy:.3f}; at p >= 0.5: {confident.mean():.0%} of posts, precision {precision:.3f}")
    assert accuracy > 0.6
    assert precision > accuracy  # the threshold buys precision: the probabilities mean something
    assert topic_model.top("the referee and the derby last night #matchday")[0] == "football"
