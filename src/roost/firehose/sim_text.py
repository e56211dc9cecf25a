"""Compositional post text for the simulator: phrase pieces per language, combined by a small grammar.

A language's pieces (in `simdata/<lang>.py`) are compiled once into `LangGrammar`; a `Composer`
then realizes a post from a dialogue act ("opinion", "answer_no", ...), a topic, a focus item and a
stance, keeping the hashtags, mentions and links it writes so the Post's entity fields agree with
its text by construction.

Piece syntax, shared by every language file:
  `{F}`, `{F.acc}`, `{F.of}`, ...   the post's focus item in a grammatical form (see `Item`)
  `{P}`, `{R}`, `{when}`, `{price}` a slot filled from another list or a number formatter
  `[is|are]`                        agreement with the focus: singular | plural
  `[o|a|os|as]`                     agreement with the focus: masc sg | fem sg | masc pl | fem pl
Every piece is expanded at load into its four agreement variants, with a `%s` per slot, so the
per-post work is a list index and one `%` (about twice as fast as `str.format` on such short text).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

#: Agreement classes: what a predicate must agree with. English and German only use number.
MS, FS, MP, FP = 0, 1, 2, 3
_GENDER_AGR = {"s": MS, "m": MS, "n": MS, "f": FS, "p": MP, "mp": MP, "fp": FP}

_ALTERNATION = re.compile(r"\[([^\[\]]*)\]")
#: A lowercase letter that starts a sentence inside a realized sentence ("Why? it works" -> "It").
_INNER_START = re.compile(r"([.?!] )(?!https?://)(\w)")
#: German capitalizes a whole sentence after a colon as well ("Ratet mal: Ich habe ...").
_INNER_START_DE = re.compile(r"([.?!:] )(?!https?://)(\w)")
_SLOT = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True, slots=True, eq=False)
class Piece:
    """A compiled piece: its text in the four agreement variants, with a `%s` per slot."""

    formats: tuple[str, str, str, str]
    #: The same with the first letter capitalized, for a piece used as a sentence (where it is
    #: written text, not a slot, capitals are settled here rather than for every post).
    capitalized: tuple[str, str, str, str]
    fills: tuple[Callable[[Composer], str], ...]  # what fills each slot (each takes the Composer)
    slots: tuple[str, ...]
    #: A slot starts the sentence ("{F} is ..."), so its first letter is capitalized after filling.
    opens_with_slot: bool
    #: A slot starts a sentence inside it ("Why? {R}."), capitalized after filling as well.
    inner_start: bool


def compile_piece(text: str) -> Piece:
    """Expand `[a|b]` alternations into four agreement variants and turn `{slot}`s into `%s`."""
    slots = tuple(_SLOT.findall(text))
    unknown = [slot for slot in slots if slot not in FILLS]
    if unknown:
        raise ValueError(f"{text!r}: unknown slot(s) {unknown}; known: {sorted(FILLS)}")
    bare = _SLOT.sub("%s", text.replace("%", "%%"))

    def variant(agr: int) -> str:
        def choose(match: re.Match[str]) -> str:
            options = match.group(1).split("|")
            if len(options) == 2:
                return options[agr >= MP]
            if len(options) == 4:
                return options[agr]
            raise ValueError(f"{text!r}: an alternation needs 2 (sg|pl) or 4 (ms|fs|mp|fp) options")

        return _ALTERNATION.sub(choose, bare)

    formats = (variant(MS), variant(FS), variant(MP), variant(FP))
    opens_with_slot = bare.startswith(("%s", "¿%s", "¡%s"))
    return Piece(
        formats=formats,
        capitalized=formats if opens_with_slot else tuple(_capitalize(f) for f in formats),  # type: ignore[arg-type]
        fills=tuple(FILLS[slot] for slot in slots),
        slots=slots,
        opens_with_slot=opens_with_slot,
        inner_start=re.search(r"[.?!] \{", text) is not None,
    )


def _capitalize(text: str) -> str:
    """The first letter in upper case (after a Spanish opening ¿ or ¡)."""
    first = text[:1]
    if first.islower():
        return first.upper() + text[1:]
    if first in "¿¡" and text[1:2].islower():
        return first + text[1].upper() + text[2:]
    return text


@dataclass(slots=True, eq=False)
class Item:
    """Something a post can be about, in one language: a named entity or a topic's common noun.

    The forms are what templates ask for: `nom` (subject), `acc` (object), `dat` (after German
    dative prepositions), `of` ("of the X" / "del X" / "du X" / "des X") and `to` ("to the X" /
    "al X" / "au X" / "zum X").
    """

    key: str  # language-independent identity: the entity's name, or "topic/lang/noun"
    kind: str  # entity kind ("product", "team", ...) or "thing"
    nom: str
    acc: str
    dat: str
    of: str
    to: str
    agr: int
    tag: str | None = None  # hashtag form (entities only)
    handle: str | None = None  # the entity's own account, when it has one


def _camel(name: str) -> str:
    words = re.split(r"[^\w]+", name)
    if words and words[0].lower() in _ARTICLES:
        words = words[1:]
    return "".join(w[:1].upper() + w[1:] for w in words if w)


_ARTICLES = {"the", "el", "la", "los", "las", "le", "les", "l", "der", "die", "das"}
_FR_VOWELS = "aeiouéèêàâîôûAEIOUÉÈÊÀÂÎÔÛ"
#: French elides "que", "de", "je", "le", "ne", "se", "me", "te" before a vowel; a name or clause can
#: bring the vowel in at realization time ("que Arcline" -> "qu'Arcline"), so French sentences get
#: this pass. (h is left alone: names like Harbor Hawks keep "de".)
#: The pattern opens with its literal "e " (the regex engine then scans for that fast) and looks
#: back for the word; it matches only the "e " that becomes an apostrophe.
_FR_ELISION = re.compile(rf"e (?=[{_FR_VOWELS}])(?:(?<=\bque )|(?<=\bQue )|(?<=\b[QqDdJjLlNnSsMmTt]e ))")


def noun_forms(lang: str, gender: str, np: str) -> tuple[str, str, str, str, str]:
    """(nom, acc, dat, of, to) of a noun phrase written with its article, or of a bare name."""
    nom = acc = dat = np
    if lang == "en":
        return nom, acc, dat, f"of {np}", f"to {np}"
    if lang == "es":
        if np.startswith("el "):
            return nom, acc, dat, "del " + np[3:], "al " + np[3:]
        return nom, acc, dat, "de " + np, "a " + np
    if lang == "fr":
        if np.startswith("le "):
            return nom, acc, dat, "du " + np[3:], "au " + np[3:]
        if np.startswith("les "):
            return nom, acc, dat, "des " + np[4:], "aux " + np[4:]
        if np[:1] in _FR_VOWELS:
            return nom, acc, dat, "d'" + np, "à " + np
        return nom, acc, dat, "de " + np, "à " + np
    article, _, noun = np.partition(" ")
    of, to = "von " + np, "zu " + np
    # After den/dem/der an attributive adjective takes the weak ending -en ("den neuen Chip").
    weak = " ".join(w + "n" if w[:1].islower() and w.endswith("e") else w for w in noun.split(" "))
    if article == "der" and gender == "m":
        acc, dat, of, to = "den " + weak, "dem " + weak, "vom " + weak, "zum " + weak
    elif article == "das" and gender == "n":
        dat, of, to = "dem " + weak, "vom " + weak, "zum " + weak
    elif article == "die" and gender == "f":
        dat, of, to = "der " + weak, "von der " + weak, "zur " + weak
    elif article == "die" and gender == "p":
        # Dative plural takes -n unless the noun already ends in -n or -s.
        dat = "den " + noun + ("" if noun.endswith(("n", "s")) else "n")
        of, to = "von " + dat, "zu " + dat
    return nom, acc, dat, of, to


def _split_spec(spec: str, default: str) -> tuple[str, str]:
    gender, sep, text = spec.partition(":")
    if not sep or gender not in _GENDER_AGR:
        return default, spec
    return gender, text


def entity_item(lang: str, key: str, kind: str, spec: str) -> Item:
    """A named entity; `spec` is its name in this language, `g:name` when the gender matters."""
    gender, name = _split_spec(spec, "m")
    return Item(key, kind, *noun_forms(lang, gender, name), _GENDER_AGR[gender], tag=_camel(name))


def thing_item(lang: str, topic: str, spec: str) -> Item:
    """A common noun written with its article and gender, e.g. `f:la batería`, `m:der Akku`."""
    gender, np = _split_spec(spec, "")
    if not gender:
        raise ValueError(f"{spec!r}: a noun is written as 'gender:noun phrase', e.g. 'f:la batería'")
    return Item(f"{topic}/{lang}/{np}", "thing", *noun_forms(lang, gender, np), _GENDER_AGR[gender])


@dataclass(slots=True)
class TopicLang:
    """One topic's pieces in one language."""

    name: str
    things: list[Item]
    entities: dict[str, list[Item]]
    urn: list[Item]  # focus candidates, repeated by popularity (a Zipf urn: O(1) weighted draws)
    pos: list[Piece]
    neg: list[Piece]
    reasons: tuple[list[Piece], list[Piece]]  # (negative, positive)
    news: list[Piece]
    doing: list[Piece]
    news_by_kind: dict[str, list[Piece]]  # clauses that name an entity of that kind
    doing_by_kind: dict[str, list[Piece]]
    needs: list[tuple[str, Piece]]  # (entity kind that answers it, the need)
    hashtags: list[str]
    emoji: list[str]
    domains: list[str]


