"""Token ids back to text: byte-exact, whole characters only, cut before stop strings."""

from __future__ import annotations

import pytest
from tokenizers import pre_tokenizers

from roost.serve.detokenize import TextStream, TokenTable, byte_level_chars
from roost.tokenizer import END_OF_TURN, special_id, train_tokenizer
from tests.train.fixtures import make_posts


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([*make_posts(300, seed=2), "naïve café — 日本語 🙂🎉"], vocab_size=400)


def test_the_byte_table_is_the_tokenizers_alphabet() -> None:
    assert set(byte_level_chars()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert sorted(byte_level_chars().values()) == list(range(256))


def test_decoding_matches_the_tokenizer(tokenizer) -> None:
    table = TokenTable(tokenizer)
    for text in ["the cat loves pizza 🙂", "naïve café — 日本語 🎉 @user http", "a\n\tb  c"]:
        ids = tokenizer.encode(text).ids
        assert table.decode(ids) == tokenizer.decode(ids) == text


def test_a_stream_emits_whole_characters_only(tokenizer) -> None:
    table = TokenTable(tokenizer)
    ids = tokenizer.encode("🎉日本").ids
    stream = TextStream(table)
    pieces = [stream.push(t) for t in ids]
    assert "".join(pieces) + stream.flush() == "🎉日本"
    assert all("\ufffd" not in p for p in pieces)
    assert len(ids) > 3  # the emoji and the kanji really were split across byte tokens


def test_stop_strings_cut_the_text_and_hold_back_what_may_become_one(tokenizer) -> None:
    table = TokenTable(tokenizer)
    ids = tokenizer.encode("the cat loves the fence today").ids
    stream = TextStream(table, stop=("the fen",))
    out = ""
    for t in ids:
        out += stream.push(t)
        assert not out.endswith("the")  # "the" might begin "the fen": held back until it cannot
        if stream.stopped:
            break
    assert stream.stopped
    assert out == "the cat loves "


def test_specials_are_left_out_of_text(tokenizer) -> None:
    table = TokenTable(tokenizer)
    eot = special_id(tokenizer, END_OF_TURN)
    stream = TextStream(table)
    assert stream.push(eot) == ""
    assert table.text(eot) == END_OF_TURN  # but logprobs still name them
