"""The generation engine: continuous batching over a slot KV cache, on a thread of its own.

Requests join and leave between steps. Each step is one forward: the next token of every running
sequence, and, when requests wait, as many whole prompts as free slots and the prefill budget allow,
laid out flat after them (no padding); the prompts' first tokens are sampled with the batch's next
ones. A finished sequence's slot is filled by moving the last running one into it, so the batch
always occupies slots 0..B-1 (see kv_cache).

Only the engine thread touches the model and the cache. Other threads talk to it through an inbox
(submit, abort, jobs such as embedding) and hear back through a *sink*: per step, each sink gets one
call with every output of its requests, so an asyncio server is woken once per step, not per token.
Tokenization, detokenization and HTTP all happen on the callers' side.

Public API (what the HTTP layer, search and ads use):
    engine = Engine.from_workspace(ws)                  # or Engine(model, tokenizer, config, name=...)
    engine.generate(["prompt", ...], SamplingParams())  # blocking → list[Generation]
    engine.chat([{"role": "user", "content": "hi"}])    # blocking → Generation
    engine.embed(["text", ...])                         # blocking → np.ndarray (N, D), unit rows
    stream = engine.submit(prompt_ids, params)          # from asyncio: `async for outputs in stream`
    engine.close()
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import torch
from tokenizers import Tokenizer

from roost.model.llama import Llama
from roost.serve.config import ServeConfig
from roost.serve.detokenize import TokenTable
from roost.serve.embeddings import embed_batch, length_batches
from roost.serve.graphs import DecodeRunner
from roost.serve.kv_cache import SlotKVCache
from roost.serve.loader import load_served_model
from roost.serve.metrics import ServeMetrics
from roost.serve.outputs import ChoiceAssembler
from roost.serve.sampling import SamplingParams, SequenceSampler, TokenLogprob, prompt_logprobs, sample
from roost.tokenizer import END_OF_POST, END_OF_TURN, PAD, format_chat
from roost.workspace import Workspace

log = logging.getLogger(__name__)


class EngineFull(Exception):
    """The queue is at its bound; the caller should retry later (HTTP 429)."""


class EngineClosed(Exception):
    """The engine was closed, or its thread died."""


@dataclass(frozen=True, slots=True)
class SequenceOutput:
    """What one step produced for one choice: a token, its logprobs if asked, and whether it ended."""

    index: int
    token_id: int
    logprob: TokenLogprob | None
    finish_reason: str | None  # "stop" (end token), "length" (max_tokens or context), None: runs on


@dataclass(frozen=True, slots=True)
class EngineFailure:
    """A step failed; the request ends with this message (a mid-stream error for HTTP)."""

    message: str


class Request:
    """One submitted prompt with its `n` choices; what the submitting side holds and reads from."""

    def __init__(self, prompt_ids: list[int], params: SamplingParams, sink: _Sink) -> None:
        self.id = uuid.uuid4().hex
        self.prompt_ids = prompt_ids
        self.params = params
        self.sink = sink
        self.channel = sink.channel()
        self.arrival = time.perf_counter()
        self.prompt_logprobs: list[TokenLogprob | None] | None = None  # set before the first output
        self.open_choices = params.n  # engine thread only


class _Sink:
    """Where a group of requests' outputs go: one `deliver` call per engine step."""

    def channel(self) -> Any:
        raise NotImplementedError

    def deliver(self, batch: list[tuple[Request, object]]) -> None:
        raise NotImplementedError


class _AsyncSink(_Sink):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def channel(self) -> asyncio.Queue:
        return asyncio.Queue()

    def deliver(self, batch: list[tuple[Request, object]]) -> None:
        self.loop.call_soon_threadsafe(_fan_out, batch)


def _fan_out(batch: list[tuple[Request, object]]) -> None:
    for request, item in batch:
        request.channel.put_nowait(item)


class _ThreadSink(_Sink):
    def channel(self) -> queue.SimpleQueue:
        return queue.SimpleQueue()

    def deliver(self, batch: list[tuple[Request, object]]) -> None:
        for request, item in batch:
            request.channel.put(item)