@dataclass(slots=True)
class LangGrammar:
    """A language's compiled pieces: sentence lists per act, generic lists, topics, formats."""

    code: str
    sentences: dict[str, tuple[list[Piece], list[Piece]]]  # name -> (for stance -1, for stance +1)
    lists: dict[str, tuple[list[Piece], list[Piece]]]
    #: PLANS with each sentence list looked up: act -> ((probability, sentences[name]), ...)
    plans: dict[str, tuple[tuple[float, tuple[list[Piece], list[Piece]]], ...]]
    topics: list[TopicLang]
    formats: dict[str, Any]
    cities: list[str]
    copy_words: list[str]
    elides: bool  # French: "que Arcline" -> "qu'Arcline" after filling
    colon_starts_sentence: bool  # German: a colon starts a sentence ("Ratet mal: Ich habe ...")
    inner_start: re.Pattern[str]  # a lowercase letter starting a sentence inside a sentence


#: Sentence lists every language file defines (optionally split into `name+` / `name-` by stance).
SENTENCE_LISTS = (
    "opinion",
    "support",
    "close",
    "ask",
    "ask_rec",
    "news",
    "news_comment",
    "experience",
    "feel",
    "promo",
    "answer_yes",
    "answer_no",
    "agree",
    "disagree",
    "followup",
    "explain",
    "thanks",
    "welcome",
    "concede",
    "react",
    "recommend",
    "more",
    "quote",
    "spam",
)
#: Generic filler lists (slots of the same name). Pp and Rp are P and R for a person as the focus.
FILLER_LISTS = ("open", "P", "R", "Pp", "Rp", "when", "cc")

