// Training: the workspace's runs (GET /web/runs) with their loss curves, tokens/s and MFU,
// refreshed while the section is open (a run may be training right now).

import { api } from "./api.js";
import { chart } from "./chart.js";
import { clear, el, fmt, notice, poll, tile } from "./ui.js";

const list = document.getElementById("runs");
const detail = document.getElementById("run-detail");
let selected = null;
let stopPolling = null;

export function showTraining(isVisible) {
  stopPolling ??= poll(refresh, 5000, isVisible);
}

async function refresh() {
  let runs;
  try {
    ({ runs } = await api("/web/runs"));
  } catch (error) {
    notice(error.message, { error: error.status !== 401 });
    return;
  }
  if (!runs.length) {
    clear(list, el("li", { class: "muted" }, "No runs yet."));
    clear(detail, el("div", { class: "card empty" }, el("p", {}, "Nothing trained in this workspace yet: "),
      el("code", {}, "roost train --preset 20m --run main")));
    return;
  }
  if (!runs.some((r) => r.name === selected)) selected = runs[0].name;
  clear(list, runs.map((run) => el("li", {}, el("button", {
    type: "button", "aria-pressed": String(run.name === selected),
    onclick: () => { selected = run.name; renderList(runs); renderRun(run); },
  },
  el("span", { class: "run-name" }, run.name),
  el("span", { class: "run-sub" }, `${run.objective === "sft" ? "chat tuning" : "pretraining"} · ${fmt.compact(run.parameters)} params · step ${fmt.int(run.steps)}`)))));
  renderRun(runs.find((r) => r.name === selected));
}

function renderList(runs) {
  for (const [i, button] of [...list.querySelectorAll("button")].entries()) {
    button.setAttribute("aria-pressed", String(runs[i].name === selected));
  }
}

function renderRun(run) {
  const lossChart = el("div", { class: "chart" });
  const speedChart = el("div", { class: "chart" });
  clear(detail,
    el("div", { class: "tiles" },
      tile("Model", `${fmt.compact(run.parameters)}`, `${run.preset} preset · seq ${run.seq_len} · batch ${run.global_batch}`),
      tile("Steps", fmt.int(run.steps), `${fmt.compact(run.tokens)} tokens`),
      tile("Loss", fmt.num(run.loss, 3), run.val_loss !== null ? `validation ${fmt.num(run.val_loss, 3)}` : "no evaluation yet"),
      tile("Bits per byte", fmt.num(run.val_bpb, 3), "on held-out posts"),
      tile("Tokens / s", fmt.int(run.tokens_per_s), "median step"),
      tile("MFU", fmt.pct(run.mfu, 2), "of the measured peak"),
      tile("Train time", fmt.duration(run.train_seconds), run.memory_gib ? `peak ${fmt.num(run.memory_gib, 1)} GiB` : null),
    ),
    el("div", { class: "card" },
      el("div", { class: "card-head" }, el("h2", {}, "Loss"), el("span", { class: "muted small" }, "nats per token, by step")),
      lossChart),
    el("div", { class: "card" },
      el("div", { class: "card-head" }, el("h2", {}, "Throughput"), el("span", { class: "muted small" }, "tokens per second, by step")),
      speedChart),
  );
  const points = (curve) => curve.step.map((s, i) => [s, curve.value[i]]);
  chart(lossChart, {
    label: `Loss of ${run.name}: from ${fmt.num(run.loss_curve.value[0], 2)} to ${fmt.num(run.loss, 2)} over ${run.steps} steps`,
    series: [
      { name: "training loss", points: points(run.loss_curve), color: 1 },
      { name: "validation loss", points: points(run.val_curve), color: 2 },
    ],
    legend: true,
    integerX: true,
    xFormat: (v) => fmt.int(v),
  });
  chart(speedChart, {
    label: `Tokens per second of ${run.name}: median ${fmt.int(run.tokens_per_s)}`,
    series: [{ name: "tokens/s", points: points(run.speed_curve), color: 3 }],
    height: 170,
    zero: { left: true },
    integerX: true,
    xFormat: (v) => fmt.int(v),
  });
}
