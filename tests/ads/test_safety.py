"""Brand safety: the lexicons read posts as written on social media (hashtags, accents, idioms),
and the trained classifier beats the lexicons alone on the real posts' held-out test split."""

from __future__ import annotations

import pytest

from roost.ads.categories import CATEGORIES
from roost.ads.safety import LEXICONS, Lexicon, SafetyClassifier, evaluate, train_from_real_posts
from roost.ads.textclf import TextClassifier
from tests.conftest import REAL_POSTS, need


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Flooding in Leeds: homes evacuated overnight", {"disasters"}),
        ("our street is #FloodedAgain after the storm", {"disasters"}),
        ("Séisme de magnitude 6 près de Lyon", {"disasters"}),
        ("two fans killed after the derby", {"violence"}),
        ("man charged with assault outside the ground", {"crime"}),
        ("free beer and tequila all night", {"drugs"}),
        ("what a fucking joke", {"obscenity"}),
        ("torrent link in bio, cracked version", {"piracy"}),
        ("bombing near the old town, tourists told to stay away", {"terrorism"}),
        ("this song is killing me, the gym was dead today", set()),  # idioms
        ("the rain in the forecast again", set()),
        ("Scunthorpe United won at home", set()),  # no word inside another word
    ],
)
def test_lexicons(text: str, expected: set[str]) -> None:
    assert set(Lexicon().matches(text)) == expected


def test_every_category_has_a_lexicon() -> None:
    assert set(LEXICONS) == set(CATEGORIES)
    assert all(len(terms) >= 10 for terms in LEXICONS.values())


def test_a_trained_model_adds_what_the_lexicon_misses() -> None:
    texts = [
        f"you are such a {w} person" for w in ("vile", "rotten", "nasty", "lovely", "kind", "sweet")
    ] * 10
    targets = [[1], [1], [1], [0], [0], [0]] * 10
    import numpy as np

    model = TextClassifier.fit(texts, np.array(targets), ["obscenity"], multilabel=True, n_features=2**12)
    restored = TextClassifier.from_bytes(model.to_bytes())
    classifier = SafetyClassifier(restored, threshold=0.5)
    found = classifier.categories(
        ["such a vile person", "such a sweet person", "such a kind person, flooding"]
    )
    assert found == [frozenset({"obscenity"}), frozenset(), frozenset({"disasters"})]
    verdict = classifier.explain("such a vile person")
    assert verdict.categories == ["obscenity"] and verdict.model["obscenity"] > 0.5 and verdict.lexicon == {}


def test_the_classifier_beats_the_lexicon_on_real_posts() -> None:
    path = need(REAL_POSTS)
    model = train_from_real_posts(path, n_features=2**17)
    for quality in evaluate(SafetyClassifier(model), path):
        print(quality)
        assert quality.posts > 500 and quality.positives > 100
        assert quality.combined["f1"] > quality.lexicon["f1"] + 0.15
        assert quality.combined["recall"] > quality.lexicon["recall"]
