"""From generated token ids back to text, one token at a time, stopping at stop strings.

roost's tokenizer is byte-level BPE: every token is a run of bytes, written in tokenizer.json as
printable characters by GPT-2's byte-to-character table. `TokenTable` reverses that table once, so
a token's bytes are one lookup; `TextStream` feeds those bytes through an incremental UTF-8 decoder
(a character split across tokens comes out whole, once its last byte arrives) and holds back any
tail that could still become a stop string.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

from tokenizers import Tokenizer


def byte_level_chars() -> dict[str, int]:
    """GPT-2's table, reversed: the character that stands for each byte → the byte. Printable
    Latin-1 bytes stand for themselves; the other 68 take the code points from 256 up, in order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {chr(b): b for b in printable}
    others = [b for b in range(256) if b not in set(printable)]
    table.update({chr(256 + i): b for i, b in enumerate(others)})
    return table


class TokenTable:
    """Every token's bytes and whether it is a special (control) token. A model's vocabulary may be
    larger than its tokenizer's (embeddings padded for speed): `size` covers it, and ids beyond the
    tokenizer are empty text."""

    def __init__(self, tokenizer: Tokenizer, size: int | None = None) -> None:
        chars = byte_level_chars()
        added = tokenizer.get_added_tokens_decoder()
        known = tokenizer.get_vocab_size()
        self.bytes: list[bytes] = []
        self.special: set[int] = {i for i, token in added.items() if token.special}
        for token_id in range(known):
            if token_id in added:  # added tokens (specials, placeholders) are stored as plain text
                self.bytes.append(added[token_id].content.encode())
                continue
            piece = tokenizer.id_to_token(token_id)
            if piece is None:
                raise ValueError(f"tokenizer has no token {token_id} below its vocabulary size {known}")
            try:
                self.bytes.append(bytes(chars[c] for c in piece))
            except KeyError as exc:
                raise ValueError(
                    f"token {piece!r} is not byte-level BPE; roost serves byte-level tokenizers"
                ) from exc
        self.bytes += [b""] * max(0, (size or known) - known)

    def text(self, token_id: int) -> str:
        """The token on its own, as logprobs show it (a partial UTF-8 character shows as U+FFFD)."""
        return self.bytes[token_id].decode("utf-8", errors="replace")

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of whole token sequences, special tokens left out."""
        return b"".join(self.bytes[t] for t in token_ids if t not in self.special).decode(
            "utf-8", errors="replace"
        )


class TextStream:
    """One choice's text as its tokens arrive: `push` returns what may be shown now; `stopped` turns
    true once a stop string appears (the text ends before it); `flush` returns the rest at the end."""

    def __init__(self, table: TokenTable, stop: Sequence[str] = ()) -> None:
        self.table = table
        self.stop = tuple(stop)
        self._longest_stop = max((len(s) for s in self.stop), default=0)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self.stopped = False

    def push(self, token_id: int) -> str:
        if self.stopped or token_id in self.table.special:
            return ""
        text = self._held + self._utf8.decode(self.table.bytes[token_id])
        if not self.stop:
            return text
        cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped, self._held = True, ""
            return text[:cut]
        hold = self._stop_prefix_len(text)
        self._held = text[len(text) - hold :]
        return text[: len(text) - hold]

    def flush(self) -> str:
        if self.stopped:
            return ""
        text, self._held = self._held + self._utf8.decode(b"", final=True), ""
        return text

    def _stop_prefix_len(self, text: str) -> int:
        """Length of the longest tail of `text` that some stop string starts with."""
        for length in range(min(len(text), self._longest_stop - 1), 0, -1):
            tail = text[-length:]
            if any(s.startswith(tail) for s in self.stop):
                return length
        return 0
