"""`roost chat`: a conversation with a running roost server (or any OpenAI-compatible one), through
OpenAI's own client, the reply streamed as it is generated."""

from __future__ import annotations

from collections.abc import Iterator

import openai


class ChatSession:
    """The conversation so far; `reply(text)` streams the assistant's answer and remembers it."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        model: str | None = None,
        system: str | None = None,
        temperature: float = 0.7,
        max_tokens: int | None = None,
    ) -> None:
        self.client = openai.OpenAI(base_url=base_url.rstrip("/") + "/v1", api_key=api_key, max_retries=3)
        self.model = model or self.client.models.list().data[0].id
        self.messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        self.temperature, self.max_tokens = temperature, max_tokens

    def reply(self, text: str) -> Iterator[str]:
        self.messages.append({"role": "user", "content": text})
        stream = self.client.chat.completions.create(
            model=self.model,
            messages=self.messages,  # type: ignore[arg-type]
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stream=True,
        )
        parts = []
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    yield choice.delta.content
        self.messages.append({"role": "assistant", "content": "".join(parts)})
