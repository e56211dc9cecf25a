"""Engine outputs → OpenAI response bodies, whole or as server-sent events.

Streams follow OpenAI's wire format: for chat, a role chunk per choice, content deltas, a finish
chunk (empty delta, `finish_reason`), then a usage chunk (no choices) when
`stream_options.include_usage`, then `data: [DONE]`. A failure after the stream started is sent as
an `{"error": ...}` event, which OpenAI's clients raise. Each read from the engine is one chunk per
choice, however many steps it holds, so a slow reader gets fewer, larger chunks.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from roost.serve.detokenize import TokenTable
from roost.serve.engine import EngineClosed, RequestStream, SequenceOutput
from roost.serve.outputs import ChoiceAssembler, ChoiceDelta
from roost.serve.protocol import (
    ChatChoice,
    ChatCompletionResponse,
    ChatLogprobs,
    CompletionChoice,
    CompletionLogprobs,
    CompletionResponse,
    EmbeddingData,
    EmbeddingResponse,
    EmbeddingUsage,
    Usage,
)
from roost.serve.sampling import TokenLogprob

DONE = b"data: [DONE]\n\n"
# JSON has no -inf; OpenAI's clients expect a number (vLLM clamps the same way).
LOGPROB_FLOOR = -9999.0


def sse(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass
class Reply:
    """What every response of one request shares."""

    id: str
    model: str
    created: int
    table: TokenTable

    @classmethod
    def new(cls, prefix: str, model: str, table: TokenTable) -> Reply:
        return cls(f"{prefix}-{uuid.uuid4().hex}", model, int(time.time()), table)


async def merge(streams: Sequence[RequestStream]) -> AsyncIterator[tuple[int, list[SequenceOutput]]]:
    """(which stream, its outputs) from several streams as they come (one prompt per stream)."""
    if len(streams) == 1:
        async for outputs in streams[0]:
            yield 0, outputs
        return
    inbox: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, stream: RequestStream) -> None:
        try:
            async for outputs in stream:
                inbox.put_nowait((i, outputs))
            inbox.put_nowait((i, None))
        except EngineClosed as exc:
            inbox.put_nowait((i, exc))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        remaining = len(streams)
        while remaining:
            i, item = await inbox.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, EngineClosed):
                raise item
            else:
                yield i, item
    finally:
        for task in tasks:
            task.cancel()
        for stream in streams:
            stream.abort()


class Choices:
    """Every choice of a request (prompt i's choice j is choice i·n + j), fed from merged streams."""

    def __init__(self, streams: Sequence[RequestStream], table: TokenTable) -> None:
        self.streams = streams
        self.n = streams[0].request.params.n
        stop = streams[0].request.params.stop
        self.assemblers = [ChoiceAssembler(table, stop) for _ in range(len(streams) * self.n)]

    async def deltas(self) -> AsyncIterator[dict[int, list[ChoiceDelta]]]:
        """Per engine read: each choice index → its new deltas."""
        async for which, outputs in merge(self.streams):
            step: dict[int, list[ChoiceDelta]] = {}
            for out in outputs:
                index = which * self.n + out.index
                assembler = self.assemblers[index]
                delta = assembler.add(out.token_id, out.logprob, out.finish_reason)
                if delta is None:
                    continue
                if assembler.stopped_by_text:
                    self.streams[which].abort(out.index)
                step.setdefault(index, []).append(delta)
            if step:
                yield step

    def usage(self) -> Usage:
        prompt = sum(s.prompt_tokens for s in self.streams)
        completion = sum(len(a.token_ids) for a in self.assemblers)
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


# -- completions ----------------------------------------------------------------------------------
def completion_logprobs(table: TokenTable, entries: Sequence[TokenLogprob | None], start_offset: int) -> dict:
    tokens, chosen, top, offsets = [], [], [], []
    offset = start_offset
    for entry in entries:
        if entry is None:  # the first prompt token: nothing came before it
            continue
        text = table.text(entry.token_id)
        tokens.append(text)
        chosen.append(max(entry.logprob, LOGPROB_FLOOR))
        top.append({table.text(t): max(lp, LOGPROB_FLOOR) for t, lp in entry.top})
        offsets.append(offset)
        offset += len(text)
    return {"tokens": tokens, "token_logprobs": chosen, "top_logprobs": top, "text_offset": offsets}


def _echo(choices: Choices, table: TokenTable, index: int) -> tuple[str, list[TokenLogprob | None]]:
    request = choices.streams[index // choices.n].request
    return table.decode(request.prompt_ids), request.prompt_logprobs or []


async def completion_response(reply: Reply, choices: Choices, echo: bool) -> CompletionResponse:
    async for _ in choices.deltas():
        pass
    out = []
    for index, a in enumerate(choices.assemblers):
        prefix, prompt_entries = _echo(choices, reply.table, index) if echo else ("", [])
        logprobs = None
        if choices.streams[0].request.params.logprobs is not None:
            entries = [*prompt_entries, *a.logprobs]
            logprobs = CompletionLogprobs(**completion_logprobs(reply.table, entries, 0))
        out.append(
            CompletionChoice(
                index=index, text=prefix + a.text, logprobs=logprobs, finish_reason=a.finish_reason
            )
        )
    return CompletionResponse(
        id=reply.id, created=reply.created, model=reply.model, choices=out, usage=choices.usage()
    )


async def completion_events(
    reply: Reply, choices: Choices, echo: bool, include_usage: bool
) -> AsyncIterator[bytes]:
    head = {"id": reply.id, "object": "text_completion", "created": reply.created, "model": reply.model}
    want_logprobs = choices.streams[0].request.params.logprobs is not None
    offsets = [0] * len(choices.assemblers)
    if echo:
        for index in range(len(choices.assemblers)):
            text, entries = _echo(choices, reply.table, index)
            logprobs = completion_logprobs(reply.table, entries, 0) if want_logprobs else None
            offsets[index] = len(text)
            yield sse(
                {
                    **head,
                    "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": None}],
                }
            )
    try:
        async for step in choices.deltas():
            for index, deltas in step.items():
                text = "".join(d.text for d in deltas)
                logprobs = None
                if want_logprobs:
                    logprobs = completion_logprobs(reply.table, [d.logprob for d in deltas], offsets[index])
                offsets[index] += len(text)
                finish = deltas[-1].finish_reason
                yield sse(
                    {
                        **head,
                        "choices": [
                            {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}
                        ],
                    }
                )
    except EngineClosed as exc:
        yield sse(error_body(str(exc), "server_error", "engine_failure"))
        yield DONE
        return
    if include_usage:
        yield sse({**head, "choices": [], "usage": choices.usage().model_dump()})
    yield DONE