#: What a post of each act is made of: (sentence list, probability it appears).
PLANS: dict[str, tuple[tuple[str, float], ...]] = {
    "opinion": (("opinion", 1.0), ("support", 0.45), ("close", 0.2)),
    "question": (("ask", 1.0),),
    "ask_rec": (("ask_rec", 1.0),),
    "news": (("news", 1.0), ("news_comment", 0.35)),
    "experience": (("experience", 1.0), ("feel", 0.6)),
    "promo": (("promo", 1.0),),
    "spam": (("spam", 1.0),),
    "answer_yes": (("answer_yes", 1.0), ("support", 0.3)),
    "answer_no": (("answer_no", 1.0), ("support", 0.3)),
    "agree": (("agree", 1.0), ("support", 0.25)),
    "disagree": (("disagree", 1.0), ("support", 0.35)),
    "followup": (("followup", 1.0),),
    "explain": (("explain", 1.0),),
    "thanks": (("thanks", 1.0),),
    "welcome": (("welcome", 1.0),),
    "concede": (("concede", 1.0),),
    "react": (("react", 1.0),),
    "recommend": (("recommend", 1.0), ("support", 0.3)),
    "more": (("more", 1.0),),
    "quote": (("quote", 1.0), ("support", 0.3)),
}


def _by_stance(table: dict[str, list[str]], name: str, where: str) -> tuple[list[Piece], list[Piece]]:
    both = [compile_piece(p) for p in table.get(name, [])]
    neg = both + [compile_piece(p) for p in table.get(name + "-", [])]
    pos = both + [compile_piece(p) for p in table.get(name + "+", [])]
    if not neg or not pos:
        raise ValueError(f"{where}: list {name!r} is empty for one stance")
    return neg, pos


