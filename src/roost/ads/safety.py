"""Brand safety: which sensitive categories (roost.ads.categories) a post falls in, so that no ad is
placed next to a post in a category its campaign blocks.

Two signals, and a post is flagged when either fires:
- **Lexicons** for every category, in English, Spanish, French and German: words and phrases
  matched whole (`prefix*` matches any ending), case- and accent-insensitively, hashtags split into
  their words (#StormFlooding → storm flooding). Precise where the words are unambiguous, and
  written to stay quiet on the idioms social text is full of ("this song is killing me").
- **A trained classifier** (roost.ads.textclf: hashed n-grams, logistic regression) for the
  categories labelled data exists for. `train_from_real_posts` trains `obscenity` on OLID
  (OffensEval 2019: offensive = profanity, insults, threats) and `hate` on HatEval (SemEval 2019:
  hate against immigrants and women), on those datasets' train splits in ../shared/data/real_posts;
  each category's threshold is chosen on the validation split (best F1), and `evaluate` reports
  the test split against the lexicon alone. Saved in the ads store as the model "safety".
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from roost.ads.categories import CATEGORIES
from roost.ads.textclf import TextClassifier
from roost.search.text import hashtags_in, split_hashtag

MODEL_NAME = "safety"
TRAINED = {"obscenity": "offensive", "hate": "hate"}  # category -> real-posts task it learns from

LEXICONS: dict[str, list[str]] = {
    "adult": [
        "porn*",
        "xxx",
        "nsfw",
        "nudes",
        "naked pics",
        "onlyfans",
        "sex tape",
        "sexting",
        "camgirl*",
        "escort service*",
        "hentai",
        "erotic*",
        "stripper*",
        "blowjob*",
        "milf",
        "dick pic*",
        "horny",
        "porno*",
        "desnuda*",
        "desnudo*",
        "nackt*",
        "sexe",
        "salope*",
    ],
    "arms": [
        "gun*",
        "firearm*",
        "rifle*",
        "pistol*",
        "handgun*",
        "shotgun*",
        "ammo",
        "ammunition",
        "ar 15",
        "ak 47",
        "bullets",
        "assault weapon*",
        "gun show",
        "armas de fuego",
        "municion*",
        "fusil*",
        "arme a feu",
        "armes a feu",
        "waffe*",
        "gewehr*",
        "munition",
    ],
    "crime": [
        "murder*",
        "robbery",
        "robbed",
        "burglar*",
        "theft",
        "shoplift*",
        "kidnap*",
        "trafficking",
        "homicide*",
        "stabbing",
        "stabbed",
        "carjack*",
        "mugged",
        "arrested for",
        "charged with",
        "asesinato*",
        "asesino*",
        "secuestro*",
        "robo a mano armada",
        "meurtre*",
        "cambriolage*",
        "enlevement",
        "mord",
        "ermordet",
        "raububerfall*",
        "einbruch*",
    ],
    "violence": [
        "killed",
        "shot dead",
        "massacre*",
        "airstrike*",
        "air strike*",
        "bloodshed",
        "gunfire",
        "casualties",
        "death toll",
        "wounded",
        "corpse*",
        "dead bodies",
        "beheaded",
        "beheading*",
        "gore",
        "slaughtered",
        "war crime*",
        "genocide",
        "shooting spree",
        "mass shooting*",
        "muertos",
        "masacre*",
        "asesinados",
        "tues par",
        "massacre",
        "tote",
        "getotet",
        "blutbad",
    ],
    "piracy": [
        "torrent*",
        "pirated",
        "piracy",
        "warez",
        "keygen*",
        "cracked version",
        "crack download",
        "free movie download*",
        "watch free online",
        "123movies",
        "pirateria",
        "piratage",
        "raubkopie*",
    ],
    "hate": [
        "nigger*",
        "nigga*",
        "faggot*",
        "kike*",
        "chink*",
        "wetback*",
        "raghead*",
        "tranny",
        "towelhead*",
        "subhuman*",
        "white power",
        "white supremac*",
        "ethnic cleansing",
        "inferior race*",
        "go back to your country",
        "send them back",
        "invaders",
        "sudaca*",
        "maricon*",
        "bougnoule*",
        "kanake*",
        "untermensch*",
    ],
    "obscenity": [
        "fuck*",
        "motherfuck*",
        "shit",
        "shitty",
        "bullshit",
        "bitch*",
        "cunt*",
        "asshole*",
        "dickhead*",
        "wtf",
        "stfu",
        "puta*",
        "puto",
        "mierda",
        "joder",
        "gilipollas",
        "putain",
        "merde",
        "connard*",
        "encule*",
        "scheisse*",
        "scheiss",
        "arschloch*",
        "fick*",
    ],
    "drugs": [
        "cocaine",
        "heroin",
        "meth",
        "methamphetamine",
        "marijuana",
        "cannabis",
        "fentanyl",
        "opioid*",
        "lsd",
        "mdma",
        "ecstasy pills",
        "drug dealer*",
        "vape*",
        "vaping",
        "cigarette*",
        "tobacco",
        "e cig*",
        "beer*",
        "vodka",
        "whiskey",
        "whisky",
        "tequila",
        "booze",
        "drunk",
        "hangover",
        "cocaina",
        "marihuana",
        "drogas",
        "borracho*",
        "drogue*",
        "ivre",
        "biere*",
        "betrunken",
        "drogen",
        "bier",
    ],
    "spam": [
        "click here",
        "dm me for details",
        "make money from home",
        "work from home",
        "earn money fast",
        "follow rt to enter",
        "follow and rt",
        "limited time offer",
        "100 free",
        "act now",
        "crypto giveaway",
        "double your bitcoin",
        "free followers",
        "haz clic aqui",
        "gana dinero",
        "cliquez ici",
        "gagnez de l argent",
        "hier klicken",
        "geld verdienen",
    ],
    "terrorism": [
        "terroris*",
        "isis",
        "al qaeda",
        "jihadi*",
        "suicide bomb*",
        "car bomb*",
        "bombing*",
        "extremist*",
        "radicali*",
        "atentado*",
        "terrorista*",
        "attentat*",
        "anschlag*",
        "terroranschlag*",
    ],
    "social_issues": [
        "abortion*",
        "pro life",
        "pro choice",
        "gun control",
        "immigration",
        "death penalty",
        "euthanasia",
        "gay marriage",
        "same sex marriage",
        "transgender",
        "climate denial",
        "vaccine mandate*",
        "aborto",
        "inmigracion",
        "avortement",
        "abtreibung*",
        "sterbehilfe",
    ],
    "disasters": [
        "earthquake*",
        "tsunami*",
        "hurricane*",
        "tornado*",
        "wildfire*",
        "flood",
        "floods",
        "flooding",
        "flooded",
        "landslide*",
        "plane crash*",
        "derail*",
        "explosion*",
        "evacuat*",
        "storm surge",
        "cyclone*",
        "typhoon*",
        "state of emergency",
        "terremoto*",
        "inundacion*",
        "incendio forestal",
        "huracan*",
        "seisme*",
        "inondation*",
        "ouragan*",
        "erdbeben*",
        "uberschwemmung*",
        "hochwasser",
        "waldbrand*",
    ],
}
assert set(LEXICONS) == set(CATEGORIES)


def fold(text: str) -> str:
    """Lowercase, accents removed, apostrophes and hyphens as spaces: how lexicons and texts meet."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[-'’_/+]", " ", plain)