class RequestStream:
    """An asyncio view of a submitted request: `async for outputs in stream` yields the
    SequenceOutputs of each step (several steps' worth at once when the reader fell behind) until
    every choice has ended, and raises EngineClosed if the engine fails. `abort(index)` ends one
    choice, `abort()` the whole request; leaving the loop early aborts what is still running."""

    def __init__(self, engine: Engine, request: Request) -> None:
        self.engine, self.request = engine, request
        self._open = set(range(request.params.n))

    @property
    def prompt_tokens(self) -> int:
        return len(self.request.prompt_ids)

    def abort(self, index: int | None = None) -> None:
        """Stop one choice, or all; the engine frees their slots at its next step."""
        closing = self._open if index is None else self._open & {index}
        if closing:
            self.engine.abort(self.request.id, index)
            self._open -= closing

    async def __aiter__(self) -> AsyncIterator[list[SequenceOutput]]:
        channel: asyncio.Queue = self.request.channel
        try:
            while self._open:
                items = [await channel.get()]
                while not channel.empty():
                    items.append(channel.get_nowait())
                outputs: list[SequenceOutput] = []
                for item in items:
                    if isinstance(item, EngineFailure):
                        self._open.clear()
                        raise EngineClosed(item.message)
                    outputs.extend(o for o in item if o.index in self._open)
                self._open -= {o.index for o in outputs if o.finish_reason is not None}
                if outputs:
                    yield outputs
        finally:
            self.abort()


@dataclass
class Choice:
    """One finished completion of a blocking `generate`."""

    index: int
    text: str
    token_ids: list[int]
    finish_reason: str
    logprobs: list[TokenLogprob] | None = None


@dataclass
class Generation:
    prompt_tokens: int
    choices: list[Choice] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The first choice's text (most callers ask for one)."""
        return self.choices[0].text


class _Sequence:
    """One running choice: where it is in its slot and what it has produced (engine thread only)."""

    __slots__ = ("generated", "index", "last_time", "last_token", "pos", "request", "sampler", "slot")

    def __init__(self, request: Request, index: int, sampler: SequenceSampler, slot: int) -> None:
        self.request, self.index, self.sampler, self.slot = request, index, sampler, slot
        self.pos = len(request.prompt_ids)  # tokens whose keys and values are in the cache
        self.last_token = -1  # sampled, not yet in the cache
        self.generated = 0
        self.last_time = 0.0


