"""The byte-level BPE tokenizer: trained on the curated corpus, saved where `transformers` loads it.

Byte-level means no post is ever out of vocabulary (emoji, any script). Besides the learned merges it
has the special tokens every later stage agrees on: end-of-post (the document separator in token
shards), the chat roles (conversation tuning and the chat endpoint), and the two placeholders that
curation writes in place of mentions and links, so each is always one token.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

END_OF_POST = "<|endofpost|>"
PAD = "<|pad|>"
SYSTEM = "<|system|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
END_OF_TURN = "<|endofturn|>"
SPECIAL_TOKENS = [END_OF_POST, PAD, SYSTEM, USER, ASSISTANT, END_OF_TURN]
ROLE_TOKENS = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}

#: What curation's normaliser writes for a mention and for a link; ordinary text, one token each.
MENTION_PLACEHOLDER = "@user"
URL_PLACEHOLDER = "http"

TOKENIZER_FILE = "tokenizer.json"

# The same template as format_chat below, for transformers' apply_chat_template.
_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{{ '<|' + m['role'] + '|>' + m['content'] + '" + END_OF_TURN + "' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '" + ASSISTANT + "' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192, min_frequency: int = 2) -> Tokenizer:
    """Train byte-level BPE on `texts` (an iterator is fine: it is streamed)."""
    if vocab_size < 256 + len(SPECIAL_TOKENS) + 2:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the 256 bytes plus special tokens")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # Each placeholder also with its leading space, so " @user" is one token rather than "Ġ" plus
    # "@user" (added tokens match leftmost-longest). They match inside longer words too ("https" is
    # " http" + "s"): still exact on decode, and after curation such words are rare.
    placeholders = [MENTION_PLACEHOLDER, URL_PLACEHOLDER]
    tokenizer.add_tokens([AddedToken(text, normalized=False) for p in placeholders for text in (p, " " + p)])
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, directory: Path) -> str:
    """Save tokenizer.json plus the config files `transformers` reads; returns its sha256."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(directory / TOKENIZER_FILE))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": END_OF_POST,
        "pad_token": PAD,
        "unk_token": None,
        "additional_special_tokens": [SYSTEM, USER, ASSISTANT, END_OF_TURN],
        "chat_template": _CHAT_TEMPLATE,
        "model_max_length": 1 << 20,
        "clean_up_tokenization_spaces": False,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special_map = {k: config[k] for k in ("eos_token", "pad_token", "additional_special_tokens")}
    (directory / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    return tokenizer_hash(directory)


def load_tokenizer(directory: Path) -> Tokenizer:
    path = Path(directory) / TOKENIZER_FILE
    if not path.exists():
        raise FileNotFoundError(f"no tokenizer at {path}; run `roost tokenizer train` (or `roost curate`)")
    return Tokenizer.from_file(str(path))


def tokenizer_hash(directory: Path) -> str:
    return hashlib.sha256((Path(directory) / TOKENIZER_FILE).read_bytes()).hexdigest()


def special_id(tokenizer: Tokenizer, token: str) -> int:
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise ValueError(f"tokenizer has no {token!r}; was it trained by roost?")
    return token_id


def format_chat(messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
    """The chat template as text: `<|role|>content<|endofturn|>` per message, then `<|assistant|>`."""
    parts = []
    for message in messages:
        role = message["role"]
        if role not in ROLE_TOKENS:
            raise ValueError(f"unknown chat role {role!r}; expected one of {sorted(ROLE_TOKENS)}")
        parts.append(f"{ROLE_TOKENS[role]}{message['content']}{END_OF_TURN}")
    if add_generation_prompt:
        parts.append(ASSISTANT)
    return "".join(parts)
