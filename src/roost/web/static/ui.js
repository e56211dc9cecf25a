// Small DOM and formatting helpers shared by the panels. Text from the server is only ever set as
// text (never parsed as HTML), so a post cannot inject markup into the page.

/** el("a", {href: "#x", class: "cite"}, "text", child, ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const numberFormat = new Intl.NumberFormat();
export const fmt = {
  int: (n) => (n === null || n === undefined ? "–" : numberFormat.format(Math.round(n))),
  num: (n, digits = 2) => (n === null || n === undefined ? "–" : Number(n).toFixed(digits)),
  compact: (n) => (n === null || n === undefined ? "–"
    : new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 }).format(n)),
  pct: (x, digits = 1) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)}%`),
  money: (micros) => (micros === null || micros === undefined ? "–"
    : new Intl.NumberFormat(undefined, { style: "currency", currency: "USD" }).format(micros / 1e6)),
  time: (iso) => {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso
      : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  },
  duration: (seconds) => {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  },
};

/** A post's text with its #hashtags marked, as nodes. */
export function postText(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(/#[\p{L}\p{N}_]+/gu)) {
    if (match.index > last) nodes.push(text.slice(last, match.index));
    nodes.push(el("span", { class: "tag" }, match[0]));
    last = match.index + match[0].length;
  }
  nodes.push(text.slice(last));
  return nodes;
}

/** A post as the page shows it everywhere: author, time, language, text, counts. */
export function postCard(post, { id, number, extra, compact = false } = {}) {
  const m = post.metrics || {};
  return el("article", { class: compact ? "post compact" : "post", id, tabindex: id ? "-1" : undefined },
    el("div", { class: "post-head" },
      number !== undefined ? el("span", { class: "post-num" }, `[${number}]`) : null,
      el("span", { class: "author" }, `@${post.author_id}`),
      el("time", { datetime: post.created_at }, fmt.time(post.created_at)),
      post.lang ? el("span", { class: "badge", title: "language" }, post.lang) : null,
      post.reply_to ? el("span", { class: "badge" }, "reply") : null,
    ),
    el("p", { class: "post-text" }, postText(post.text)),
    el("div", { class: "post-foot" },
      el("span", { title: "likes" }, `♥ ${fmt.int(m.likes)}`),
      el("span", { title: "reposts" }, `↻ ${fmt.int(m.reposts)}`),
      el("span", { title: "replies" }, `↩ ${fmt.int(m.replies)}`),
      extra,
    ),
  );
}

/** Show `message` in the page's notice bar (errors in red); empty hides it. */
export function notice(message, { error = false } = {}) {
  const bar = document.getElementById("notice");
  bar.hidden = !message;
  bar.classList.toggle("error", error);
  bar.textContent = message || "";
}

/** A modal yes/no question; resolves true when confirmed. */
export function confirmDialog(title, text, action = "Confirm") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/** Run `work` every `ms` while `active()` holds, and once at once; returns a stop function. */
export function poll(work, ms, active = () => true) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (active() && !document.hidden) {
      try { await work(); } catch (error) { console.warn(error); }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

export function tile(label, value, sub) {
  return el("div", { class: "tile" },
    el("div", { class: "label" }, label),
    el("div", { class: "value" }, value),
    sub ? el("div", { class: "sub" }, sub) : null);
}