def _pattern(terms: list[str]) -> re.Pattern[str]:
    parts = []
    for term in terms:
        words = fold(term).split()
        last = words[-1]
        words[-1] = re.escape(last[:-1]) + r"\w*" if last.endswith("*") else re.escape(last)
        parts.append(r"\s+".join([re.escape(w) for w in words[:-1]] + [words[-1]]))
    return re.compile(r"(?<!\w)(?:" + "|".join(sorted(parts, key=len, reverse=True)) + r")(?!\w)")


class Lexicon:
    """Every category's word list, compiled to one pattern each."""

    def __init__(self, lexicons: dict[str, list[str]] = LEXICONS) -> None:
        self.patterns = {category: _pattern(terms) for category, terms in lexicons.items()}

    @staticmethod
    def prepare(text: str) -> str:
        words = [split_hashtag(tag) for tag in hashtags_in(text)]
        return fold(" ".join([text, *words]))

    def matches(self, text: str) -> dict[str, list[str]]:
        """category -> the words of `text` that put it there."""
        prepared = self.prepare(text)
        found = {}
        for category, pattern in self.patterns.items():
            hits = pattern.findall(prepared)
            if hits:
                found[category] = hits
        return found


class Verdict(msgspec.Struct):
    """Why a post is (or is not) in each category."""

    categories: list[str]
    lexicon: dict[str, list[str]]
    model: dict[str, float]


