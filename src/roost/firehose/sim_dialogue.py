"""How simulated conversations go: which dialogue act answers which, who answers, and how much.

A reply's act is drawn from its parent's row of `TRANSITIONS` (a question gets answers, an
answer gets thanks or a follow-up, a disagreement gets a counter or a concession), its stance
follows from the act (agreeing keeps the parent's stance, disagreeing flips it, "no" is negative),
and `BACK` says how often the reply comes from the person the parent was answering, which is what
makes threads go back and forth between two people, several turns deep.
"""

from __future__ import annotations

import bisect

#: Acts an original post can have.
ORIGINAL_ACTS = ("opinion", "question", "ask_rec", "news", "experience", "promo", "spam")

#: parent act -> (reply act, weight). Acts absent from the table get no replies.
TRANSITIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "opinion": (("agree", 0.33), ("disagree", 0.3), ("followup", 0.17), ("more", 0.12), ("react", 0.08)),
    "question": (("answer_yes", 0.42), ("answer_no", 0.34), ("followup", 0.1), ("recommend", 0.14)),
    "ask_rec": (("recommend", 0.8), ("followup", 0.2)),
    "news": (("react", 0.55), ("disagree", 0.12), ("followup", 0.15), ("agree", 0.1), ("more", 0.08)),
    "experience": (("react", 0.45), ("question", 0.3), ("agree", 0.25)),
    "promo": (("react", 0.35), ("question", 0.4), ("disagree", 0.25)),
    "answer_yes": (("thanks", 0.5), ("followup", 0.3), ("disagree", 0.2)),
    "answer_no": (("thanks", 0.45), ("followup", 0.3), ("disagree", 0.25)),
    "recommend": (("thanks", 0.6), ("followup", 0.2), ("disagree", 0.2)),
    "agree": (("agree", 0.5), ("more", 0.2), ("disagree", 0.3)),
    "disagree": (("disagree", 0.45), ("concede", 0.3), ("followup", 0.25)),
    "followup": (("explain", 0.75), ("answer_yes", 0.1), ("answer_no", 0.15)),
    "explain": (("agree", 0.35), ("disagree", 0.35), ("thanks", 0.3)),
    "thanks": (("welcome", 1.0),),
    "concede": (("thanks", 0.5), ("agree", 0.5)),
    "react": (("agree", 0.5), ("disagree", 0.3), ("followup", 0.2)),
    "more": (("agree", 0.4), ("disagree", 0.35), ("followup", 0.25)),
    "quote": (("agree", 0.4), ("disagree", 0.4), ("followup", 0.2)),
}

#: How many replies a post of each act draws, relative to an opinion.
REPLY_FACTOR = {
    "opinion": 1.0,
    "question": 2.0,
    "ask_rec": 2.2,
    "news": 0.9,
    "experience": 0.6,
    "promo": 0.5,
    "spam": 0.0,
    "answer_yes": 0.8,
    "answer_no": 0.9,
    "recommend": 0.8,
    "agree": 0.45,
    "disagree": 1.1,
    "followup": 1.4,
    "explain": 0.7,
    "thanks": 0.35,
    "welcome": 0.0,
    "concede": 0.3,
    "react": 0.35,
    "more": 0.5,
    "quote": 0.7,
}

#: How often a reply of this act comes from the author of the post its parent answered.
#: ("more" is the parent's own author continuing; see `SELF_ACTS`.)
BACK = {
    "thanks": 0.95,
    "welcome": 0.95,
    "explain": 0.9,
    "concede": 0.85,
    "disagree": 0.55,
    "agree": 0.3,
    "followup": 0.3,
    "answer_yes": 0.05,
    "answer_no": 0.05,
    "recommend": 0.05,
    "react": 0.1,
    "question": 0.05,
}
SELF_ACTS = frozenset({"more"})

#: How often an original of this act is reposted / quoted, relative to the configured rates.
REPOST_FACTOR = {
    "news": 1.6,
    "opinion": 1.0,
    "experience": 0.5,
    "question": 0.3,
    "ask_rec": 0.2,
    "promo": 0.6,
}
QUOTE_FACTOR = {"news": 1.5, "opinion": 1.3, "experience": 0.4, "question": 0.4, "promo": 0.5}

#: Chance that an original of this act takes a positive stance.
POSITIVE_SHARE = {
    "opinion": 0.55,
    "question": 0.5,
    "ask_rec": 1.0,
    "news": 0.5,
    "experience": 0.65,
    "promo": 1.0,
    "spam": 1.0,
}


def _cumulative(row: tuple[tuple[str, float], ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    total = sum(w for _, w in row)
    acc, cum = 0.0, []
    for _, w in row:
        acc += w / total
        cum.append(acc)
    return tuple(a for a, _ in row), tuple(cum)


_CUMULATIVE = {act: _cumulative(row) for act, row in TRANSITIONS.items()}


def reply_act(parent_act: str, u: float) -> str:
    """The act of a reply to a post of `parent_act`, for a uniform draw `u`."""
    acts, cum = _CUMULATIVE[parent_act]
    return acts[min(bisect.bisect(cum, u), len(acts) - 1)]


def reply_stance(act: str, parent_stance: int, u: float) -> int:
    """The stance a reply of `act` takes, given its parent's (`u` is a uniform draw)."""
    if act in _KEEPS_STANCE:
        return parent_stance
    if act == "disagree":
        return -parent_stance
    if act == "answer_no":
        return -1
    if act in _TAKES_A_SIDE:
        return 1 if u < 0.6 else -1
    return 1  # answer_yes, recommend, thanks, welcome


_KEEPS_STANCE = frozenset({"agree", "followup", "explain", "more", "concede"})
_TAKES_A_SIDE = frozenset({"react", "quote", "question"})
