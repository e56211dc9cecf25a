"""Hand-made posts for curation tests: known duplicates, threads, spam and languages, seeded."""

from __future__ import annotations

import datetime as dt
import random

from roost.posts import Post
from roost.rawstore import RawStore
from roost.workspace import Workspace

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
BASE_ID = 1_000_000_000

_SENTENCES = {
    "en": (
        "the game last night was amazing and i still cannot believe how they won after being down "
        "by two goals coffee this morning tastes better than usual maybe because the sun is out "
        "finally reading a new book about space travel and it is wonderful my cat keeps stealing "
        "socks from the laundry basket every single day traffic downtown is terrible again"
    ),
    "es": (
        "el partido de anoche fue increíble y todavía no puedo creer cómo ganaron después de ir "
        "perdiendo por dos goles el café de esta mañana sabe mejor que nunca quizá porque por fin "
        "salió el sol estoy leyendo un libro nuevo sobre viajes espaciales y es maravilloso"
    ),
    "fr": (
        "le match d'hier soir était incroyable et je n'arrive toujours pas à croire qu'ils aient "
        "gagné après avoir été menés de deux buts le café de ce matin est meilleur que d'habitude "
        "peut-être parce que le soleil est enfin sorti je lis un nouveau livre sur les voyages"
    ),
    "de": (
        "das spiel gestern abend war unglaublich und ich kann immer noch nicht glauben wie sie "
        "nach zwei toren rückstand gewonnen haben der kaffee heute morgen schmeckt besser als sonst "
        "vielleicht weil endlich die sonne scheint ich lese gerade ein neues buch über raumfahrt"
    ),
}
WORDS = {lang: sentence.split() for lang, sentence in _SENTENCES.items()}


def make_post(i: int, text: str, *, author: str = "alice", lang: str | None = "en", **fields: object) -> Post:
    """Post number i: ids grow with i (as snowflake ids grow with time), one minute apart."""
    return Post(
        id=str(BASE_ID + i),
        text=text,
        author_id=author,
        created_at=T0 + dt.timedelta(minutes=i),
        lang=lang,
        source="test",
        **fields,
    )


def chatter(n: int, seed: int = 0, start: int = 0) -> list[Post]:
    """n ordinary posts: random sentences in four languages, some replies, from 300 authors."""
    rng = random.Random(seed)
    posts: list[Post] = []
    for k in range(n):
        i = start + k
        lang = rng.choice(["en", "en", "es", "fr", "de"])
        words = WORDS[lang]
        text = " ".join(rng.choice(words) for _ in range(rng.randint(6, 14)))
        if rng.random() < 0.3:
            text += f" {rng.randint(2, 999)} {rng.choice(words)} {rng.choice(words)}"
        if rng.random() < 0.1:
            text += " #" + rng.choice(words)
        reply_to = posts[rng.randrange(len(posts))].id if posts and rng.random() < 0.25 else None
        posts.append(make_post(i, text, author=f"user{rng.randrange(300)}", lang=lang, reply_to=reply_to))
    return posts


def store_posts(ws: Workspace, posts: list[Post]) -> None:
    with RawStore.in_dir(ws.raw_dir) as store:
        store.add_posts(posts)


def delete_posts(ws: Workspace, ids: list[str]) -> None:
    from roost.posts import Event

    with RawStore.in_dir(ws.raw_dir) as store:
        store.apply([Event.of_delete(i) for i in ids])


def small_config(ws: Workspace, chunk_rows: int = 500, extra: str = "") -> None:
    """Small chunks (several tasks per stage) and a small vocabulary (fast tokenizer training)."""
    tokenizer = "[curate.tokenizer]\nvocab_size = 512\nval_fraction = 0.1\n"
    ws.config_path.write_text(f"[curate]\nchunk_rows = {chunk_rows}\n{extra}\n{tokenizer}")
