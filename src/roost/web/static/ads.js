// Ads studio: pick a campaign (GET /ads/campaigns), write copy from a brief with the model and see
// which variants passed and why the others failed (POST .../creatives/generate), the live
// conversations the campaign would be shown next to (GET .../preview), and a simulated day of ad
// traffic: spend by hour, and spend and CTR by campaign (GET /web/ads/day, POST /ads/simulate).

import { api } from "./api.js";
import { chart } from "./chart.js";
import { clear, el, fmt, notice, postCard, tile } from "./ui.js";

const root = document.getElementById("ads-root");
const LANGUAGES = { en: "English", es: "Spanish", fr: "French", de: "German" };
const TONES = ["friendly", "playful", "confident", "premium", "urgent"];

let campaigns = [];
let selected = null;
let built = false;
const parts = {};

export async function showAds() {
  if (!built) build();
  try {
    campaigns = await api("/ads/campaigns?status=active");
  } catch (error) {
    notice(error.message, { error: error.status !== 401 });
    return;
  }
  if (!campaigns.some((c) => c.id === selected?.id)) selected = campaigns[0] || null;
  renderCampaigns();
  if (selected) choose(selected);
  if (!parts.day.dataset.loaded) loadDay();
}

function build() {
  built = true;
  parts.list = el("ul", { class: "campaign-list", "aria-label": "Campaigns" });
  parts.detail = el("div", { class: "small muted" });
  parts.form = briefForm();
  parts.results = el("div", { "aria-live": "polite" });
  parts.preview = el("ol", { class: "posts", "aria-live": "polite" });
  parts.day = el("div", { class: "stack" });
  parts.dayButton = el("button", { class: "button", type: "button", onclick: simulateDay }, "Simulate another day");
  clear(root, el("div", { class: "ads" },
    el("div", { class: "stack" },
      el("section", { class: "card", "aria-labelledby": "ads-campaigns" },
        el("h2", { id: "ads-campaigns" }, "Campaigns"), parts.list, parts.detail),
      el("section", { class: "card", "aria-labelledby": "ads-preview" },
        el("h2", { id: "ads-preview" }, "Live conversations it would target"),
        el("p", { class: "muted small" }, "Recent posts that fit its keywords and brief, with their brand-safety "
          + "categories; a post in a category the campaign blocks never carries its ad."),
        parts.preview)),
    el("section", { class: "card", "aria-labelledby": "ads-brief" },
      el("h2", { id: "ads-brief" }, "Write copy from a brief"),
      el("p", { class: "muted small" }, "The model writes candidates; each must pass every rule (length, destination, "
        + "required and banned words, forbidden claims, language) or it is rejected with its reasons."),
      parts.form, parts.results),
    el("section", { class: "card span-2", "aria-labelledby": "ads-day" },
      el("div", { class: "card-head" }, el("h2", { id: "ads-day" }, "A simulated day of ad traffic"), parts.dayButton),
      el("p", { class: "muted small" }, "The auction, pacing, frequency caps and the click model over a day of "
        + "simulated posts and users, in a database of its own (the real campaigns are not charged)."),
      parts.day),
  ));
}

function briefForm() {
  const language = el("select", { name: "language" },
    Object.entries(LANGUAGES).map(([code, name]) => el("option", { value: code }, name)));
  return el("form", { class: "brief-form", onsubmit: generate },
    el("label", {}, "Product", el("input", { name: "product", required: true, maxlength: "120" })),
    el("label", {}, "Audience", el("input", { name: "audience", maxlength: "200", placeholder: "e.g. weekend runners" })),
    el("label", {}, "Tone", el("select", { name: "tone" }, TONES.map((t) => el("option", { value: t }, t)))),
    el("label", {}, "Language", language),
    el("label", {}, "Must include", el("input", { name: "must_include", placeholder: "comma-separated" })),
    el("label", {}, "Banned words", el("input", { name: "banned", placeholder: "comma-separated" })),
    el("label", {}, "Variants", el("input", { name: "n", type: "number", min: "1", max: "10", value: "3" })),
    el("label", { class: "check" }, el("input", { name: "save", type: "checkbox" }), "Save the ones that pass"),
    el("div", { class: "wide" }, el("button", { class: "button primary", type: "submit" }, "Write variants")),
  );
}

function renderCampaigns() {
  if (!campaigns.length) {
    clear(parts.list, el("li", { class: "muted" }, "No active campaigns. Add one with `roost ads campaigns add`."));
    return;
  }
  clear(parts.list, campaigns.map((c) => el("li", {}, el("button", {
    type: "button", "aria-pressed": String(c.id === selected?.id), onclick: () => choose(c),
  }, el("strong", {}, c.name), el("div", { class: "small muted" },
    `${c.objective} · bid ${fmt.money(c.bid_micros)}${c.objective === "awareness" ? " CPM" : " per click"} · `
      + `${fmt.money(c.daily_budget_micros)}/day`)))));
}