class Engine:
    def __init__(
        self,
        model: Llama,
        tokenizer: Tokenizer,
        config: ServeConfig | None = None,
        *,
        name: str = "roost",
        metrics: ServeMetrics | None = None,
    ) -> None:
        self.config = config or ServeConfig()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.metrics = metrics or ServeMetrics()
        self.vocab_size = model.config.vocab_size
        if tokenizer.get_vocab_size() > self.vocab_size:
            raise ValueError(
                f"tokenizer has {tokenizer.get_vocab_size()} tokens but the model only {self.vocab_size}"
            )
        self.tokens = TokenTable(tokenizer, self.vocab_size)
        weight = model.tok_embeddings.weight
        self.device, self.dtype = weight.device, weight.dtype
        self.max_len = min(self.config.max_seq_len or model.config.max_seq_len, model.config.max_seq_len)
        self.end_ids = frozenset(
            i
            for i in (tokenizer.token_to_id(END_OF_POST), tokenizer.token_to_id(END_OF_TURN))
            if i is not None
        )
        self.pad_id = tokenizer.token_to_id(PAD) or 0
        self.cache = SlotKVCache(model.config, self.config.max_batch, self.max_len, self.device, self.dtype)
        self.decoder = DecodeRunner(model, self.cache, use_graphs=self.config.cuda_graphs)
        self.decoder.warm_up()  # CUDA graphs are captured now, before any request (no-op elsewhere)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(0)

        self._inbox: deque[tuple] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0  # requests submitted and not finished (admission control)
        self._waiting: deque[Request] = deque()
        self._running: list[_Sequence] = []
        self._admitting: list[Request] = []  # popped from waiting, not yet running (during prefill)
        self._closed = False
        self._thread_sink = _ThreadSink()
        self._async_sinks: dict[asyncio.AbstractEventLoop, _AsyncSink] = {}
        self._thread = threading.Thread(target=self._run, name="roost-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_workspace(cls, ws: Workspace, source: str | None = None, **overrides: Any) -> Engine:
        """The engine for a workspace: [serve] from roost.toml (fields in `overrides` win) and the
        model `source` (a run name or directory, or an export directory; default [serve] model, else
        the newest run)."""
        config = ws.config("serve", ServeConfig)
        if overrides:  # through convert, so overrides are checked like the file's values
            config = msgspec.convert({**msgspec.to_builtins(config), **overrides}, ServeConfig)
        served = load_served_model(ws, source or config.model, device=config.device, dtype=config.dtype)
        return cls(served.model, served.tokenizer, config, name=config.served_name or served.name)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def close(self) -> None:
        """Stop the engine thread; requests still in it end with an EngineFailure."""
        self._closed = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- text ------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Token ids of a conversation in roost's chat template, ending with the assistant's turn."""
        return self.encode(format_chat(messages))

    def check(self, prompt_ids: Sequence[int], params: SamplingParams) -> None:
        """Raise ValueError (with the reason) for a request this engine cannot run."""
        params.check(self.vocab_size)
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        if not all(0 <= t < self.vocab_size for t in prompt_ids):
            raise ValueError(f"prompt token ids must be in 0..{self.vocab_size - 1}")
        if params.n > self.config.max_batch:
            raise ValueError(f"n={params.n} is more than this server's {self.config.max_batch} slots")
        if len(prompt_ids) + params.max_tokens > self.max_len:
            raise ValueError(
                f"this model's context is {self.max_len} tokens; the prompt has {len(prompt_ids)} and "
                f"max_tokens is {params.max_tokens}: shorten the prompt or lower max_tokens"
            )

    # -- generation ------------------------------------------------------------------------------
    def submit(self, prompt_ids: list[int], params: SamplingParams) -> RequestStream:
        """Queue a request from inside a running asyncio loop; raises ValueError for a request that
        cannot run and EngineFull when the queue is at its bound."""
        loop = asyncio.get_running_loop()
        sink = self._async_sinks.get(loop)
        if sink is None:
            sink = self._async_sinks[loop] = _AsyncSink(loop)
        return RequestStream(self, self._enqueue(prompt_ids, params, sink))

    def generate(
        self, prompts: Sequence[str | list[int]], params: SamplingParams | None = None
    ) -> list[Generation]:
        """Complete each prompt (text, or token ids), blocking until all are done; they run together,
        as many at a time as the queue holds (more wait for earlier ones to finish). Raises
        ValueError, before running any, if a prompt cannot run; EngineFull only when the queue is
        full of other callers' requests."""
        params = params or SamplingParams()
        prompt_ids = [self.encode(p) if isinstance(p, str) else list(p) for p in prompts]
        for ids in prompt_ids:
            self.check(ids, params)
        results: list[Generation | None] = [None] * len(prompt_ids)
        pending: deque[tuple[int, Request]] = deque()
        try:
            for i, ids in enumerate(prompt_ids):
                while True:
                    try:
                        pending.append((i, self._enqueue(ids, params, self._thread_sink)))
                        break
                    except EngineFull:
                        if not pending:
                            raise
                        j, request = pending.popleft()
                        results[j] = self._collect(request)
            while pending:
                j, request = pending[0]
                results[j] = self._collect(request)
                pending.popleft()
        finally:
            for _, request in pending:  # an exception: stop what is still queued or running
                self.abort(request.id)
        return results  # type: ignore[return-value]

    def chat(self, messages: Sequence[dict[str, str]], params: SamplingParams | None = None) -> Generation:
        """The assistant's reply to a conversation (roles system/user/assistant), blocking; by
        default sampled at temperature 1 with room up to the end of the context."""
        prompt = self.encode_chat(messages)
        params = params or SamplingParams(max_tokens=max(self.max_len - len(prompt), 1))
        return self.generate([prompt], params)[0]

    def abort(self, request_id: str, index: int | None = None) -> None:
        """Stop a request (or one of its choices), waiting or running; unknown ids are ignored."""
        self._post(("abort", request_id, index))

    def stats(self) -> dict[str, int]:
        return {"running": len(self._running), "waiting": len(self._waiting), "in_flight": self._in_flight}

    # -- embeddings ------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str], *, truncate: bool = True) -> np.ndarray:
        """Unit-length embeddings (N, D) float32 of `texts`, blocking. Texts longer than the context
        are cut to it (`truncate=False`: ValueError instead); an empty text embeds as the end token."""
        return self.embed_tokens([self.encode(t) for t in texts], truncate=truncate)

    def embed_tokens(self, token_lists: Sequence[Sequence[int]], *, truncate: bool = True) -> np.ndarray:
        futures = self._embed_jobs(token_lists, truncate)
        return self._join_embeddings(len(token_lists), [(rows, f.result()) for rows, f in futures])

    async def embed_async(
        self, token_lists: Sequence[Sequence[int]], *, truncate: bool = False
    ) -> np.ndarray:
        futures = self._embed_jobs(token_lists, truncate)
        done = [(rows, await asyncio.wrap_future(f)) for rows, f in futures]
        return self._join_embeddings(len(token_lists), done)

    def _embed_jobs(
        self, token_lists: Sequence[Sequence[int]], truncate: bool
    ) -> list[tuple[list[int], Future]]:
        end = min(self.end_ids) if self.end_ids else self.pad_id
        prepared = []
        for ids in token_lists:
            ids = list(ids) or [end]
            if len(ids) > self.max_len:
                if not truncate:
                    raise ValueError(
                        f"an input has {len(ids)} tokens; this model's context is {self.max_len}"
                    )
                ids = ids[: self.max_len]
            if not all(0 <= t < self.vocab_size for t in ids):
                raise ValueError(f"token ids must be in 0..{self.vocab_size - 1}")
            prepared.append(ids)
        # One job per forward, so decode steps of running requests go on between the batches.
        jobs = []
        for rows in length_batches([len(p) for p in prepared], self.config.embed_batch_tokens):
            batch = [prepared[r] for r in rows]
            jobs.append((rows, self._call(lambda batch=batch: embed_batch(self.model, batch, self.pad_id))))
        return jobs

    def _join_embeddings(self, count: int, parts: list[tuple[list[int], np.ndarray]]) -> np.ndarray:
        out = np.empty((count, self.model.config.dim), dtype=np.float32)
        for rows, values in parts:
            out[rows] = values
        return out

    # -- the caller's side -------------------------------------------------------------------------
    def _enqueue(self, prompt_ids: list[int], params: SamplingParams, sink: _Sink) -> Request:
        if not self.alive:
            raise EngineClosed("the engine is not running")
        self.check(prompt_ids, params)
        with self._lock:
            if self._in_flight >= self.config.max_batch + self.config.max_queue:
                self.metrics.rejected.inc()
                raise EngineFull(
                    f"{self._in_flight} requests in flight; retry in {self.config.retry_after_s} s"
                )
            self._in_flight += 1
        request = Request(list(prompt_ids), params, sink)
        self._post(("submit", request))
        return request

    def _collect(self, request: Request) -> Generation:
        """Wait for a thread-sink request's outputs and assemble its choices."""
        choices = [ChoiceAssembler(self.tokens, request.params.stop) for _ in range(request.params.n)]
        while not all(c.done for c in choices):
            item = request.channel.get()
            if isinstance(item, EngineFailure):
                raise EngineClosed(item.message)
            for out in item:
                choice = choices[out.index]
                if choice.add(out.token_id, out.logprob, out.finish_reason) and choice.stopped_by_text:
                    self.abort(request.id, out.index)
        return Generation(
            len(request.prompt_ids),
            [
                Choice(i, c.text, c.token_ids, c.finish_reason or "stop", c.logprobs or None)
                for i, c in enumerate(choices)
            ],
        )

    def _call(self, fn: Callable[[], Any]) -> Future:
        """Run `fn` on the engine thread between steps."""
        if not self.alive:
            raise EngineClosed("the engine is not running")
        future: Future = Future()
        self._post(("job", fn, future))
        return future

    def _post(self, message: tuple) -> None:
        self._inbox.append(message)
        self._wake.set()

    # -- the engine thread -----------------------------------------------------------------------
    def _run(self) -> None:
        with torch.inference_mode():
            while not self._closed:
                self._wake.clear()
                jobs = self._drain_inbox()
                for fn, future in jobs:
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn())
                        except Exception as exc:  # the caller gets the exception
                            future.set_exception(exc)
                if not self._running and not self._waiting:
                    self._publish_sizes()
                    if not jobs:
                        self._wake.wait()
                    continue
                outbox: dict[Request, list[SequenceOutput]] = {}
                failures: list[tuple[Request, object]] = []
                try:
                    self._step(outbox)
                except Exception as exc:  # e.g. out of memory: fail these requests, keep serving
                    log.exception("engine step failed")
                    failures = self._fail_running(f"generation failed: {type(exc).__name__}: {exc}")
                self._deliver([*outbox.items(), *failures])
                self._publish_sizes()
        self._shutdown()

    def _publish_sizes(self) -> None:
        self.metrics.running.set(len({s.request for s in self._running}))
        self.metrics.waiting.set(len(self._waiting))

    def _drain_inbox(self) -> list[tuple[Callable[[], Any], Future]]:
        jobs = []
        while self._inbox:
            message = self._inbox.popleft()
            if message[0] == "submit":
                self._waiting.append(message[1])
            elif message[0] == "abort":
                self._abort(message[1], message[2])
            else:
                jobs.append((message[1], message[2]))
        return jobs

    def _abort(self, request_id: str, index: int | None) -> None:
        for request in self._waiting:
            if request.id == request_id:
                self._waiting.remove(request)
                self._finish_request(request, "abort")
                return
        doomed = [
            s for s in self._running if s.request.id == request_id and (index is None or s.index == index)
        ]
        self._remove([(s, "abort") for s in doomed])

    def _admit(self) -> list[Request]:
        """Take waiting requests, in arrival order, while their choices fit the free slots and their
        prompts the step's prefill budget (one prompt longer than the budget goes alone)."""
        free = self.config.max_batch - len(self._running)
        batch: list[Request] = []
        tokens = 0
        while self._waiting and self._waiting[0].params.n <= free:
            request = self._waiting[0]
            if batch and tokens + len(request.prompt_ids) > self.config.max_prefill_tokens:
                break
            batch.append(self._waiting.popleft())
            tokens += len(request.prompt_ids)
            free -= request.params.n
        return batch

    def _step(self, outbox: dict[Request, list[SequenceOutput]]) -> None:
        """One forward: a decode step of the running batch, with any admitted prompts prefilled in
        the same forward (flat, see kv_cache.MixedView), so an arrival costs its own tokens' compute
        but no extra read of the weights and no pause for the running sequences."""
        batch = self._admit()
        if not batch:
            self._decode(outbox)
            return
        self._admitting = batch
        self._decode_and_prefill(batch, outbox)
        self._admitting = []

    def _decode_and_prefill(self, batch: list[Request], outbox: dict[Request, list[SequenceOutput]]) -> None:
        now = time.perf_counter()
        running = list(self._running)
        B = len(running)
        tokens = [s.last_token for s in running]
        positions = [s.pos for s in running]
        first_slots, lengths, starts, slot = [], [], [], B
        for request in batch:
            T = len(request.prompt_ids)
            first_slots.append(slot)
            lengths.append(T)
            starts.append(len(tokens))
            tokens += request.prompt_ids
            positions += range(T)
            slot += request.params.n
            self.metrics.queue_time.observe(now - request.arrival)
            self.metrics.prompt_tokens.inc(T)
        view = self.cache.mixed(positions[:B], first_slots, lengths)
        positions_1N = torch.tensor([positions], device=self.device)
        hidden_ND = self.model.hidden_states(
            torch.tensor([tokens], device=self.device), positions_1N, cache=view
        )[0]

        new: list[_Sequence] = []
        rows = list(range(B))  # the row of hidden_ND whose logits each sequence samples from
        for request, first, start, T in zip(batch, first_slots, starts, lengths, strict=True):
            if request.params.prompt_logprobs is not None:
                prompt_logits = self.model.output(hidden_ND[start : start + T])
                request.prompt_logprobs = prompt_logprobs(
                    prompt_logits, request.prompt_ids, request.params.prompt_logprobs
                )
            for index in range(request.params.n):
                if index:  # the n choices share one prefill: copy its keys and values
                    self.cache.copy_slot(first, first + index, T)
                sampler = SequenceSampler(
                    request.params, request.prompt_ids, index, self.vocab_size, self.device
                )
                new.append(_Sequence(request, index, sampler, first + index))
                rows.append(start + T - 1)
        logits_RV = self.model.output(hidden_ND[torch.tensor(rows, device=self.device)])
        for s in running:
            s.pos += 1
        self._running.extend(new)
        seqs = running + new
        tokens_out, logprobs = sample(logits_RV, [s.sampler for s in seqs], self._generator)
        self._advance(seqs, tokens_out, logprobs, outbox)

    def _decode(self, outbox: dict[Request, list[SequenceOutput]]) -> None:
        running = self._running
        logits_BV = self.decoder.step([s.last_token for s in running], [s.pos for s in running])
        tokens, logprobs = sample(logits_BV, [s.sampler for s in running], self._generator)
        for s in running:
            s.pos += 1
        self._advance(list(running), tokens, logprobs, outbox)

    def _advance(
        self,
        seqs: list[_Sequence],
        tokens: list[int],
        logprobs: list[TokenLogprob | None],
        outbox: dict[Request, list[SequenceOutput]],
    ) -> None:
        """Record each sequence's new token, send it, and retire the sequences that ended."""
        now = time.perf_counter()
        metrics = self.metrics
        finished = []
        for s, token, logprob in zip(seqs, tokens, logprobs, strict=True):
            params = s.request.params
            s.last_token = token
            s.generated += 1
            reason = None
            if (token in self.end_ids and not params.ignore_eos) or token in params.stop_token_ids:
                reason = "stop"
            elif s.generated >= params.max_tokens or s.pos >= self.max_len:
                reason = "length"
            if s.generated == 1:
                metrics.ttft.observe(now - s.request.arrival)
            else:
                metrics.itl.observe(now - s.last_time)
            s.last_time = now
            outbox.setdefault(s.request, []).append(SequenceOutput(s.index, token, logprob, reason))
            if reason:
                finished.append((s, reason))
        metrics.generation_tokens.inc(len(seqs))
        self._remove(finished)

    def _remove(self, ended: Iterable[tuple[_Sequence, str]]) -> None:
        """Take sequences out of the batch, refilling each hole with the last running sequence."""
        for s, reason in sorted(ended, key=lambda item: item[0].slot, reverse=True):
            last = self._running.pop()
            if last is not s:
                self.cache.copy_slot(last.slot, s.slot, last.pos)
                last.slot = s.slot
                self._running[s.slot] = last
            request = s.request
            request.open_choices -= 1
            if request.open_choices == 0:
                self._finish_request(request, reason)

    def _finish_request(self, request: Request, reason: str) -> None:
        request.open_choices = 0
        self.metrics.e2e.observe(time.perf_counter() - request.arrival)
        self.metrics.finished.labels(reason).inc()
        with self._lock:
            self._in_flight -= 1

    def _fail_running(self, message: str) -> list[tuple[Request, object]]:
        """End every request in the batch (and any being admitted) with an EngineFailure."""
        failed = {s.request for s in self._running} | set(self._admitting)
        self._running.clear()
        self._admitting = []
        for request in failed:
            self._finish_request(request, "error")
        return [(request, EngineFailure(message)) for request in failed]

    def _deliver(self, items: Iterable[tuple[Request, object]]) -> None:
        by_sink: dict[_Sink, list[tuple[Request, object]]] = {}
        for request, item in items:
            by_sink.setdefault(request.sink, []).append((request, item))
        for sink, batch in by_sink.items():
            try:
                sink.deliver(batch)
            except RuntimeError:  # the caller's event loop has closed: nobody is listening
                for request, _ in batch:
                    self._post(("abort", request.id, None))

    def _shutdown(self) -> None:
        leftover = [*self._waiting, *{s.request for s in self._running}]
        self._waiting.clear()
        self._running.clear()
        while self._inbox:
            message = self._inbox.popleft()
            if message[0] == "submit":
                leftover.append(message[1])
            elif message[0] == "job":
                message[2].set_exception(EngineClosed("the engine was closed"))
        self._deliver((request, EngineFailure("the engine was closed")) for request in leftover)
