"""One choice's output as the engine's tokens arrive: text deltas cut at stop strings, the token ids,
their logprobs and the finish reason. Blocking `generate` and the HTTP layer both assemble choices
here, on the caller's side, so detokenizing never runs on the engine thread."""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.serve.detokenize import TextStream, TokenTable
from roost.serve.sampling import TokenLogprob


@dataclass(slots=True)
class ChoiceDelta:
    """What one engine output added to a choice."""

    text: str
    token_id: int
    logprob: TokenLogprob | None
    finish_reason: str | None


@dataclass
class ChoiceAssembler:
    table: TokenTable
    stop: tuple[str, ...] = ()
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    finish_reason: str | None = None

    def __post_init__(self) -> None:
        self._text = TextStream(self.table, self.stop)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def stopped_by_text(self) -> bool:
        """A stop string ended the choice: the engine, which does not see text, must be told."""
        return self._text.stopped

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def add(
        self, token_id: int, logprob: TokenLogprob | None, finish_reason: str | None
    ) -> ChoiceDelta | None:
        """Take the engine's next token; None once the choice has ended (tokens the engine made
        before it heard of a stop string)."""
        if self.done:
            return None
        self.token_ids.append(token_id)
        if logprob is not None:
            self.logprobs.append(logprob)
        text = self._text.push(token_id)
        if self._text.stopped:
            self.finish_reason = "stop"
        elif finish_reason is not None:
            self.finish_reason = finish_reason
            text += self._text.flush()
        self.pieces.append(text)
        return ChoiceDelta(text, token_id, logprob, self.finish_reason)
