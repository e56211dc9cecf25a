import datetime as dt

from roost.posts import Event, Post
from roost.rawstore import RawStore


def _post(i: int, text: str = "hello") -> Post:
    return Post(id=str(i), text=text, author_id="u", created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def test_upsert_is_idempotent_and_file_unchanged(tmp_path) -> None:
    store = RawStore(tmp_path / "raw.db")
    assert store.add_posts([_post(1), _post(2)]).posts == 2
    assert store.add_posts([_post(1), _post(2)]).posts == 0
    assert store.count() == 2
    assert store.add_posts([_post(1, "edited")]).posts == 1
    assert store.get("1").text == "edited"


def test_delete_tombstones_block_later_arrivals(tmp_path) -> None:
    store = RawStore(tmp_path / "raw.db")
    store.apply([Event.of_post(_post(1)), Event.of_delete("1"), Event.of_delete("9")])
    assert store.get("1") is None and store.is_deleted("1")
    store.add_posts([_post(9)])
    assert store.get("9") is None
    assert store.count() == 0 and store.count_deletes() == 2


def test_batch_and_cursor_commit_together(tmp_path) -> None:
    store = RawStore(tmp_path / "raw.db")
    events = [Event.of_post(_post(i)) for i in range(3)]
    for seq, event in enumerate(events):
        event.seq = seq
    store.apply(events, cursor=("firehose", 2))
    assert store.cursor("firehose") == 2 and store.cursor("other") is None
    reopened = RawStore(tmp_path / "raw.db")
    assert [p.id for p in reopened.iter_posts()] == ["0", "1", "2"]
    assert reopened.cursor("firehose") == 2
