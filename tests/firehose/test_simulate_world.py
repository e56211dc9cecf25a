"""The simulated world: users and their hidden interests, topics and their known answers, config."""

from __future__ import annotations

import itertools
import re

import msgspec
import numpy as np
import pytest

from roost.firehose.sim_world import PERSONAS, World
from roost.firehose.simulate import SimConfig, Simulator
from roost.workspace import ConfigError, Workspace

TWEET_TOPIC_CATEGORIES = {
    "arts_&_culture",
    "business_&_entrepreneurs",
    "celebrity_&_pop_culture",
    "diaries_&_daily_life",
    "family",
    "fashion_&_style",
    "film_tv_&_video",
    "fitness_&_health",
    "food_&_dining",
    "gaming",
    "learning_&_educational",
    "music",
    "news_&_social_concern",
    "other_hobbies",
    "relationships",
    "science_&_technology",
    "sports",
    "travel_&_adventure",
    "youth_&_student_life",
}


@pytest.fixture(scope="module")
def world() -> World:
    return World(SimConfig(seed=2, users=5000))


def test_users_are_distinct_accounts(world: World) -> None:
    users = world.users
    officials = [u for u in users if u.persona == "official"]
    bots = [u for u in users if u.is_bot]
    assert len(users) == 5000 + len(bots) + len(officials)
    assert len(bots) == 50 and all(u.persona == "bot" for u in bots)
    assert len({u.id for u in users}) == len(users) and all(u.id.isdigit() for u in users)
    handles = [u.handle.lower() for u in users]
    assert len(set(handles)) == len(handles)
    assert all(re.fullmatch(r"\w{1,15}", h, re.ASCII) for h in handles)
    assert {u.persona for u in users} == {p.name for p in PERSONAS}


def test_hidden_interests_are_distributions_and_officials_follow_their_topic(world: World) -> None:
    for user in world.users:
        assert user.topics and abs(sum(user.topics.values()) - 1.0) < 0.025
        assert set(user.topics) <= {t.name for t in world.topics}
    # Most people care about a few topics, not all of them.
    top_two = np.sort(world.affinity, axis=1)[:, -2:].sum(axis=1)
    assert np.median(top_two) > 0.6
    for user in world.users:
        if user.entity is not None:
            topic = next(
                t for t in world.topics if any(user.entity in names for names in t.entities.values())
            )
            assert user.topics == {topic.name: 1.0}
            assert topic.handles[user.entity] == user.handle


def test_activity_is_zipf_mandelbrot(world: World) -> None:
    config = SimConfig()
    activity = np.sort(world.activity)[::-1]
    assert abs(activity.sum() - 1.0) < 1e-9
    ranks = np.arange(1, len(activity) + 1)
    expected = (ranks + config.activity_zipf_offset) ** -config.activity_zipf_exponent
    assert np.allclose(activity, expected / expected.sum())
    assert abs(sum(u.activity for u in world.users) - 1.0) < 1e-6


def test_topics_carry_known_answers(world: World) -> None:
    assert len(world.topics) == 20
    for topic in world.topics:
        assert topic.category in TWEET_TOPIC_CATEGORIES
        assert len(topic.hashtags) >= 5 and all(re.fullmatch(r"\w+", tag) for tag in topic.hashtags)
        assert sum(map(len, topic.entities.values())) >= 6
        assert set(topic.vocab) == {"en", "es", "fr", "de"}
        assert all(len(words) >= 15 for words in topic.vocab.values())
    assert world.topic("football").entities["team"][0] == "Riverton FC"


def test_posts_about_a_topic_use_its_hashtags(world: World) -> None:
    sim = Simulator(SimConfig(seed=2, users=5000))
    hits = total = 0
    for event, truth in itertools.islice(sim.labelled(), 20_000):
        post = event.post
        if truth is None or truth.kind not in ("original", "trend") or not post.hashtags:
            continue
        topic = sim.world.topic(truth.topic)
        names = {name.replace(" ", "") for group in topic.entities.values() for name in group}
        total += 1
        hits += any(
            tag in topic.hashtags or tag in names or tag.startswith(tuple(names)) for tag in post.hashtags
        )
    assert total > 1000 and hits / total > 0.8


def test_config_section_reads_from_roost_toml(ws: Workspace) -> None:
    ws.config_path.write_text(
        "[simulate]\nseed = 9\nstart = 2025-01-01T00:00:00Z\nlanguages = {en = 0.7, de = 0.3}\n"
    )
    config = ws.config("simulate", SimConfig)
    assert config.seed == 9 and config.languages == {"en": 0.7, "de": 0.3}
    assert config.start.year == 2025 and config.start.utcoffset().total_seconds() == 0
    assert World(msgspec.structs.replace(config, users=500)).languages == ["en", "de"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[simulate]\nseeed = 1\n", "seeed"),
        ("[simulate]\nposts_per_day = -5\n", "posts_per_day"),
        ("[simulate]\ndelete_rate = 1.5\n", "delete_rate"),
        ("[simulate]\nlanguages = {}\n", "languages"),
    ],
)
def test_bad_config_is_a_clear_error(ws: Workspace, toml: str, message: str) -> None:
    ws.config_path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        ws.config("simulate", SimConfig)


def test_languages_without_a_grammar_are_refused() -> None:
    with pytest.raises(ValueError, match="no grammar for language"):
        World(SimConfig(languages={"en": 0.5, "pt": 0.5}))
