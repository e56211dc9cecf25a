// The page's entry point: keys (from the demo's one-time URL fragment or the Keys dialog), the
// tabs (ARIA tabs with arrow-key navigation, the open one kept in the URL's #fragment), and which
// stages this server has (GET /web/status), which decides what each section shows.

import { keys, readFragment, setKeys } from "./api.js";
import { showAds } from "./ads.js";
import { initChat, showChat } from "./chat.js";
import { initFirehose, showFirehose } from "./firehose.js";
import { initSearch, showSearch } from "./search.js";
import { showTraining } from "./training.js";
import { el, notice } from "./ui.js";

const TABS = ["search", "chat", "ads", "training", "firehose"];
const STAGE_OF_TAB = { search: "search", chat: "chat", ads: "ads", training: "training", firehose: "firehose" };
const MISSING = {
  search: ["There is no search index in this workspace yet.", "roost index build"],
  chat: ["There is no trained model to chat with yet.", "roost train"],
  ads: ["The ads stage is not set up in this workspace.", "roost demo"],
  training: ["Nothing has been trained in this workspace yet.", "roost train"],
};

let status = { stages: {}, model: null };
let current = null;

function tabButton(name) { return document.getElementById(`tab-${name}`); }
function tabPanel(name) { return document.getElementById(`panel-${name}`); }

function select(name, { focus = false } = {}) {
  if (!TABS.includes(name)) name = "search";
  current = name;
  for (const tab of TABS) {
    const chosen = tab === name;
    tabButton(tab).setAttribute("aria-selected", String(chosen));
    tabButton(tab).tabIndex = chosen ? 0 : -1;
    tabPanel(tab).hidden = !chosen;
  }
  if (focus) tabButton(name).focus();
  if (window.location.hash !== `#${name}`) window.history.replaceState(null, "", `#${name}`);
  show(name, { focusInput: !focus });
}

/** Bring section `name` up to date; `focusInput` moves focus into it (not while the arrow keys
 * move along the tabs). */
function show(name, { focusInput = false } = {}) {
  notice(keys.api || name === "firehose" ? "" : "Enter your API key (Keys, top right) to use this section.");
  const stage = STAGE_OF_TAB[name];
  const panel = tabPanel(name);
  const missing = panel.querySelector(".missing");
  const absent = status.stages[stage] === false;
  if (absent && !missing && MISSING[name]) {
    const [text, command] = MISSING[name];
    panel.prepend(el("div", { class: "card empty missing" }, el("p", {}, text), el("p", {}, "Make one with ", el("code", {}, command), ".")));
  }
  if (absent) return;
  const visible = () => current === name;
  if (name === "search") showSearch(focusInput);
  else if (name === "chat") showChat(status.model, focusInput);
  else if (name === "ads") showAds(visible);
  else if (name === "training") showTraining(visible);
  else if (name === "firehose") showFirehose(visible);
}

function initTabs() {
  const list = document.getElementById("tablist");
  list.addEventListener("click", (event) => {
    const tab = event.target.closest("[role=tab]");
    if (tab) select(tab.id.slice(4));
  });
  list.addEventListener("keydown", (event) => {
    const at = TABS.indexOf(current);
    const next = {
      ArrowRight: (at + 1) % TABS.length,
      ArrowLeft: (at - 1 + TABS.length) % TABS.length,
      Home: 0,
      End: TABS.length - 1,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    select(TABS[next], { focus: true });
  });
  window.addEventListener("hashchange", () => {
    const name = window.location.hash.slice(1);
    if (TABS.includes(name) && name !== current) select(name);
  });
}

function initKeys() {
  const dialog = document.getElementById("keys-dialog");
  const form = document.getElementById("keys-form");
  const apiInput = document.getElementById("api-key");
  const adminInput = document.getElementById("admin-key");
  const open = () => {
    apiInput.value = keys.api;
    adminInput.value = keys.admin;
    dialog.showModal();
    (keys.api ? adminInput : apiInput).focus();
  };
  document.getElementById("keys-button").addEventListener("click", open);
  for (const button of document.querySelectorAll("[data-open-keys]")) button.addEventListener("click", open);
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save") setKeys({ api: apiInput.value, admin: adminInput.value });
    if (dialog.returnValue === "forget") setKeys({ api: "", admin: "" });
    form.reset();
  });
  const render = () => {
    const count = Number(Boolean(keys.api)) + Number(Boolean(keys.admin));
    document.getElementById("keys-dot").classList.toggle("on", Boolean(keys.api));
    document.getElementById("keys-label").textContent = count ? `Keys (${count})` : "Enter keys";
  };
  window.addEventListener("roost:keys", () => { render(); if (current) show(current); });
  render();
}

async function loadStatus() {
  try {
    const response = await fetch("/web/status");
    status = await response.json();
  } catch {
    notice("The server cannot be reached. Is `roost demo` still running?", { error: true });
  }
  const badge = document.getElementById("model-badge");
  if (status.model) {
    badge.hidden = false;
    badge.textContent = `model: ${status.model}`;
  }
}

async function main() {
  const fromFragment = readFragment();
  initKeys();
  initTabs();
  initSearch();
  initChat();
  initFirehose();
  await loadStatus();
  select(fromFragment || window.location.hash.slice(1) || "search");
}

main();