class SafetyClassifier:
    """Lexicons for every category, plus a trained model's categories when there is one."""

    def __init__(
        self, model: TextClassifier | None = None, *, threshold: float = 0.5, cache_size: int = 65536
    ):
        self.lexicon = Lexicon()
        self.model = model
        self.thresholds = {}
        if model is not None:
            tuned = model.meta.get("thresholds", {})
            self.thresholds = {label: float(tuned.get(label, threshold)) for label in model.labels}
        self._cache: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def load(cls, store, threshold: float = 0.5) -> SafetyClassifier:  # store: roost.ads.store.Store
        """The store's newest trained model, or the lexicons alone when none was trained."""
        saved = store.load_model(MODEL_NAME)
        return cls(TextClassifier.from_bytes(saved[1]) if saved else None, threshold=threshold)

    def categories(self, texts: Sequence[str]) -> list[frozenset[str]]:
        """The categories each text falls in (cached by text: posts repeat, and are asked about
        by every ad request next to them)."""
        out: list[frozenset[str] | None] = [self._cache.get(t) for t in texts]
        todo = [i for i, found in enumerate(out) if found is None]
        if todo:
            fresh = self._classify([texts[i] for i in todo])
            for i, found in zip(todo, fresh, strict=True):
                out[i] = found
                self._cache[texts[i]] = found
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    def _classify(self, texts: list[str]) -> list[frozenset[str]]:
        found = [set(self.lexicon.matches(t)) for t in texts]
        if self.model is not None:
            proba = self.model.predict_proba(texts)
            for j, label in enumerate(self.model.labels):
                for i in np.flatnonzero(proba[:, j] >= self.thresholds[label]):
                    found[i].add(label)
        return [frozenset(f) for f in found]

    def explain(self, text: str) -> Verdict:
        lexicon = self.lexicon.matches(text)
        model = {}
        if self.model is not None:
            proba = self.model.predict_proba([text])[0]
            model = {label: round(float(p), 4) for label, p in zip(self.model.labels, proba, strict=True)}
        flagged = sorted(self._classify([text])[0])
        return Verdict(flagged, lexicon, model)


# -- training and evaluation on the real posts --------------------------------------------------------
class RealPost(msgspec.Struct):
    id: str
    text: str
    task: str
    label: str | None
    split: str


def read_labelled(path: Path) -> list[RealPost]:
    """The real posts whose task trains a category (offensive, hate)."""
    decoder = msgspec.json.Decoder(RealPost)
    tasks = set(TRAINED.values())
    posts = []
    with open(path, "rb") as f:
        for line in f:
            post = decoder.decode(line)
            if post.task in tasks and post.label is not None:
                posts.append(post)
    return posts


def _positive(post: RealPost) -> int:
    return int(post.label in ("offensive", "hate"))


def _split(post: RealPost) -> str:
    return {"validation": "val", "trial": "val"}.get(post.split, post.split)


def train_from_real_posts(path: Path, *, n_features: int = 2**18) -> TextClassifier:
    """Train `obscenity` and `hate` on their tasks' train splits; tune each threshold on val."""
    posts = read_labelled(path)
    labels = list(TRAINED)
    train = [p for p in posts if _split(p) == "train"]
    targets = np.full((len(train), len(labels)), -1, np.int8)  # -1: this post is not labelled for it
    for i, post in enumerate(train):
        targets[i, labels.index(_category(post.task))] = _positive(post)
    model = TextClassifier.fit(
        [p.text for p in train],
        targets,
        labels,
        multilabel=True,
        n_features=n_features,
        class_weight="balanced",
        meta={"trained_on": str(path.name), "posts": len(train)},
    )
    thresholds = {}
    for label in labels:
        val = [p for p in posts if _split(p) == "val" and _category(p.task) == label]
        y = np.array([_positive(p) for p in val])
        proba = model.predict_proba([p.text for p in val])[:, labels.index(label)]
        thresholds[label] = _best_f1_threshold(y, proba)
    model.meta["thresholds"] = thresholds
    return model


def _category(task: str) -> str:
    return next(category for category, t in TRAINED.items() if t == task)


def _best_f1_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for threshold in np.linspace(0.05, 0.95, 91):
        f1 = _prf(y, proba >= threshold)[2]
        if f1 > best_f1:
            best, best_f1 = float(threshold), f1
    return round(best, 3)


def _prf(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    tp = int((predicted & (y == 1)).sum())
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int((y == 1).sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


class Quality(msgspec.Struct):
    category: str
    posts: int
    positives: int
    lexicon: dict[str, float]  # precision, recall, f1 of the lexicon alone
    combined: dict[str, float]  # of lexicon + model, as brand safety uses them


def evaluate(classifier: SafetyClassifier, path: Path) -> list[Quality]:
    """Precision, recall and F1 on the test split of each trained category's task: the lexicon
    alone against the lexicon with the model."""
    posts = read_labelled(path)
    lexicon = Lexicon()
    out = []
    for category, task in TRAINED.items():
        test = [p for p in posts if p.task == task and _split(p) == "test"]
        y = np.array([_positive(p) for p in test])
        lex = np.array([category in lexicon.matches(p.text) for p in test])
        both = np.array([category in found for found in classifier._classify([p.text for p in test])])
        out.append(
            Quality(
                category,
                len(test),
                int(y.sum()),
                dict(zip(("precision", "recall", "f1"), map(_round, _prf(y, lex)), strict=True)),
                dict(zip(("precision", "recall", "f1"), map(_round, _prf(y, both)), strict=True)),
            )
        )
    return out


def _round(x: float) -> float:
    return round(x, 4)