def compile_language(module: ModuleType, topics: Sequence[Any]) -> LangGrammar:
    """Compile a `simdata.<lang>` module against the language-independent topic table."""
    code = module.CODE
    grammar = module.GRAMMAR
    sentences = {name: _by_stance(grammar, name, f"simdata/{code}") for name in SENTENCE_LISTS}
    lists = {name: _by_stance(grammar, name, f"simdata/{code}") for name in FILLER_LISTS}
    compiled_topics = []
    for topic in topics:
        data = module.TOPICS.get(topic.name)
        if data is None:
            raise ValueError(f"simdata/{code}: topic {topic.name!r} has no pieces")
        compiled_topics.append(_compile_topic(code, topic, data))
    return LangGrammar(
        code=code,
        sentences=sentences,
        lists=lists,
        plans={
            act: tuple((probability, sentences[name]) for name, probability in plan)
            for act, plan in PLANS.items()
        },
        topics=compiled_topics,
        formats=module.FORMATS,
        cities=list(module.CITIES),
        copy_words=list(module.COPY_WORDS),
        elides=code == "fr",
        colon_starts_sentence=code == "de",
        inner_start=_INNER_START_DE if code == "de" else _INNER_START,
    )


def _compile_topic(code: str, topic: Any, data: dict[str, Any]) -> TopicLang:
    where = f"simdata/{code}: topic {topic.name!r}"
    things = [thing_item(code, topic.name, spec) for spec in data["things"]]
    entities: dict[str, list[Item]] = {}
    local_names = data.get("names", {})
    for kind, specs in topic.entities.items():
        items = []
        for spec in specs:
            key = _split_spec(spec, "m")[1]
            local = local_names.get(key, spec)
            if code != "en" and key.startswith("the ") and key not in local_names:
                raise ValueError(f"{where}: {key!r} is a description; give its {code} name under 'names'")
            item = entity_item(code, key, kind, local)
            item.handle = topic.handles.get(key)
            items.append(item)
        entities[kind] = items
    # Popularity within a topic is Zipf-like too: the first-listed items are talked about most.
    urn: list[Item] = []
    for rank, item in enumerate([e for group in entities.values() for e in group]):
        urn += [item] * max(1, 6 // (rank // 3 + 1))
    for rank, item in enumerate(things):
        urn += [item] * max(1, 6 // (rank // 3 + 1))
    needs = []
    for spec in data["needs"]:
        kind, _, text = spec.partition("|")
        if kind not in entities:
            raise ValueError(f"{where}: need {spec!r} names kind {kind!r}, not one of {list(entities)}")
        needs.append((kind, compile_piece(text)))
    reasons = _by_stance(data, "R", where)
    news = [compile_piece(p) for p in data["news"]]
    doing = [compile_piece(p) for p in data["doing"]]
    for piece in news + doing + [need for _, need in needs]:
        for slot in piece.slots:
            kind = slot.split(".")[0].rstrip("2")
            if kind in ENTITY_KINDS and kind not in entities:
                raise ValueError(f"{where}: slot {{{slot}}} names a kind this topic has no entities of")
    return TopicLang(
        name=topic.name,
        things=things,
        entities=entities,
        urn=urn,
        pos=[compile_piece(p) for p in data["P+"]],
        neg=[compile_piece(p) for p in data["P-"]],
        reasons=reasons,
        news=news,
        doing=doing,
        news_by_kind=_by_kind(news, entities),
        doing_by_kind=_by_kind(doing, entities),
        needs=needs,
        hashtags=list(topic.hashtags) + list(data.get("hashtags", [])),
        emoji=list(topic.emoji),
        domains=list(topic.domains),
    )


def _by_kind(pieces: list[Piece], entities: dict[str, list[Item]]) -> dict[str, list[Piece]]:
    """For each entity kind, the pieces that name an entity of that kind (in any form)."""
    result: dict[str, list[Piece]] = {}
    for piece in pieces:
        for kind in {slot.split(".")[0] for slot in piece.slots} & entities.keys():
            result.setdefault(kind, []).append(piece)
    return result


_SLUG_STRIP = re.compile(r"[^a-z0-9]+")
_LINK_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class Composer:
    """Realizes posts; holds the state of the post being written (focus, stance, entities seen).

    One Composer serves one simulator run. Random choices come from `rand` (a bound
    `random.Random.random`, whose sequence Python guarantees across versions).
    """

    def __init__(
        self,
        grammars: Sequence[LangGrammar],
        rand: Callable[[], float],
        mention: Callable[[], str],
    ) -> None:
        self.grammars = list(grammars)
        self.rand = rand
        self.mention = mention
        self.g: LangGrammar = self.grammars[0]
        self.t: TopicLang = self.g.topics[0]
        self.focus: Item | None = None
        self.agr = MS
        self.positive = True
        self.last_pick: Piece | None = None  # the last predicate or reason, not to be repeated
        self.hashtags: list[str] = []
        self.mentions: list[str] = []
        self.urls: list[str] = []
        self.second: Item | None = None
        self.used: dict[str, Item] | None = None  # entities the post has named, by kind (made when needed)

    # -- choosing ---------------------------------------------------------------------------
    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rand() * len(seq))]

    def pick_focus(self, lang: int, topic: int) -> Item:
        """A focus for a new post: entities and things, the popular ones more often."""
        urn = self.grammars[lang].topics[topic].urn
        return urn[int(self.rand() * len(urn))]

    def pick_entity(self, lang: int, topic: int, kind: str) -> Item:
        return self.pick(self.grammars[lang].topics[topic].entities[kind])

    def need_kind(self, lang: int, topic: int) -> str:
        """The kind of entity that answers this topic's recommendation requests."""
        return self.pick(self.grammars[lang].topics[topic].needs)[0]

    def second_item(self, focus: Item | None) -> Item:
        """Another item like `focus` (same entity kind, or another thing), for comparisons."""
        pool = self.t.things if focus is None or focus.kind == "thing" else self.t.entities[focus.kind]
        item = pool[int(self.rand() * len(pool))]
        if item is focus:
            item = pool[(pool.index(item) + 1) % len(pool)]
        return item

    # -- writing ----------------------------------------------------------------------------
    def begin(self, lang: int, topic: int, focus: Item | None, stance: int) -> None:
        """Start a post: the entity lists are fresh, so the caller may keep the previous ones."""
        self.g = g = self.grammars[lang]
        self.t = g.topics[topic]
        self.focus = focus
        self.agr = focus.agr if focus is not None else MS
        self.positive = stance > 0
        self.last_pick = None
        self.second = None
        self.used = None
        self.hashtags = []
        self.mentions = []
        self.urls = []

    def compose(
        self,
        act: str,
        casual: bool = False,
        reply_to: str | None = None,
        hashtags: int = 0,
        url: bool = False,
        emoji: bool = False,
        cc: bool = False,
        trend_tag: str | None = None,
    ) -> str:
        """A whole post: `@parent` prefix for replies, the body, then link, hashtags and emoji.

        The body is one to three sentences, as the act's plan says (PLANS). The entity lists end
        up in text order: the prefix mention, the body's, then the tail's.
        """
        rand, g = self.rand, self.g
        parts = []
        for probability, by_stance in g.plans[act]:
            if probability < 1.0 and rand() >= probability:
                continue
            options = by_stance[self.positive]
            piece = options[int(rand() * len(options))]
            formats = piece.formats if casual else piece.capitalized
            fills = piece.fills  # realize(piece), inlined: this is the hottest loop of the simulator
            if not fills:
                text = formats[self.agr]
            elif len(fills) == 1:
                value = fills[0](self)  # may set the focus, so before choosing the agreement variant
                text = formats[self.agr] % value
            else:
                values = tuple([fill(self) for fill in fills])
                text = formats[self.agr] % values
            if g.elides:
                text = _FR_ELISION.sub("'", text)
            if not casual:
                if piece.inner_start or (g.colon_starts_sentence and ": " in text):
                    text = g.inner_start.sub(_upper_second, text)
                if piece.opens_with_slot:
                    text = _capitalize(text)
            parts.append(text)
        text = parts[0] if len(parts) == 1 else " ".join(parts)
        # The tail.
        if casual and text[-1:] == "." and text[-2:] != "..":
            text = text[:-1]  # casual posters skip the final period (and capitals: see above)
        if reply_to is not None:
            self.mentions.insert(0, reply_to)
            text = f"@{reply_to} {text}"
        if cc:
            text = f"{text} cc {self.add_mention(self.mention())}"
        if url and not self.urls:
            text = f"{text} {self.add_url(self.link())}"
        if hashtags or trend_tag is not None:
            tags = self.topic_hashtags(hashtags, trend_tag)
            if tags:
                self.hashtags += tags
                text = f"{text} #{' #'.join(tags)}"
        if emoji:
            text = f"{text} {_emoji(self) * (1 if rand() < 0.8 else 3)}"
        return text

    def realize(self, piece: Piece) -> str:
        fills = piece.fills
        if not fills:
            return piece.formats[self.agr]
        if len(fills) == 1:
            value = fills[0](self)  # may set the focus, so before choosing the format
            return piece.formats[self.agr] % value
        values = tuple([fill(self) for fill in fills])
        return piece.formats[self.agr] % values

    def add_hashtag(self, tag: str) -> str:
        self.hashtags.append(tag)
        return "#" + tag

    def add_mention(self, handle: str) -> str:
        self.mentions.append(handle)
        return "@" + handle

    def add_url(self, url: str) -> str:
        self.urls.append(url)
        return url

    def topic_hashtags(self, count: int, first: str | None = None) -> list[str]:
        """`first` and up to `count` distinct hashtags of the topic and focus, none already used."""
        used = self.hashtags
        tags = [first] if first is not None and first not in used else []
        focus = self.focus
        if (
            count
            and focus is not None
            and focus.tag is not None
            and focus.tag not in used
            and self.rand() < 0.4
        ):
            tags.append(focus.tag)
        choices = self.t.hashtags
        for _ in range(count * 2):
            if len(tags) >= count + (first is not None):
                break
            tag = choices[int(self.rand() * len(choices))]
            if tag not in tags and tag not in used:
                tags.append(tag)
        return tags

    def link(self) -> str:
        """An article link on one of the topic's sites (named after the focus), or a short link."""
        rand = self.rand
        if rand() < 0.4 or not self.t.domains:
            return short_link(rand)
        focus = self.focus
        slug = _slug(focus.nom) if focus is not None else self.t.name
        return f"https://{self.pick(self.t.domains)}/{int(rand() * 90000) + 10000}-{slug}"

    def set_focus(self, item: Item) -> None:
        self.focus = item
        self.agr = item.agr
        if self.used is not None:
            self.used.setdefault(item.kind, item)

    def render(self, item: Item, form: str) -> str:
        """An item in a form; a named entity is now and then written as its #hashtag or @account."""
        if item.tag is not None and form in _RENDERED_FORMS:
            roll = self.rand()
            if roll < 0.05:
                return self.add_hashtag(item.tag)
            if roll < 0.1 and item.handle is not None:
                return self.add_mention(item.handle)
        return getattr(item, form)


