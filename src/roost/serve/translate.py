"""OpenAI request bodies → what the engine takes: prompts as token ids and SamplingParams. Anything
the engine cannot honour is a `BadRequest` naming the parameter (HTTP 400), never a silent default."""

from __future__ import annotations

from roost.serve.engine import Engine
from roost.serve.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, SamplingFields
from roost.serve.sampling import SamplingParams


class BadRequest(ValueError):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def sampling_params(
    body: SamplingFields, *, max_tokens: int, logprobs: int | None = None, prompt_logprobs: int | None = None
) -> SamplingParams:
    bias: dict[int, float] = {}
    for key, value in (body.logit_bias or {}).items():
        if not key.strip().isdigit():
            raise BadRequest(f"logit_bias keys must be token ids, not {key!r}", "logit_bias")
        bias[int(key)] = value
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        top_k=max(body.top_k or 0, 0),
        min_p=body.min_p or 0.0,
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        repetition_penalty=body.repetition_penalty or 1.0,
        logit_bias=bias,
        stop=stop,
        stop_token_ids=tuple(body.stop_token_ids or ()),
        ignore_eos=body.ignore_eos,
        n=body.n,
        seed=body.seed,
        logprobs=logprobs,
        prompt_logprobs=prompt_logprobs,
    )


def token_lists(value: str | list, engine: Engine) -> list[list[int]]:
    """OpenAI's four prompt shapes (text, texts, token ids, lists of token ids) as token id lists."""
    if isinstance(value, str):
        return [engine.encode(value)]
    if all(isinstance(v, str) for v in value):
        return [engine.encode(v) for v in value]
    if all(isinstance(v, int) for v in value):
        return [list(value)]
    return [list(v) for v in value]


def completion_request(body: CompletionRequest, engine: Engine) -> tuple[list[list[int]], SamplingParams]:
    if body.suffix:
        raise BadRequest("suffix (insertion) is not supported by this model", "suffix")
    if body.best_of is not None and body.best_of != body.n:
        raise BadRequest("best_of must equal n (roost returns every sampled choice)", "best_of")
    prompts = token_lists(body.prompt, engine)
    if any(not p for p in prompts):
        raise BadRequest("a prompt is empty", "prompt")
    longest = max(len(p) for p in prompts)
    max_tokens = body.max_tokens if body.max_tokens is not None else max(engine.max_len - longest, 1)
    prompt_logprobs = body.logprobs if body.echo else None
    return prompts, sampling_params(
        body, max_tokens=max_tokens, logprobs=body.logprobs, prompt_logprobs=prompt_logprobs
    )


def chat_messages(body: ChatCompletionRequest) -> list[dict[str, str]]:
    """The conversation in the roles roost's chat template has (developer is OpenAI's new system)."""
    messages = []
    for i, message in enumerate(body.messages):
        if message.role in ("tool", "function"):
            raise BadRequest(
                f"messages[{i}]: role {message.role!r} needs tool calling, which this model lacks", "messages"
            )
        content = message.content
        if isinstance(content, list):
            if any(part.type != "text" for part in content):
                raise BadRequest(f"messages[{i}]: only text content parts are supported", "messages")
            content = "".join(part.text or "" for part in content)
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": content or ""})
    return messages


def chat_request(body: ChatCompletionRequest, engine: Engine) -> tuple[list[int], SamplingParams]:
    if body.tools:
        raise BadRequest("tools are not supported by this model", "tools")
    if body.response_format and body.response_format.get("type", "text") != "text":
        raise BadRequest("only response_format {'type': 'text'} is supported", "response_format")
    if body.top_logprobs is not None and not body.logprobs:
        raise BadRequest("top_logprobs needs logprobs: true", "top_logprobs")
    prompt = engine.encode_chat(chat_messages(body))
    limit = body.max_completion_tokens or body.max_tokens
    max_tokens = limit if limit is not None else max(engine.max_len - len(prompt), 1)
    logprobs = (body.top_logprobs or 0) if body.logprobs else None
    return prompt, sampling_params(body, max_tokens=max_tokens, logprobs=logprobs)


def embedding_inputs(body: EmbeddingRequest, engine: Engine) -> list[list[int]]:
    if body.dimensions is not None and body.dimensions != engine.model.config.dim:
        raise BadRequest(f"this model's embeddings have {engine.model.config.dim} dimensions", "dimensions")
    return token_lists(body.input, engine)
