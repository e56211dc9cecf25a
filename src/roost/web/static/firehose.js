// Firehose administration (the admin key's routes, /firehose/admin/*): the live rate, who is
// connected, the consumers with a revoke button, granting a new consumer, and the audit log.

import { api, keys } from "./api.js";
import { chart } from "./chart.js";
import { clear, confirmDialog, el, fmt, notice, poll, tile } from "./ui.js";

const HISTORY = 60; // samples kept for the rate chart (one every 2 s: two minutes)

const locked = document.getElementById("firehose-locked");
const panel = document.getElementById("firehose");
const tiles = document.getElementById("fh-tiles");
const consumersBody = document.querySelector("#fh-consumers tbody");
const connectionsBody = document.querySelector("#fh-connections tbody");
const audit = document.getElementById("fh-audit");
const rateChart = document.getElementById("fh-chart");
const addForm = document.getElementById("fh-add");
const newKey = document.getElementById("fh-newkey");

const history = [];
let stopPolling = null;
let tick = 0;

export function initFirehose() {
  addForm.addEventListener("submit", addConsumer);
}

export function showFirehose(isVisible) {
  const allowed = Boolean(keys.admin);
  locked.hidden = allowed;
  panel.hidden = !allowed;
  if (allowed) stopPolling ??= poll(refresh, 2000, isVisible);
}

async function refresh() {
  const every = (n) => tick % n === 0;
  const [stats, consumers, log] = await Promise.all([
    api("/firehose/admin/stats", { admin: true }),
    api("/firehose/admin/consumers", { admin: true }),
    every(3) ? api("/firehose/admin/audit?limit=40", { admin: true }) : null,
  ]).catch((error) => {
    notice(error.message, { error: error.status !== 401 });
    return [];
  });
  tick += 1;
  if (!stats) return;
  history.push({ t: Date.now(), append: stats.append_rate, delivered: stats.delivered_rate });
  if (history.length > HISTORY) history.shift();
  renderStats(stats, consumers.consumers);
  renderConsumers(consumers.consumers);
  renderConnections(stats.connections);
  if (log) renderAudit(log.entries);
}

function renderStats(stats, consumers) {
  const active = consumers.filter((c) => !c.revoked_at).length;
  clear(tiles,
    tile("Appended", `${fmt.int(stats.append_rate)}/s`, "events into the log"),
    tile("Delivered", `${fmt.int(stats.delivered_rate)}/s`, "to all open streams"),
    tile("Log head", fmt.int(stats.head), `whole from seq ${fmt.int(stats.horizon)}`),
    tile("Streams", fmt.int(stats.connections.length), `${stats.consumers_connected.length} consumer(s) connected`),
    tile("Consumers", fmt.int(active), `${consumers.length - active} revoked`),
  );
  const start = history[0].t;
  chart(rateChart, {
    label: `Events per second: ${fmt.int(stats.append_rate)} appended, ${fmt.int(stats.delivered_rate)} delivered now`,
    series: [
      { name: "appended", points: history.map((h) => [(h.t - start) / 1000, h.append]), color: 1 },
      { name: "delivered", points: history.map((h) => [(h.t - start) / 1000, h.delivered]), color: 2 },
    ],
    height: 180,
    zero: { left: true },
    integerX: true, // whole seconds: the first polls span less than one, and would repeat "0 s"
    xFormat: (v) => `${v} s`,
  });
}

function entitlements(e) {
  const parts = [e.languages.length ? e.languages.join(", ") : "all languages"];
  if (e.keywords.length) parts.push(`keywords: ${e.keywords.join(", ")}`);
  if (e.sample_rate < 1) parts.push(`${fmt.pct(e.sample_rate, 1)} sample`);
  if (!e.reposts) parts.push("no reposts");
  return parts.join(" · ");
}

function renderConsumers(consumers) {
  clear(consumersBody, consumers.map((c) => {
    const revoked = Boolean(c.revoked_at);
    return el("tr", { class: revoked ? "revoked" : null, dataset: { consumer: c.name } },
      el("th", { scope: "row" }, c.name, el("div", { class: "muted small" }, `key ${c.key_id}`)),
      el("td", {}, entitlements(c.entitlements)),
      el("td", { class: "num" }, `${c.rate_limit || "∞"}/min · ${c.max_connections || "∞"} streams`),
      el("td", { class: "num" }, fmt.int(c.connections)),
      el("td", {}, revoked
        ? el("span", { class: "badge bad", title: `revoked ${fmt.time(c.revoked_at)}` }, "revoked")
        : el("span", { class: "badge good" }, "active")),
      el("td", {}, revoked ? null : el("button", {
        class: "button small danger", type: "button", "aria-label": `Revoke ${c.name}`,
        onclick: () => revoke(c),
      }, "Revoke")),
    );
  }));
}

async function revoke(consumer) {
  const sure = await confirmDialog(
    `Revoke ${consumer.name}?`,
    `Its key stops working at once and its ${consumer.connections} open stream(s) end within a second. `
      + "Names are never reused, so this cannot be undone.",
    "Revoke",
  );
  if (!sure) return;
  try {
    const result = await api(`/firehose/admin/consumers/${encodeURIComponent(consumer.name)}/revoke`, {
      method: "POST", admin: true,
    });
    notice(`Revoked ${consumer.name}: ${result.closed_streams} stream(s) closed.`);
    tick = 0;
    await refresh();
  } catch (error) {
    notice(error.message, { error: true });
  }
}

async function addConsumer(event) {
  event.preventDefault();
  const data = new FormData(addForm);
  const languages = String(data.get("languages") || "").split(/[\s,]+/).filter(Boolean);
  const body = {
    name: String(data.get("name")).trim(),
    entitlements: { languages, keywords: [], sample_rate: Number(data.get("sample")) || 1, reposts: true },
  };
  try {
    const result = await api("/firehose/admin/consumers", { method: "POST", body, admin: true });
    clear(newKey, `Consumer ${result.consumer.name} added. Its key, shown this once: `, el("code", {}, result.key));
    newKey.hidden = false;
    addForm.reset();
    tick = 0;
    await refresh();
  } catch (error) {
    notice(error.message, { error: true });
  }
}

function renderConnections(connections) {
  if (!connections.length) {
    clear(connectionsBody, el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No open streams.")));
    return;
  }
  clear(connectionsBody, connections.map((c) => el("tr", {},
    el("td", {}, c.consumer),
    el("td", {}, c.remote),
    el("td", { class: "num" }, `${fmt.int(c.lag)} events`),
    el("td", { class: "num" }, `${fmt.int(c.rate)}/s`),
    el("td", { class: "num" }, fmt.int(c.delivered)),
  )));
}

function describe(entry) {
  const d = entry.detail || {};
  switch (entry.action) {
    case "connect": return `connected from ${d.remote || "?"}, starting at seq ${fmt.int(d.start)}`;
    case "disconnect": return `disconnected (${d.reason || "closed"}) after ${fmt.int(d.delivered)} events`;
    case "revoke": return `revoked by ${d.by || "?"}`;
    case "add": return `added by ${d.by || "?"}`;
    case "entitle": return `entitlements changed by ${d.by || "?"}`;
    case "refuse": return `refused: ${d.error || d.status || ""}`;
    default: return entry.action;
  }
}

function renderAudit(entries) {
  clear(audit, entries.map((e) => el("li", {},
    el("time", { datetime: e.at }, new Date(e.at).toLocaleTimeString()),
    el("span", { class: "what" }, el("strong", {}, e.consumer || "admin"), " ", describe(e)),
  )));
}