_RENDERED_FORMS = ("nom", "acc")  # the forms an entity may be written as its #tag or @account in


@functools.cache  # a few thousand names, each slugged again and again
def _slug(name: str) -> str:
    """A name as a URL path segment: "der neue Chip" -> "der-neue-chip"."""
    return _SLUG_STRIP.sub("-", name.lower()).strip("-")


def _upper_second(match: re.Match[str]) -> str:
    return match.group(1) + match.group(2).upper()


def short_link(rand: Callable[[], float], domain: str = "sim.lk") -> str:
    """A short link with a random 7-character code: one uniform draw read as three character pairs
    and a character (57^7 < 2^53, so the draw has the bits), rather than seven draws."""
    code = int(rand() * _CODES)
    pairs, n = _LINK_PAIRS, len(_LINK_PAIRS)
    return (
        f"https://{domain}/{pairs[code % n]}{pairs[code // n % n]}"
        f"{pairs[code // n**2 % n]}{_LINK_ALPHABET[code // n**3]}"
    )


_LINK_PAIRS = [a + b for a in _LINK_ALPHABET for b in _LINK_ALPHABET]
_CODES = len(_LINK_ALPHABET) ** 7


# -- slot fillers: each takes the Composer and returns the slot's text ---------------------------


def _focus_filler(form: str) -> Callable[[Composer], str]:
    renders = form in _RENDERED_FORMS

    def fill(c: Composer) -> str:
        focus = c.focus
        if focus is None:
            focus = c.t.urn[int(c.rand() * len(c.t.urn))]
            c.set_focus(focus)
        if renders and focus.tag is not None:
            return c.render(focus, form)
        return getattr(focus, form)

    return fill


