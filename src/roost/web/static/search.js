// Search: results with filters (GET /search/query), the cited answer (POST /search/answer), query
// suggestions as one types (GET /search/suggest) and trending hashtags (GET /search/trending).

import { api } from "./api.js";
import { clear, el, fmt, notice, postCard } from "./ui.js";

const form = document.getElementById("search-form");
const input = document.getElementById("q");
const results = document.getElementById("results");
const meta = document.getElementById("results-meta");
const answerBox = document.getElementById("answer");
const answerBody = document.getElementById("answer-body");
const suggestions = document.getElementById("suggestions");
const trending = document.getElementById("trending");

let searchId = 0; // a newer search makes the older one's late answers irrelevant

export function initSearch() {
  // On a phone the filters start folded, so the results are not pushed below the fold.
  if (window.matchMedia("(max-width: 640px)").matches) form.querySelector("details.filters").open = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    runSearch();
  });
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 180);
  });
}

export async function showSearch(focusInput) {
  if (focusInput && !input.value) input.focus();
  if (!trending.childElementCount) await loadTrending();
}

function filters() {
  const data = new FormData(form);
  const out = {};
  for (const name of ["lang", "hashtag", "has_links"]) {
    const value = (data.get(name) || "").trim().replace(/^#/, "");
    if (value) out[name] = name === "has_links" ? value === "true" : value;
  }
  // <input type=date> gives a day; the API takes UTC times (until is exclusive: the day after).
  const since = data.get("since");
  const until = data.get("until");
  if (since) out.since = `${since}T00:00:00Z`;
  if (until) out.until = new Date(Date.parse(`${until}T00:00:00Z`) + 86400000).toISOString().replace(".000", "");
  return out;
}

async function runSearch() {
  const id = ++searchId;
  const query = input.value.trim();
  const data = new FormData(form);
  const params = new URLSearchParams({ q: query, sort: data.get("sort"), mode: data.get("mode"), limit: "20" });
  const chosen = filters();
  for (const [name, value] of Object.entries(chosen)) params.set(name, String(value));
  notice("");
  meta.replaceChildren(el("span", { class: "spinner", "aria-hidden": "true" }), " Searching…");
  results.setAttribute("aria-busy", "true");
  const wantAnswer = data.get("answer") === "on" && query;
  answerBox.hidden = !wantAnswer;
  if (wantAnswer) {
    answerBox.setAttribute("aria-busy", "true");
    clear(answerBody, el("p", { class: "muted" }, el("span", { class: "spinner", "aria-hidden": "true" }),
      " Reading the posts and writing a summary…"));
    api("/search/answer", { method: "POST", body: { query, filters: chosen } })
      .then((answer) => id === searchId && renderAnswer(answer))
      .catch((error) => id === searchId && clear(answerBody, el("p", { class: "error-text" }, error.message)))
      .finally(() => answerBox.setAttribute("aria-busy", "false"));
  }
  try {
    const response = await api(`/search/query?${params}`);
    if (id !== searchId) return;
    renderResults(response);
  } catch (error) {
    if (id !== searchId) return;
    clear(meta);
    clear(results);
    notice(error.message, { error: true });
  } finally {
    results.setAttribute("aria-busy", "false");
  }
}

function retrieval(hit) {
  const parts = [];
  if (hit.lexical_rank) parts.push(`lexical #${hit.lexical_rank}`);
  if (hit.dense_rank) parts.push(`dense #${hit.dense_rank}`);
  if (hit.similarity !== null && hit.similarity !== undefined) parts.push(`similarity ${fmt.num(hit.similarity)}`);
  return el("span", { title: "how each retriever ranked this post, and its fused score" },
    `${parts.join(" · ")}${parts.length ? " · " : ""}score ${fmt.num(hit.score, 3)}`);
}

function renderResults(response) {
  const count = response.hits.length;
  meta.textContent = count
    ? `${count} post${count === 1 ? "" : "s"} in ${fmt.num(response.took_ms, 0)} ms (${response.mode}, ${response.sort})`
    : "No posts match. Try fewer words, another language, or no filters.";
  clear(results, response.hits.map((hit) => el("li", {}, postCard(hit.post, { extra: retrieval(hit) }))));
}

function renderAnswer(answer) {
  if (answer.abstained) {
    clear(answerBody, el("p", { class: "muted" }, answer.reason || "Not enough posts about this to summarise."));
    return;
  }
  const number = new Map(answer.posts.map((hit, i) => [hit.post.id, i + 1]));
  const anchor = (id) => `cite-${id}`;
  const sentences = answer.sentences.map((sentence) => el("p", { class: `sentence ${sentence.source}` },
    sentence.source === "quoted" ? `“${sentence.text}”` : sentence.text,
    sentence.citations.map((id) => el("a", {
      class: "cite", href: `#${anchor(id)}`, "aria-label": `source ${number.get(id)}`,
      onclick: (event) => {
        event.preventDefault();
        const target = document.getElementById(anchor(id));
        target.scrollIntoView({ behavior: "smooth", block: "nearest" });
        target.focus({ preventScroll: true });
        target.classList.add("flash");
        setTimeout(() => target.classList.remove("flash"), 1600);
      },
    }, `[${number.get(id)}]`))));
  const cited = el("div", { class: "cited" },
    el("h3", {}, "Sources"),
    el("ol", { class: "posts" }, answer.posts.map((hit) => el("li", {},
      postCard(hit.post, { id: anchor(hit.post.id), number: number.get(hit.post.id), compact: true })))));
  clear(answerBody, sentences, cited);
}

async function suggest() {
  const prefix = input.value.trim();
  if (prefix.length < 2) return;
  try {
    const items = await api(`/search/suggest?${new URLSearchParams({ prefix, limit: "8" })}`);
    clear(suggestions, items.map((s) => el("option", { value: s.text })));
  } catch {
    // suggestions are a convenience; a failure here shows up when the search itself runs
  }
}

async function loadTrending() {
  try {
    const trends = await api("/search/trending?window_minutes=180&limit=8");
    if (!trends.length) return;
    clear(trending, el("span", { class: "label" }, "Trending"), trends.map((t) => el("button", {
      class: "chip", type: "button", title: `${t.count} posts in the last 3 hours (about ${fmt.num(t.expected, 1)} expected)`,
      onclick: () => { input.value = `#${t.hashtag}`; runSearch(); },
    }, `#${t.hashtag}`)));
  } catch (error) {
    notice(error.message, { error: error.status !== 401 });
  }
}
