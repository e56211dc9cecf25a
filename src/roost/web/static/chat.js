// Chat: POST /v1/chat/completions with stream: true, read as server-sent events, each content
// delta appended to the reply as it arrives. Stop aborts the request, which frees its slot.

import { ApiError, request } from "./api.js";
import { el, fmt } from "./ui.js";

const form = document.getElementById("chat-form");
const input = document.getElementById("chat-input");
const list = document.getElementById("messages");
const send = document.getElementById("chat-send");
const stop = document.getElementById("chat-stop");
const meta = document.getElementById("chat-meta");
const temperature = document.getElementById("temperature");
const maxTokens = document.getElementById("max-tokens");
const system = document.getElementById("system");

const CONTEXT_TURNS = 6; // messages of the conversation sent with each question: a small model's context is short
let history = []; // [{role, content}] of this conversation
let running = null; // the AbortController of the reply being streamed

export function initChat() {
  temperature.addEventListener("input", () => { document.getElementById("temp-out").value = temperature.value; });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && !running) ask(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", () => running?.abort());
  document.getElementById("chat-clear").addEventListener("click", () => {
    running?.abort();
    history = [];
    list.replaceChildren();
    meta.textContent = "";
    input.focus();
  });
}

export function showChat(model, focusInput) {
  if (model) document.getElementById("chat-model").textContent = model;
  if (focusInput) input.focus();
}

function bubble(role, text = "") {
  const node = el("li", { class: `msg ${role}` }, text);
  list.append(node);
  list.scrollTop = list.scrollHeight;
  return node;
}

async function ask(text) {
  input.value = "";
  history.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant");
  reply.classList.add("streaming");
  reply.setAttribute("aria-busy", "true");
  reply.dataset.chunks = "0";
  running = new AbortController();
  send.disabled = true;
  stop.hidden = false;
  const started = performance.now();
  let firstAt = null;
  let usage = null;
  let finish = null;
  const recent = history.slice(-CONTEXT_TURNS);
  const messages = system.value.trim() ? [{ role: "system", content: system.value.trim() }, ...recent] : recent;
  try {
    const response = await request("/v1/chat/completions", {
      method: "POST",
      signal: running.signal,
      body: {
        messages,
        stream: true,
        stream_options: { include_usage: true },
        temperature: Number(temperature.value),
        max_tokens: Number(maxTokens.value) || undefined,
      },
    });
    for await (const event of serverSentEvents(response)) {
      if (event.error) throw new ApiError(500, event.error.message || "generation failed");
      if (event.usage) usage = event.usage;
      const choice = event.choices?.[0];
      if (!choice) continue;
      if (choice.delta?.content) {
        firstAt ??= performance.now();
        reply.append(choice.delta.content);
        reply.dataset.chunks = String(Number(reply.dataset.chunks) + 1);
        list.scrollTop = list.scrollHeight;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    history.push({ role: "assistant", content: reply.textContent });
    const seconds = (performance.now() - started) / 1000;
    const tokens = usage?.completion_tokens;
    meta.textContent = [
      tokens !== undefined ? `${fmt.int(tokens)} tokens in ${seconds.toFixed(1)} s` : null,
      tokens && firstAt ? `${(tokens / ((performance.now() - firstAt) / 1000 || 1)).toFixed(1)} tokens/s` : null,
      firstAt ? `first token after ${Math.round(firstAt - started)} ms` : null,
      finish === "length" ? "stopped at the length limit" : null,
    ].filter(Boolean).join(" · ");
  } catch (error) {
    if (error.name === "AbortError") {
      history.push({ role: "assistant", content: reply.textContent });
      meta.textContent = "Stopped.";
    } else {
      history.pop();
      reply.classList.add("error");
      reply.textContent = error.message;
    }
  } finally {
    reply.classList.remove("streaming");
    reply.setAttribute("aria-busy", "false");
    reply.dataset.done = "true";
    running = null;
    send.disabled = false;
    stop.hidden = true;
    input.focus();
  }
}

/** The JSON payloads of an SSE response, as they arrive; ends at `data: [DONE]`. */
async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}