def _second_filler(form: str) -> Callable[[Composer], str]:
    def fill(c: Composer) -> str:
        if c.second is None:
            c.second = c.second_item(c.focus)
        return c.render(c.second, form)

    return fill


def _entity_filler(kind: str, second: bool, form: str) -> Callable[[Composer], str]:
    """`{team}`: the post's team (the focus when the focus is a team); `{team2}`: another one;
    `{team.dat}`: the team in another form."""

    def fill(c: Composer) -> str:
        focus, used = c.focus, c.used
        if used is None:
            used = c.used = {focus.kind: focus} if focus is not None else {}
        first = used.get(kind)
        if first is None:
            first = c.pick(c.t.entities[kind])
            used[kind] = first
            if focus is None:
                c.set_focus(first)
        item = first
        if second:
            key = kind + "2"
            item = used.get(key)  # type: ignore[assignment]
            if item is None:
                pool = c.t.entities[kind]
                item = pool[int(c.rand() * len(pool))]
                if item is first:
                    item = pool[(pool.index(first) + 1) % len(pool)]
                used[key] = item
        return c.render(item, form)

    return fill


# Most pieces that fill a slot have no slots of their own: their text is a lookup, not a realize().


def _list_filler(name: str) -> Callable[[Composer], str]:
    def fill(c: Composer) -> str:
        options = c.g.lists[name][c.positive]
        piece = options[int(c.rand() * len(options))]
        return c.realize(piece) if piece.fills else piece.formats[c.agr]

    return fill


