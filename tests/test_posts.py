import datetime as dt

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.posts import Event, Metrics, Post, decode_event, decode_post, encode

texts = st.text(max_size=300)
ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=20)
times = st.datetimes(
    min_value=dt.datetime(2006, 1, 1), max_value=dt.datetime(2040, 1, 1), timezones=st.just(dt.UTC)
)
posts = st.builds(
    Post,
    id=ids,
    text=texts,
    author_id=ids,
    created_at=times,
    lang=st.none() | st.sampled_from(["en", "es", "fr", "de"]),
    reply_to=st.none() | ids,
    hashtags=st.lists(st.text(min_size=1, max_size=10), max_size=3),
    metrics=st.builds(Metrics, likes=st.integers(0, 10**9), views=st.integers(0, 10**12)),
)


@given(posts)
def test_post_json_round_trip_is_exact(post: Post) -> None:
    data = encode(post)
    again = decode_post(data)
    assert again == post
    assert encode(again) == data


@given(posts)
def test_event_round_trip(post: Post) -> None:
    event = Event.of_post(post)
    event.seq = 7
    assert decode_event(encode(event)) == event


def test_times_are_normalised_to_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    post = Post(id="1", text="x", author_id="a", created_at=dt.datetime(2024, 5, 1, 12, tzinfo=paris))
    assert post.created_at == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert b'"created_at":"2024-05-01T10:00:00Z"' in encode(post)
    parsed = decode_post(b'{"id":"1","text":"x","author_id":"a","created_at":"2024-05-01T12:00:00+02:00"}')
    assert parsed.created_at.tzinfo is dt.UTC


def test_naive_times_and_inconsistent_events_are_rejected() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_post(b'{"id":"1","text":"x","author_id":"a","created_at":"2024-05-01T12:00:00"}')
    with pytest.raises(msgspec.ValidationError, match="needs its post"):
        decode_event(b'{"type":"post","id":"1"}')
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type":"like","id":"1"}')
