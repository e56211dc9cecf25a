"""The simulator's grammar: agreement, articles and contractions, elision, and copy-paste changes."""

from __future__ import annotations

import collections
import itertools
import random
import re

import pytest

from roost.firehose.sim_copies import NEAR_CHANGES, Copy, near_copy
from roost.firehose.sim_text import PLANS, Composer, compile_piece, noun_forms, thing_item
from roost.firehose.simulate import SimConfig, Simulator

HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
MENTION = re.compile(r"(?<![\w@])@(\w+)")
URL = re.compile(r"https?://\S+")


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(SimConfig(seed=11, users=3000))


@pytest.fixture(scope="module")
def texts(sim: Simulator) -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = collections.defaultdict(list)
    for event, truth in itertools.islice(sim.labelled(), 30_000):
        if truth is not None and truth.kind != "repost":
            by_lang[truth.lang].append(event.post.text)
    return by_lang


def test_alternations_expand_by_agreement() -> None:
    piece = compile_piece("{F} [is|are] overrated")
    formats, slots = piece.formats, piece.slots
    assert formats == ("%s is overrated", "%s is overrated", "%s are overrated", "%s are overrated")
    assert slots == ("F",)
    formats = compile_piece("[está|están] sobrevalorad[o|a|os|as]").formats
    assert formats == (
        "está sobrevalorado",
        "está sobrevalorada",
        "están sobrevalorados",
        "están sobrevaloradas",
    )
    with pytest.raises(ValueError, match="unknown slot"):
        compile_piece("{nonsense} here")
    with pytest.raises(ValueError, match="alternation"):
        compile_piece("[a|b|c]")


@pytest.mark.parametrize(
    ("lang", "gender", "noun", "expected"),
    [
        ("es", "m", "el precio", ("el precio", "el precio", "el precio", "del precio", "al precio")),
        (
            "es",
            "f",
            "la batería",
            ("la batería", "la batería", "la batería", "de la batería", "a la batería"),
        ),
        ("fr", "m", "le prix", ("le prix", "le prix", "le prix", "du prix", "au prix")),
        ("fr", "mp", "les écouteurs", ("les écouteurs",) * 3 + ("des écouteurs", "aux écouteurs")),
        ("fr", "m", "Arcline S5", ("Arcline S5",) * 3 + ("d'Arcline S5", "à Arcline S5")),
        (
            "de",
            "m",
            "der neue Chip",
            ("der neue Chip", "den neuen Chip", "dem neuen Chip", "vom neuen Chip", "zum neuen Chip"),
        ),
        ("de", "f", "die Kamera", ("die Kamera", "die Kamera", "der Kamera", "von der Kamera", "zur Kamera")),
        (
            "de",
            "n",
            "das neue Update",
            (
                "das neue Update",
                "das neue Update",
                "dem neuen Update",
                "vom neuen Update",
                "zum neuen Update",
            ),
        ),
        (
            "de",
            "p",
            "die Kopfhörer",
            ("die Kopfhörer", "die Kopfhörer", "den Kopfhörern", "von den Kopfhörern", "zu den Kopfhörern"),
        ),
    ],
)
def test_noun_forms(lang: str, gender: str, noun: str, expected: tuple[str, ...]) -> None:
    assert noun_forms(lang, gender, noun) == expected


def test_every_language_has_thousands_of_pieces(sim: Simulator) -> None:
    total = 0
    for grammar in sim.world.grammars:
        pieces = sum(
            len(a) + len(b) for a, b in itertools.chain(grammar.sentences.values(), grammar.lists.values())
        )
        for topic in grammar.topics:
            pieces += len(topic.things) + len(topic.pos) + len(topic.neg) + len(topic.news) + len(topic.doing)
            pieces += len(topic.needs) + sum(map(len, topic.reasons))
        assert pieces > 900, grammar.code
        total += pieces
    assert total > 4000
    assert set(PLANS) >= {"opinion", "question", "answer_yes", "answer_no", "thanks", "spam"}


def test_no_template_leftovers_or_broken_spacing(texts: dict[str, list[str]]) -> None:
    leftovers = re.compile(r"[\[\]{}|]|  | [.,](?!\.)|\.\.\.\.")
    for lang, posts in texts.items():
        assert len(posts) > 1000, lang
        for text in posts:
            assert not leftovers.search(text), (lang, text)


def test_articles_contract_and_elide(texts: dict[str, list[str]]) -> None:
    assert not [t for t in texts["es"] if re.search(r"\b(de|a) el\b", t)]
    uncontracted = re.compile(r"\b(?:von|zu) dem (?:[a-zäöü]+en )?[A-ZÄÖÜ]|\bzu der [A-ZÄÖÜ]")
    assert not [t for t in texts["de"] if uncontracted.search(t)]
    unelided = re.compile(r"\b(?:de|que|je|ne|le) [aeiouéèêàâîôû]", re.IGNORECASE)
    assert not [t for t in texts["fr"] if unelided.search(t)]
    assert not [t for t in texts["fr"] if re.search(r"\bde les\b|\bà les\b|\bde le\b|\bà le\b", t)]


def test_predicates_agree_with_the_focus(sim: Simulator) -> None:
    composer = Composer(sim.world.grammars, random.Random(5).random, lambda: "someone")
    languages = sim.world.languages
    en, es, de = languages.index("en"), languages.index("es"), languages.index("de")
    tech = sim.world.topic_index["tech"]
    checks = [
        (
            en,
            thing_item("en", "tech", "p:wireless earbuds"),
            re.compile(r"wireless earbuds (is|was|has|keeps)\b"),
        ),
        (en, thing_item("en", "tech", "s:the camera"), re.compile(r"the camera (are|were|have|keep)\b")),
        (
            es,
            thing_item("es", "tech", "fp:las tabletas"),
            re.compile(r"tabletas (es|está|sigue|va)\b|tabletas (son|están) \w+os\b"),
        ),
        (de, thing_item("de", "tech", "p:die Tablets"), re.compile(r"Tablets (ist|wird|war|hat)\b")),
    ]
    for lang, item, wrong in checks:
        for _ in range(300):
            composer.begin(lang, tech, item, 1 if random.random() < 0.5 else -1)
            text = composer.compose("opinion")
            assert not wrong.search(text), text


def test_replies_answer_in_the_same_words(sim: Simulator) -> None:
    """A 'yes'/'no' answer is written about the question's own focus, named or agreed with."""
    composer = Composer(sim.world.grammars, random.Random(9).random, lambda: "someone")
    en = sim.world.languages.index("en")
    food = sim.world.topic_index["food"]
    venue = composer.pick_entity(en, food, "venue")
    named = 0
    for _ in range(200):
        composer.begin(en, food, venue, 1)
        text = composer.compose("answer_yes")
        named += venue.nom in text or (venue.tag and f"#{venue.tag}" in text) or "it" in text.lower()
    assert named > 150


def test_near_copies_always_differ_and_keep_entities_consistent(sim: Simulator) -> None:
    rand = random.Random(3).random
    seen = collections.Counter()
    for event in itertools.islice(sim, 3000):
        post = event.post
        if post is None:
            continue
        copy, change = near_copy(
            Copy(post.text, post.hashtags, post.mentions, post.urls), rand, ["lol", "wow"]
        )
        seen[change] += 1
        assert copy.text != post.text
        assert copy.hashtags == HASHTAG.findall(copy.text)
        assert copy.mentions == MENTION.findall(copy.text)
        assert copy.urls == URL.findall(copy.text)
    assert set(seen) == set(NEAR_CHANGES)