def _fresh(c: Composer, pieces: Sequence[Piece]) -> str:
    """One of `pieces`, not the predicate or reason this post already used."""
    piece = pieces[int(c.rand() * len(pieces))]
    if piece is c.last_pick:
        piece = pieces[(pieces.index(piece) + 1) % len(pieces)]
    c.last_pick = piece
    return c.realize(piece) if piece.fills else piece.formats[c.agr]


def _predicate(c: Composer) -> str:
    """A predicate agreeing with the focus, with the post's stance; now and then the topic's own.

    People get their own (a film topic's "is perfectly paced" is for films, not actors)."""
    focus = c.focus
    if focus is not None and focus.kind == "person":
        return _fresh(c, c.g.lists["Pp"][c.positive])
    if c.rand() < 0.4:
        return _fresh(c, c.t.pos if c.positive else c.t.neg)
    return _fresh(c, c.g.lists["P"][c.positive])


def _reason(c: Composer) -> str:
    focus = c.focus
    if focus is not None and focus.kind == "person":
        return _fresh(c, c.g.lists["Rp"][c.positive])
    if c.rand() < 0.5:
        return _fresh(c, c.t.reasons[c.positive])
    return _fresh(c, c.g.lists["R"][c.positive])


def _news(c: Composer) -> str:
    """A news clause; one that names the focus's kind when the focus is set."""
    focus, t = c.focus, c.t
    pieces = t.news_by_kind.get(focus.kind, t.news) if focus is not None else t.news
    return c.realize(pieces[int(c.rand() * len(pieces))])


def _doing(c: Composer) -> str:
    """What someone did (an experience); one that names the focus's kind when the focus is set."""
    focus, t = c.focus, c.t
    pieces = t.doing_by_kind.get(focus.kind, t.doing) if focus is not None else t.doing
    return c.realize(pieces[int(c.rand() * len(pieces))])


def _need(c: Composer) -> str:
    return c.realize(c.pick(c.t.needs)[1])


def _emoji(c: Composer) -> str:
    if c.rand() < 0.5:
        return c.pick(c.t.emoji)
    return c.pick(POSITIVE_EMOJI if c.positive else NEGATIVE_EMOJI)


# Numbers, dates and times, in the language's own conventions (FORMATS in its module).
def _group(c: Composer, value: int) -> str:
    return f"{value:,}".replace(",", c.g.formats["thousands"])


def _price(c: Composer) -> str:
    form = c.g.formats["price"]
    if not isinstance(form, str):  # a language with several currencies (es: € and $)
        form = c.pick(form)
    return form.format(_group(c, c.pick(_PRICES)))


