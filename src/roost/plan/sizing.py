"""How big a model, and how many tokens, for a compute budget — and for the data the firehose has.

Compute-optimal: Chinchilla's Approach 1 (Hoffmann et al. 2022): N_opt ∝ C^a and D_opt ∝ C^b,
a ≈ b ≈ 0.50, about 20 tokens per parameter. The constants below are a least-squares fit in log
space to the paper's Table 3 (parameters, FLOPs, tokens; `fit_approach1` reproduces them from the
table), kept at full precision: rounded to a = b = 0.5 the tokens per parameter drift from the
table by several percent at its ends. Approach 3's published, rounded constants imply ~93 tokens
per parameter at Chinchilla's compute, inconsistent with Approaches 1 and 2, so they are offered
(`approach3_optimum`) only for comparison.

Data-constrained: the firehose supplies posts/day × tokens/post × days × (1 − curation loss)
unique tokens. Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models") find up to ~4
epochs of repeated data nearly as good as fresh data; past that, returns decay (effective data
U + U·R*·(1 − e^(−R/R*)) for R repeats, R* = 15.4). When compute wants more tokens than 4 epochs
hold, the planner trains on 4 epochs and spends the rest of the compute on parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Approach 1, fitted to Table 3 (natural logs): N_opt = e^PARAMS_LOG_COEF · C^PARAMS_EXPONENT,
# D_opt = e^TOKENS_LOG_COEF · C^TOKENS_EXPONENT (exponents sum to 1, as C = 6ND requires).
PARAMS_EXPONENT = 0.4980986857771881
PARAMS_LOG_COEF = -2.3110313392394963
TOKENS_EXPONENT = 0.5018542648378526
TOKENS_LOG_COEF = 0.5283222775837104

MAX_USEFUL_EPOCHS = 4.0  # Muennighoff et al. 2023: ~4 epochs cost almost nothing in loss
REPEAT_DECAY = 15.4  # their R*_D: repeats past which repeated data stops being worth much


@dataclass(frozen=True)
class PowerLaws:
    params_exponent: float
    params_log_coef: float
    tokens_exponent: float
    tokens_log_coef: float


APPROACH1 = PowerLaws(PARAMS_EXPONENT, PARAMS_LOG_COEF, TOKENS_EXPONENT, TOKENS_LOG_COEF)


def fit_approach1(params: Sequence[float], flops: Sequence[float], tokens: Sequence[float]) -> PowerLaws:
    """Least-squares fit of log N and log D on log C (how the constants above were made)."""

    def line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
        lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
        mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
        slope = sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / sum((x - mx) ** 2 for x in lx)
        return slope, my - slope * mx

    a, log_g = line(flops, params)
    b, log_k = line(flops, tokens)
    return PowerLaws(a, log_g, b, log_k)


def optimal_params(compute: float, laws: PowerLaws = APPROACH1) -> float:
    return math.exp(laws.params_log_coef) * compute**laws.params_exponent


def optimal_tokens(compute: float, laws: PowerLaws = APPROACH1) -> float:
    return math.exp(laws.tokens_log_coef) * compute**laws.tokens_exponent


def optimal_compute_for(params: float, laws: PowerLaws = APPROACH1) -> float:
    """The budget for which a model of `params` parameters is compute-optimal."""
    return math.exp((math.log(params) - laws.params_log_coef) / laws.params_exponent)


def approach3_optimum(
    compute: float, e: float, a: float, b: float, alpha: float, beta: float
) -> tuple[float, float]:
    """Minimum of L = E + A/N^α + B/D^β under C = 6ND (Hoffmann et al. eq. 4): N and D."""
    del e  # the irreducible loss shifts L, not where its minimum is
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    params = g * (compute / 6) ** (beta / (alpha + beta))
    return params, compute / (6 * params)


def unique_tokens(posts_per_day: float, tokens_per_post: float, days: float, curation_loss: float) -> float:
    """Tokens the firehose yields after curation drops `curation_loss` (a fraction) of them."""
    if not 0 <= curation_loss < 1:
        raise ValueError(f"curation loss is a fraction in [0, 1), got {curation_loss}")
    return posts_per_day * tokens_per_post * days * (1 - curation_loss)


def effective_tokens(unique: float, epochs: float) -> float:
    """Muennighoff et al.'s effective data: what `epochs` passes over `unique` tokens are worth."""
    repeats = max(0.0, epochs - 1)
    return unique + unique * REPEAT_DECAY * (1 - math.exp(-repeats / REPEAT_DECAY))


@dataclass(frozen=True)
class Sizing:
    compute: float  # FLOPs, C = 6ND
    params: float
    tokens: float
    compute_optimal_params: float
    compute_optimal_tokens: float
    unique_tokens: float | None  # what the data offers, when the run is data-constrained
    epochs: float | None
    effective_tokens: float | None

    @property
    def data_constrained(self) -> bool:
        return self.unique_tokens is not None and self.tokens < self.compute_optimal_tokens


def size_for_compute(compute: float, unique: float | None = None) -> Sizing:
    """Compute-optimal N and D for `compute`, capped at MAX_USEFUL_EPOCHS over `unique` tokens."""
    n_opt, d_opt = optimal_params(compute), optimal_tokens(compute)
    if unique is None:
        return Sizing(compute, n_opt, d_opt, n_opt, d_opt, None, None, None)
    tokens = min(d_opt, MAX_USEFUL_EPOCHS * unique)
    params = compute / (6 * tokens) if tokens < d_opt else n_opt
    epochs = tokens / unique
    return Sizing(compute, params, tokens, n_opt, d_opt, unique, epochs, effective_tokens(unique, epochs))
