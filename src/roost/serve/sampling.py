"""Choosing the next token of every running sequence from one batch of logits, each by its own rules.

Order, per sequence: penalties (repetition over prompt and output; presence and frequency over the
output, as OpenAI defines them) and logit_bias on the raw logits, then temperature, top-k, top-p and
min-p. Temperature 0 is greedy. Sampling draws with the exponential race (argmax of p / Exp(1) noise,
which picks token i with probability p_i); a sequence with a seed draws its noise from its own
generator, V numbers a step, so its output is the same whatever else shares the batch.
Logprobs are of the model's own distribution (before penalties and temperature), as vLLM reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import torch

# Below this temperature a request is greedy (dividing by it would overflow to a one-hot anyway).
GREEDY_BELOW = 1e-5
MAX_TOP_LOGPROBS = 20


class SamplingParams(msgspec.Struct, frozen=True, kw_only=True):
    """How one request's tokens are chosen and when it stops."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the prompt or output
    logit_bias: dict[int, float] = msgspec.field(default_factory=dict)
    stop: tuple[str, ...] = ()  # stop strings: the text ends before the first one (not included)
    stop_token_ids: tuple[int, ...] = ()  # besides the model's own end tokens
    ignore_eos: bool = False  # keep going past the model's end tokens (benchmarks)
    n: int = 1  # independent completions of the one prompt
    seed: int | None = None
    logprobs: int | None = None  # None: none; k: the chosen token's logprob and the top k alternatives
    prompt_logprobs: int | None = None  # the same for each prompt token (completions' echo)

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW

    def check(self, vocab_size: int) -> None:
        """Raise ValueError, naming the field, for a value no sampler can honour."""
        rules = [
            (self.max_tokens >= 1, "max_tokens must be at least 1"),
            (self.temperature >= 0.0, "temperature must not be negative"),
            (0.0 < self.top_p <= 1.0, "top_p must be in (0, 1]"),
            (self.top_k >= 0, "top_k must not be negative (0 turns it off)"),
            (0.0 <= self.min_p <= 1.0, "min_p must be in [0, 1]"),
            (self.repetition_penalty > 0.0, "repetition_penalty must be positive"),
            (self.n >= 1, "n must be at least 1"),
            (
                all(0 <= t < vocab_size for t in self.logit_bias),
                f"logit_bias token ids must be < {vocab_size}",
            ),
            (all(0 <= t < vocab_size for t in self.stop_token_ids), f"stop_token_ids must be < {vocab_size}"),
            (all(self.stop), "stop strings must not be empty"),
        ]
        for k in (self.logprobs, self.prompt_logprobs):
            rules.append(
                (k is None or 0 <= k <= MAX_TOP_LOGPROBS, f"logprobs must be in 0..{MAX_TOP_LOGPROBS}")
            )
        for ok, message in rules:
            if not ok:
                raise ValueError(message)


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A chosen token's log-probability and the `k` most likely tokens at that step."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...]


class SequenceSampler:
    """One sequence's sampling state across steps: its random stream and the tokens it has made."""

    def __init__(
        self,
        params: SamplingParams,
        prompt_ids: Sequence[int],
        index: int,
        vocab_size: int,
        device: torch.device,
    ) -> None:
        self.params = params
        self.generator: torch.Generator | None = None
        if params.seed is not None and not params.greedy:
            # Choice i of a seeded request gets seed + i: reproducible, and the n choices differ.
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed((params.seed + index) % (1 << 64))
        counts = params.presence_penalty or params.frequency_penalty or params.repetition_penalty != 1.0
        self.counts_V = torch.zeros(vocab_size, device=device) if counts else None
        self.prompt_mask_V: torch.Tensor | None = None
        if params.repetition_penalty != 1.0:
            self.prompt_mask_V = torch.zeros(vocab_size, dtype=torch.bool, device=device)
            self.prompt_mask_V[torch.tensor(list(prompt_ids), dtype=torch.long, device=device)] = True
        self.bias: tuple[torch.Tensor, torch.Tensor] | None = None
        if params.logit_bias:
            ids = torch.tensor(list(params.logit_bias), dtype=torch.long, device=device)
            values = torch.tensor(list(params.logit_bias.values()), dtype=torch.float32, device=device)
            self.bias = ids, values

    @property
    def adjusts_logits(self) -> bool:
        return self.counts_V is not None or self.bias is not None

    def adjust(self, logits_V: torch.Tensor) -> None:
        """Penalties and bias, in place on this sequence's row of float32 logits."""
        p = self.params
        if self.counts_V is not None:
            if p.repetition_penalty != 1.0:
                seen = self.counts_V > 0
                if self.prompt_mask_V is not None:
                    seen |= self.prompt_mask_V
                penalised = torch.where(
                    logits_V > 0, logits_V / p.repetition_penalty, logits_V * p.repetition_penalty
                )
                logits_V.copy_(torch.where(seen, penalised, logits_V))
            if p.frequency_penalty:
                logits_V -= p.frequency_penalty * self.counts_V
            if p.presence_penalty:
                logits_V -= p.presence_penalty * (self.counts_V > 0).float()
        if self.bias is not None:
            logits_V.index_add_(0, self.bias[0], self.bias[1])

    def observe(self, token: int) -> None:
        if self.counts_V is not None:
            self.counts_V[token] += 1