def _percent(c: Composer) -> str:
    if c.rand() < 0.5:
        return c.g.formats["pct"].format(5 * (1 + int(c.rand() * 12)))
    value = f"{c.rand() * 9.4 + 0.5:.1f}".replace(".0", "").replace(".", c.g.formats["decimal"])
    return c.g.formats["pct"].format(value)


def _score(c: Composer) -> str:
    winner = 1 + int(c.rand() * 4)
    return c.g.formats["score"].format(a=winner, b=int(c.rand() * winner))


def _basketball_score(c: Composer) -> str:
    winner = 90 + int(c.rand() * 40)
    return c.g.formats["score"].format(a=winner, b=winner - 1 - int(c.rand() * 20))


def _date(c: Composer) -> str:
    formats = c.g.formats
    return formats["date"].format(day=1 + int(c.rand() * 28), month=formats["months"][int(c.rand() * 12)])


def _clock(c: Composer) -> str:
    hour = 8 + int(c.rand() * 14)
    return c.g.formats["time"].format(
        h=hour, h12=(hour - 1) % 12 + 1, ampm="pm" if hour >= 12 else "am", m=c.pick(("00", "15", "30", "45"))
    )


_PRICES = (19, 25, 29, 39, 49, 59, 79, 99, 129, 149, 199, 249, 299, 349, 399, 499, 599, 799, 999, 1299)

#: Entity kinds a topic may have; each is also a slot (`{team}`, and `{team2}` for a different one).
ENTITY_KINDS = ("person", "team", "product", "brand", "work", "venue", "place", "org", "event")

POSITIVE_EMOJI = ("😍", "🔥", "🙌", "👏", "❤️", "😂", "💯", "✨", "🥳", "😊", "👌", "🤩")
NEGATIVE_EMOJI = ("😤", "🙄", "😒", "💀", "😭", "🤦", "😬", "👎", "😩", "🫠")

#: Every slot a piece may use, and what fills it.
FILLS: dict[str, Callable[[Composer], str]] = {
    "P": _predicate,
    "R": _reason,
    "news": _news,
    "doing": _doing,
    "need": _need,
    "url": lambda c: c.add_url(c.link()),
    "spamurl": lambda c: c.add_url(short_link(c.rand, c.pick(SPAM_DOMAINS))),
    "h": lambda c: c.add_mention(c.mention()),
    "emo": _emoji,
    "city": lambda c: c.pick(c.g.cities),
    "price": _price,
    "pct": _percent,
    "millions": lambda c: c.g.formats["millions"].format(
        c.pick((2, 5, 8, 12, 20, 35, 50, 80, 120, 250, 400))
    ),
    "off": lambda c: c.g.formats["pct"].format(10 * (1 + int(c.rand() * 7))),
    "n": lambda c: str(2 + int(c.rand() * 9)),
    "big": lambda c: _group(c, c.pick((1, 2, 3, 5, 8, 12, 15, 20, 40, 75)) * 1000),
    "score": _score,
    "bscore": _basketball_score,
    "km": lambda c: str(c.pick((3, 5, 5, 10, 10, 12, 15, 21, 42))),
    "year": lambda c: str(2015 + int(c.rand() * 12)),
    "date": _date,
    "weekday": lambda c: c.pick(c.g.formats["weekdays"]),
    "time": _clock,
    "temp": lambda c: str(int(c.rand() * 45) - 5),
}
for _form in ("nom", "acc", "dat", "of", "to"):
    _suffix = "" if _form == "nom" else "." + _form
    FILLS["F" + _suffix] = _focus_filler(_form)
    FILLS["F2" + _suffix] = _second_filler(_form)
for _name in FILLER_LISTS:
    if _name not in FILLS:
        FILLS[_name] = _list_filler(_name)
for _kind in ENTITY_KINDS:
    for _form in ("nom", "acc", "dat", "of", "to"):
        _suffix = "" if _form == "nom" else "." + _form
        FILLS[_kind + _suffix] = _entity_filler(_kind, False, _form)
        FILLS[_kind + "2" + _suffix] = _entity_filler(_kind, True, _form)

#: Where spam links point (invented domains).
SPAM_DOMAINS = ("sim.lk", "free-gifts.win", "cl1ck.biz", "promo-deals.shop", "get-rich.fast")