# -- chat completions -----------------------------------------------------------------------------
def chat_logprob_entries(table: TokenTable, entries: Sequence[TokenLogprob | None]) -> list[dict]:
    def one(token: int, logprob: float) -> dict:
        return {
            "token": table.text(token),
            "logprob": max(logprob, LOGPROB_FLOOR),
            "bytes": list(table.bytes[token]),
        }

    return [
        {**one(e.token_id, e.logprob), "top_logprobs": [one(t, lp) for t, lp in e.top]}
        for e in entries
        if e is not None
    ]


async def chat_response(reply: Reply, choices: Choices) -> ChatCompletionResponse:
    async for _ in choices.deltas():
        pass
    want_logprobs = choices.streams[0].request.params.logprobs is not None
    out = []
    for index, a in enumerate(choices.assemblers):
        logprobs = (
            ChatLogprobs(content=chat_logprob_entries(reply.table, a.logprobs)) if want_logprobs else None
        )
        out.append(
            ChatChoice(
                index=index, message={"content": a.text}, logprobs=logprobs, finish_reason=a.finish_reason
            )
        )
    return ChatCompletionResponse(
        id=reply.id, created=reply.created, model=reply.model, choices=out, usage=choices.usage()
    )


async def chat_events(reply: Reply, choices: Choices, include_usage: bool) -> AsyncIterator[bytes]:
    head = {"id": reply.id, "object": "chat.completion.chunk", "created": reply.created, "model": reply.model}
    want_logprobs = choices.streams[0].request.params.logprobs is not None

    def chunk(index: int, delta: dict, finish: str | None = None, logprobs: dict | None = None) -> bytes:
        return sse(
            {
                **head,
                "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
            }
        )

    for index in range(len(choices.assemblers)):
        yield chunk(index, {"role": "assistant", "content": ""})
    try:
        async for step in choices.deltas():
            for index, deltas in step.items():
                text = "".join(d.text for d in deltas)
                logprobs = None
                if want_logprobs:
                    logprobs = {
                        "content": chat_logprob_entries(reply.table, [d.logprob for d in deltas]),
                        "refusal": None,
                    }
                if text or logprobs:
                    yield chunk(index, {"content": text}, logprobs=logprobs)
                if deltas[-1].finish_reason is not None:
                    yield chunk(index, {}, deltas[-1].finish_reason)
    except EngineClosed as exc:
        yield sse(error_body(str(exc), "server_error", "engine_failure"))
        yield DONE
        return
    if include_usage:
        yield sse({**head, "choices": [], "usage": choices.usage().model_dump()})
    yield DONE


# -- embeddings -----------------------------------------------------------------------------------
def embedding_response(
    vectors: np.ndarray, model: str, prompt_tokens: int, encoding: str
) -> EmbeddingResponse:
    data = []
    for index, vector in enumerate(vectors):
        if encoding == "base64":
            value: list[float] | str = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        else:
            value = vector.tolist()
        data.append(EmbeddingData(index=index, embedding=value))
    usage = EmbeddingUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens)
    return EmbeddingResponse(data=data, model=model, usage=usage)