function choose(campaign) {
  selected = campaign;
  for (const button of parts.list.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.textContent.startsWith(campaign.name)));
  }
  const t = campaign.targeting;
  clear(parts.detail,
    el("p", {}, "Targets ", t.keywords.length ? t.keywords.join(", ") : "everyone",
      t.topics.length ? ` · topics ${t.topics.join(", ")}` : "",
      t.languages.length ? ` · ${t.languages.join(", ")}` : ""),
    el("p", {}, `Never next to: ${campaign.blocked_categories.join(", ") || "(platform floor only)"} · `
      + `leads to ${campaign.landing_url || campaign.handle}`));
  const field = (name) => parts.form.elements.namedItem(name);
  field("product").value = campaign.name.split(" ")[0];
  field("language").value = t.languages[0] && LANGUAGES[t.languages[0]] ? t.languages[0] : "en";
  clear(parts.results);
  loadPreview(campaign);
}

function list(text) {
  return String(text || "").split(",").map((s) => s.trim()).filter(Boolean);
}

async function generate(event) {
  event.preventDefault();
  if (!selected) return;
  const data = new FormData(parts.form);
  const body = {
    product: data.get("product"),
    audience: data.get("audience"),
    tone: data.get("tone"),
    language: data.get("language"),
    must_include: list(data.get("must_include")),
    banned: list(data.get("banned")),
    n: Number(data.get("n")) || 3,
    save: data.get("save") === "on",
  };
  const button = parts.form.querySelector("button[type=submit]");
  button.disabled = true;
  clear(parts.results, el("p", { class: "muted" }, el("span", { class: "spinner", "aria-hidden": "true" }),
    " Writing and checking candidates…"));
  try {
    const result = await api(`/ads/campaigns/${selected.id}/creatives/generate`, { method: "POST", body });
    renderVariants(result);
  } catch (error) {
    clear(parts.results, el("p", { class: "error-text" }, error.message));
  } finally {
    button.disabled = false;
  }
}

function renderVariants(result) {
  const passed = result.variants.map((v) => el("li", { class: "variant ok" },
    el("div", {}, v.text),
    el("div", { class: "checks" },
      el("span", { class: "badge good" }, "passed every rule"),
      v.score !== null ? el("span", { class: "badge", title: "mean log-probability per token under the platform's model" },
        `reads like the platform: ${fmt.num(v.score, 2)}`) : null,
      v.engagement !== null && v.engagement !== undefined
        ? el("span", { class: "badge accent" }, `predicted CTR ${fmt.pct(v.engagement, 2)}`) : null)));
  const rejected = result.rejected.map((v) => el("li", { class: "variant rejected" },
    el("div", {}, v.text),
    el("ul", { class: "why" }, v.reasons.map((r) => el("li", {}, r)))));
  clear(parts.results,
    el("p", { class: "small muted" }, `${result.candidates} candidates written: ${result.variants.length} passed, `
      + `${result.rejected.length} rejected${result.saved?.length ? `; ${result.saved.length} saved as creatives` : ""}.`),
    result.shortfall ? el("p", { class: "small", role: "note" }, result.shortfall) : null,
    passed.length ? el("h3", {}, "Variants") : null,
    el("ol", { class: "variants" }, passed),
    rejected.length ? el("h3", {}, "Rejected, and why") : null,
    el("ol", { class: "variants" }, rejected));
}

async function loadPreview(campaign) {
  clear(parts.preview, el("li", { class: "muted" }, el("span", { class: "spinner", "aria-hidden": "true" }), " Searching…"));
  try {
    const hits = await api(`/ads/campaigns/${campaign.id}/preview?limit=6`);
    if (selected?.id !== campaign.id) return;
    if (!hits.length) {
      clear(parts.preview, el("li", { class: "muted" }, "No recent conversation fits this campaign right now."));
      return;
    }
    clear(parts.preview, hits.map((h) => el("li", {}, postCard(h.post, {
      compact: true,
      extra: [
        h.similarity !== null ? el("span", {}, `similarity ${fmt.num(h.similarity)}`) : null,
        h.categories.length ? el("span", { class: `badge ${h.blocked ? "bad" : "warn"}` },
          `${h.blocked ? "blocked: " : ""}${h.categories.join(", ")}`) : el("span", { class: "badge good" }, "brand-safe"),
      ],
    }))));
  } catch (error) {
    clear(parts.preview, el("li", { class: "error-text" }, error.message));
  }
}