def sample(
    logits_BV: torch.Tensor, samplers: Sequence[SequenceSampler], generator: torch.Generator | None = None
) -> tuple[list[int], list[TokenLogprob | None]]:
    """The next token of each row, and its logprobs where that row's request asked for them.
    `generator` draws the noise of rows without a seed of their own."""
    if all(s.params.greedy and not s.adjusts_logits and s.params.logprobs is None for s in samplers):
        tokens = logits_BV.argmax(dim=-1).tolist()  # the common case: one kernel, one sync, no state
        return tokens, [None] * len(tokens)
    logits_BV = logits_BV.float()
    want = [s.params.logprobs for s in samplers]
    logprobs_BV = torch.log_softmax(logits_BV, dim=-1) if any(k is not None for k in want) else None
    for row, s in enumerate(samplers):
        if s.adjusts_logits:
            s.adjust(logits_BV[row])
    tokens_B = logits_BV.argmax(dim=-1)
    sampled = [row for row, s in enumerate(samplers) if not s.params.greedy]
    if sampled:
        rows = torch.tensor(sampled, device=logits_BV.device)
        tokens_B[rows] = _draw(logits_BV[rows], [samplers[r] for r in sampled], generator)
    tokens = tokens_B.tolist()
    for token, s in zip(tokens, samplers, strict=True):
        s.observe(token)
    if logprobs_BV is None:
        return tokens, [None] * len(tokens)
    return tokens, _gather_logprobs(logprobs_BV, tokens_B, tokens, want)


def _draw(
    logits_RV: torch.Tensor, samplers: Sequence[SequenceSampler], generator: torch.Generator | None
) -> torch.Tensor:
    """Sample one token per row of non-greedy sequences."""
    device = logits_RV.device
    params = [s.params for s in samplers]
    x_RV = logits_RV / torch.tensor([p.temperature for p in params], device=device)[:, None]
    V = x_RV.shape[-1]
    if any(p.top_k or p.top_p < 1.0 for p in params):
        sorted_RV, order_RV = x_RV.sort(dim=-1, descending=True)
        top_k = torch.tensor([p.top_k or V for p in params], device=device)
        sorted_RV.masked_fill_(torch.arange(V, device=device)[None, :] >= top_k[:, None], float("-inf"))
        top_p = torch.tensor([p.top_p for p in params], device=device)
        probs_RV = sorted_RV.softmax(dim=-1)
        # drop a token once the tokens before it already cover top_p (the first always stays)
        sorted_RV.masked_fill_(probs_RV.cumsum(dim=-1) - probs_RV > top_p[:, None], float("-inf"))
        x_RV = torch.full_like(x_RV, float("-inf")).scatter_(-1, order_RV, sorted_RV)
    probs_RV = x_RV.softmax(dim=-1)
    if any(p.min_p for p in params):
        min_p = torch.tensor([p.min_p for p in params], device=device)
        probs_RV = probs_RV.masked_fill(probs_RV < min_p[:, None] * probs_RV.amax(dim=-1, keepdim=True), 0.0)
    noise_RV = torch.empty_like(probs_RV)
    shared = [r for r, s in enumerate(samplers) if s.generator is None]
    if shared:
        draws = torch.empty((len(shared), V), device=device).exponential_(generator=generator)
        noise_RV[torch.tensor(shared, device=device)] = draws
    for r, s in enumerate(samplers):
        if s.generator is not None:
            noise_RV[r].exponential_(generator=s.generator)
    return (probs_RV / noise_RV).argmax(dim=-1)


def _gather_logprobs(
    logprobs_BV: torch.Tensor, tokens_B: torch.Tensor, tokens: Sequence[int], want: Sequence[int | None]
) -> list[TokenLogprob | None]:
    chosen = logprobs_BV.gather(1, tokens_B[:, None])[:, 0].tolist()
    k_max = max(k or 0 for k in want)
    top_values, top_ids = ([], [])
    if k_max:
        values, ids = logprobs_BV.topk(k_max, dim=-1)
        top_values, top_ids = values.tolist(), ids.tolist()
    result: list[TokenLogprob | None] = []
    for row, k in enumerate(want):
        if k is None:
            result.append(None)
            continue
        top = tuple(zip(top_ids[row][:k], top_values[row][:k], strict=True)) if k else ()
        result.append(TokenLogprob(tokens[row], chosen[row], top))
    return result


def prompt_logprobs(logits_TV: torch.Tensor, prompt_ids: Sequence[int], k: int) -> list[TokenLogprob | None]:
    """Each prompt token's logprob given the tokens before it (None for the first, which has none)."""
    logprobs_TV = torch.log_softmax(logits_TV[:-1].float(), dim=-1)
    targets = list(prompt_ids[1:])
    targets_T = torch.tensor(targets, dtype=torch.long, device=logits_TV.device)
    return [None, *_gather_logprobs(logprobs_TV, targets_T, targets, [k] * len(targets))]
