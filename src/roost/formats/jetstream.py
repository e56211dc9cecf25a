"""Bluesky Jetstream events: `{"did", "time_us", "kind", "commit": {...}}`, one JSON object per line.

An `app.bsky.feed.post` create (or update) becomes a Post whose id is its AT URI,
`at://<did>/app.bsky.feed.post/<rkey>`: the same string a reply's `reply.parent.uri` and a quote's
embedded record name, so threads link up without a lookup. The author is the repo's DID; the time
is the record's `createdAt`, or the event's `time_us` when `createdAt` cannot be read (clients set
it). Hashtags, mentions and links come from the `facets`, whose offsets count UTF-8 bytes; a
mention is the handle as written in the text (the DID when the offsets do not fit). A post delete
becomes a delete event. Every other collection (likes, reposts, follows, ...) and the `identity`
and `account` events are counted by kind (the collection's NSID) and skipped.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

from roost.formats import entities
from roost.formats.fields import distinct, epoch_time, iso_time, language, unmapped
from roost.formats.records import Item, ParseError, Parser, RecordData, Skip, decode
from roost.posts import Event, Post

POST_COLLECTION = "app.bsky.feed.post"


class _ByteSlice(msgspec.Struct):
    byteStart: int = 0
    byteEnd: int = 0


class _Feature(msgspec.Struct):
    type: str = msgspec.field(name="$type", default="")
    uri: str | None = None  # app.bsky.richtext.facet#link
    did: str | None = None  # #mention
    tag: str | None = None  # #tag


class _Facet(msgspec.Struct):
    index: _ByteSlice | None = None
    features: list[_Feature] = []


class _Ref(msgspec.Struct):
    uri: str = ""


class _Reply(msgspec.Struct):
    parent: _Ref | None = None


class _PostRecord(msgspec.Struct):
    text: str = ""
    createdAt: str | None = None
    langs: list[str] | None = None
    reply: _Reply | None = None
    facets: list[_Facet] | None = None
    embed: dict[str, Any] | None = None  # its shape depends on its $type; read by `_embedded`


class _Commit(msgspec.Struct):
    operation: str
    collection: str
    rkey: str
    record: msgspec.Raw = msgspec.Raw()


class _Event(msgspec.Struct):
    did: str
    kind: str
    time_us: int | None = None
    commit: _Commit | None = None


_MAPPED = frozenset({"text", "createdAt", "langs", "reply", "facets"})
_event_decoder = msgspec.json.Decoder(_Event)
_record_decoder = msgspec.json.Decoder(_PostRecord)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


def _at_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


def _embedded(embed: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(quoted post's URI, link card's URL) of a post's embed."""
    if not isinstance(embed, dict):
        return None, None
    kind = embed.get("$type")
    quoted = link = None
    if kind == "app.bsky.embed.record":
        quoted = _uri(embed.get("record"))
    elif kind == "app.bsky.embed.recordWithMedia":
        inner = embed.get("record")
        quoted = _uri(inner.get("record") if isinstance(inner, dict) else None)
    elif kind == "app.bsky.embed.external":
        external = embed.get("external")
        uri = external.get("uri") if isinstance(external, dict) else None
        link = uri if isinstance(uri, str) and uri else None
    # An embedded list or feed generator is not a quoted post.
    if quoted is not None and f"/{POST_COLLECTION}/" not in quoted:
        quoted = None
    return quoted, link


def _uri(ref: object) -> str | None:
    uri = ref.get("uri") if isinstance(ref, dict) else None
    return uri if isinstance(uri, str) and uri else None


def _facet_entities(record: _PostRecord) -> tuple[list[str], list[str], list[str]]:
    raw_text = record.text.encode()
    hashtags, mentions, urls = [], [], []
    for facet in record.facets or ():
        for feature in facet.features:
            if feature.type.endswith("#tag") and feature.tag:
                hashtags.append(feature.tag)
            elif feature.type.endswith("#link") and feature.uri:
                urls.append(feature.uri)
            elif feature.type.endswith("#mention") and feature.did:
                mentions.append(_handle(raw_text, facet.index) or feature.did)
    return distinct(hashtags), distinct(mentions), distinct(urls)


def _handle(raw_text: bytes, span: _ByteSlice | None) -> str | None:
    if span is None or not 0 <= span.byteStart < span.byteEnd <= len(raw_text):
        return None
    try:
        written = raw_text[span.byteStart : span.byteEnd].decode()
    except UnicodeDecodeError:
        return None
    return written[1:] if written.startswith("@") and len(written) > 1 else None


def _time(record: _PostRecord, event: _Event) -> dt.datetime:
    if record.createdAt:
        try:
            return iso_time(record.createdAt)
        except ParseError:
            pass
    if event.time_us is None:
        raise ParseError("post has neither a readable createdAt nor time_us")
    return epoch_time(event.time_us)


def _post(event: _Event, commit: _Commit, keep_extra: bool) -> Post:
    if not len(commit.record):
        raise ParseError(f"{commit.operation} of a post without its record")
    record = decode(_record_decoder, commit.record, "app.bsky.feed.post record")
    quote_of, card_link = _embedded(record.embed)
    if record.facets is not None:
        hashtags, mentions, urls = _facet_entities(record)
    else:
        hashtags, mentions, urls = entities.found_in(record.text)
    parent = record.reply.parent if record.reply else None
    extra = unmapped(decode(_dict_decoder, commit.record, "JSON object"), _MAPPED) if keep_extra else None
    return Post(
        id=_at_uri(event.did, commit.collection, commit.rkey),
        text=record.text,
        author_id=event.did,
        created_at=_time(record, event),
        lang=language(record.langs[0]) if record.langs else None,
        reply_to=parent.uri or None if parent else None,
        quote_of=quote_of,
        hashtags=hashtags,
        mentions=mentions,
        urls=distinct([*urls, card_link or ""]),
        source="jetstream",
        extra=extra,
    )


def _parse(data: RecordData, keep_extra: bool) -> list[Item]:
    event = decode(_event_decoder, data, "Jetstream event")
    if not event.did:
        raise ParseError("event with an empty did")
    if event.kind != "commit":
        return [Skip(event.kind or "unknown kind")]
    commit = event.commit
    if commit is None:
        raise ParseError("commit event without its commit")
    if commit.collection != POST_COLLECTION:
        return [Skip(commit.collection or "unknown collection")]
    if not commit.rkey:
        raise ParseError("post commit without an rkey")
    if commit.operation == "delete":
        return [Event.of_delete(_at_uri(event.did, commit.collection, commit.rkey))]
    if commit.operation not in ("create", "update"):
        raise ParseError(f"unknown commit operation {commit.operation[:40]!r}")
    return [Event.of_post(_post(event, commit, keep_extra))]


def make_parser(source: Path | None, *, keep_extra: bool = False) -> Parser:
    """The parser for Jetstream events (one JSON object per record)."""
    return lambda data: _parse(data, keep_extra)