async function loadDay() {
  try {
    renderDay(await api("/web/ads/day"));
  } catch (error) {
    clear(parts.day, el("p", { class: "muted" }, error.message));
  }
}

async function simulateDay() {
  parts.dayButton.disabled = true;
  clear(parts.day, el("p", { class: "muted" }, el("span", { class: "spinner", "aria-hidden": "true" }),
    " Simulating a day of 2,000 posts and their ad requests (about a minute)…"));
  try {
    const seed = Math.floor(Math.random() * 1e6);
    renderDay(await api("/ads/simulate", { method: "POST", body: { seed, posts: 2000, users: 1000 } }));
  } catch (error) {
    clear(parts.day, el("p", { class: "error-text" }, error.message));
  } finally {
    parts.dayButton.disabled = false;
  }
}

function renderDay(day) {
  parts.day.dataset.loaded = "true";
  const hourly = Array.from({ length: 24 }, (_, h) => day.campaigns.reduce((sum, c) => sum + (c.hourly_spend_micros[h] || 0), 0));
  const spendChart = el("div", { class: "chart" });
  const campaignChart = el("div", { class: "chart" });
  const m = day.clicks_metrics;
  clear(parts.day,
    el("p", { class: "small muted" }, `${day.day}, seed ${day.seed}: ${fmt.int(day.posts)} posts, simulated in ${fmt.num(day.took_s, 0)} s`),
    el("div", { class: "tiles" },
      tile("Ad requests", fmt.int(day.requests), `${fmt.pct(day.filled / Math.max(day.requests, 1), 0)} filled`),
      tile("Impressions", fmt.int(day.impressions), `${day.blocked_impressions} next to a blocked category`),
      tile("Clicks", fmt.int(day.clicks), `CTR ${fmt.pct(m.ctr, 2)}`),
      tile("Spent", fmt.money(day.spent_micros), `by ${day.campaigns.filter((c) => c.spent_micros).length} of ${day.campaigns.length} campaigns`),
      tile("Click model", m.auc !== null ? `AUC ${fmt.num(m.auc, 2)}` : "–", `calibration ${fmt.num(m.calibration, 2)}`),
      tile("Latency", `${fmt.num(day.latency_ms.p50, 1)} ms`, `p99 ${fmt.num(day.latency_ms.p99, 1)} ms per request`)),
    el("div", { class: "grid-2" },
      el("div", {}, el("h3", {}, "Spend by hour (UTC)"), spendChart),
      el("div", {}, el("h3", {}, "Spend and CTR by campaign"), campaignChart)),
    el("div", { class: "table-wrap" }, el("table", { class: "table" },
      el("caption", { class: "visually-hidden" }, "Campaigns in the simulated day"),
      el("thead", {}, el("tr", {}, ["Campaign", "Pacing", "Budget", "Spent", "Impressions", "Clicks", "CTR", "CPM"]
        .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, day.campaigns.map((c, i) => el("tr", {},
        el("th", { scope: "row" }, `${i + 1}. ${c.name}`),
        el("td", {}, c.pacing),
        el("td", { class: "num" }, fmt.money(c.daily_budget_micros)),
        el("td", { class: "num" }, `${fmt.money(c.spent_micros)} (${fmt.pct(c.spent_share, 0)})`),
        el("td", { class: "num" }, fmt.int(c.impressions)),
        el("td", { class: "num" }, fmt.int(c.clicks)),
        el("td", { class: "num" }, fmt.pct(c.ctr, 2)),
        el("td", { class: "num" }, fmt.money(c.cpm_micros))))))),
  );
  chart(spendChart, {
    label: `Spend by hour: ${fmt.money(day.spent_micros)} in all, most at hour ${hourly.indexOf(Math.max(...hourly))}`,
    series: [{ name: "spend", kind: "bar", points: hourly.map((v, h) => [h, v / 1e6]), color: 1, format: (v) => `$${v.toFixed(2)}` }],
    height: 200,
    integerX: true,
    xFormat: (v) => `${v}h`,
    leftFormat: (v) => `$${v}`,
  });
  chart(campaignChart, {
    label: "Spend (bars) and click-through rate (dots) of each campaign, numbered as in the table",
    series: [
      { name: "spend ($)", kind: "bar", points: day.campaigns.map((c, i) => [i + 1, c.spent_micros / 1e6]), color: 1 },
      { name: "CTR", kind: "dots", axis: "right", points: day.campaigns.map((c, i) => [i + 1, c.ctr]), color: 2, format: (v) => fmt.pct(v, 2) },
    ],
    height: 200,
    integerX: true,
    xFormat: (v) => `#${v}`,
    leftFormat: (v) => `$${v}`,
    rightFormat: (v) => fmt.pct(v, 1),
    zero: { right: true },
  });
}
