"""Deterministic firehose events for the tests: posts in several languages, reposts, hashtags,
and deletes of earlier posts, from a seed."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from roost.posts import Event, Post

LANGS = ("en", "en", "en", "es", "ja", "pt", "de")
WORDS = ("sun", "rain", "coffee", "climate", "train", "music", "goal", "code", "city", "river")
TAGS = ("news", "climate", "music", "sports", "tech")
_EPOCH = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def make_events(seed: int = 0, *, start: int = 0) -> Iterator[Event]:
    """An endless stream: about 1 in 12 events deletes a recent post, 1 in 8 posts is a repost."""
    rng = random.Random(seed * 1_000_003 + start)
    recent: list[str] = []
    i = start
    while True:
        if recent and rng.random() < 1 / 12:
            yield Event.of_delete(recent.pop(rng.randrange(len(recent))))
            continue
        post_id = f"s{seed}-{i}"
        i += 1
        tags = rng.sample(TAGS, rng.randrange(3))
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 16)))
        text += "".join(f" #{t}" for t in tags)
        reposted = recent[-1] if recent and rng.random() < 1 / 8 else None
        yield Event.of_post(
            Post(
                id=post_id,
                text=text,
                author_id=f"u{rng.randrange(500)}",
                created_at=_EPOCH + dt.timedelta(milliseconds=17 * i),
                lang=rng.choice(LANGS) if rng.random() > 0.05 else None,
                repost_of=reposted,
                hashtags=tags,
                source="test",
            )
        )
        recent = [*recent[-50:], post_id]
