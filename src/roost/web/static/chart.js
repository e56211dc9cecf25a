// Charts as plain SVG: lines and bars over a shared x axis, one or two y axes, a legend, and a
// text summary for screen readers (the SVG is role="img" with that summary as its label).

import { clear, el } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { top: 10, right: 48, bottom: 28, left: 52 };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** About `count` round tick values covering [lo, hi] (whole numbers only, if `integer`). */
export function ticks(lo, hi, count = 5, integer = false) {
  if (!(hi > lo)) return [lo];
  const raw = Math.max((hi - lo) / count, integer ? 1 : 0);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function extent(values, { zero = false } = {}) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (zero) lo = Math.min(lo, 0);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi === lo) { hi += Math.abs(hi) * 0.1 || 1; lo -= zero ? 0 : Math.abs(lo) * 0.1 || 1; }
  const pad = zero ? 0 : (hi - lo) * 0.05;
  return [lo - pad, hi + pad * 0.5 + (zero ? (hi - lo) * 0.05 : 0)];
}

const defaultFormat = (v) => (Math.abs(v) >= 1000 ? new Intl.NumberFormat(undefined, { notation: "compact" }).format(v)
  : String(Number(v.toPrecision(3))));

/**
 * chart(container, {
 *   series: [{name, points: [[x, y], ...], kind: "line" | "bar" | "dots", axis: "left" | "right", color: 1 | 2 | 3}],
 *   label: "what the chart shows", height, xFormat, integerX, leftFormat, rightFormat, zero: {left, right},
 * })
 * The SVG is drawn at the container's width (text keeps its size) and redrawn when that changes.
 */
export function chart(container, options) {
  drawn.set(container, options);
  resized.observe(container);
  draw(container, options);
}

const drawn = new WeakMap(); // container -> the options it was last drawn with
const resized = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const options = drawn.get(entry.target);
    if (options && Math.abs(entry.contentRect.width - options.drawnWidth) > 4) draw(entry.target, options);
  }
});

function draw(container, options) {
  const width = Math.max(280, Math.round(container.clientWidth || 640));
  options.drawnWidth = width;
  const series = options.series.filter((s) => s.points.length);
  if (!series.length) {
    clear(container, el("p", { class: "chart-empty" }, options.empty || "No data yet."));
    return;
  }
  const height = options.height || 220;
  const inner = { w: width - MARGIN.left - MARGIN.right, h: height - MARGIN.top - MARGIN.bottom };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const bars = series.some((s) => s.kind === "bar");
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (bars) { x0 -= 0.5; x1 += 0.5; }
  if (x1 === x0) { x1 = x0 + 1; }
  const xAt = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * inner.w;

  const axes = {};
  for (const side of ["left", "right"]) {
    const ys = series.filter((s) => (s.axis || "left") === side).flatMap((s) => s.points.map((p) => p[1]));
    if (!ys.length) continue;
    const zero = options.zero?.[side] ?? series.some((s) => (s.axis || "left") === side && s.kind === "bar");
    const [lo, hi] = extent(ys, { zero });
    axes[side] = { lo, hi, at: (y) => MARGIN.top + inner.h - ((y - lo) / (hi - lo)) * inner.h };
  }

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width: width, height, role: "img", "aria-label": options.label || "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  // grid and y axes
  for (const [side, axis] of Object.entries(axes)) {
    const format = (side === "left" ? options.leftFormat : options.rightFormat) || defaultFormat;
    for (const value of ticks(axis.lo, axis.hi, 4)) {
      const y = axis.at(value);
      if (side === "left" || !axes.left) {
        root.append(svg("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: y, y2: y }));
      }
      const x = side === "left" ? MARGIN.left - 6 : width - MARGIN.right + 6;
      root.append(svg("text", { x, y: y + 4, "text-anchor": side === "left" ? "end" : "start" }, format(value)));
    }
  }
  // x axis
  const baseline = MARGIN.top + inner.h;
  root.append(svg("line", { class: "axis", x1: MARGIN.left, x2: width - MARGIN.right, y1: baseline, y2: baseline }));
  const xFormat = options.xFormat || defaultFormat;
  for (const value of ticks(bars ? x0 + 0.5 : x0, bars ? x1 - 0.5 : x1, Math.max(2, Math.floor(width / 110)), options.integerX)) {
    root.append(svg("text", { x: xAt(value), y: baseline + 18, "text-anchor": "middle" }, xFormat(value)));
  }
  // series: bars first, lines over them
  const ordered = [...series].sort((a, b) => (a.kind === "bar" ? -1 : 0) - (b.kind === "bar" ? -1 : 0));
  const barSeries = series.filter((s) => s.kind === "bar");
  for (const s of ordered) {
    const axis = axes[s.axis || "left"];
    const color = `c${s.color || 1}`;
    if (s.kind === "bar") {
      const slot = inner.w / (x1 - x0);
      const width = Math.max(1, (slot * 0.8) / barSeries.length);
      const offset = barSeries.indexOf(s) * width - (slot * 0.8) / 2;
      for (const [x, y] of s.points) {
        const top = axis.at(Math.max(y, 0));
        const g = svg("rect", {
          class: `bar ${color}`, x: xAt(x) + offset, y: top, width, height: Math.max(0, axis.at(Math.min(y, 0)) - top),
        }, svg("title", {}, document.createTextNode(`${s.name}: ${xFormat(x)} → ${(s.format || defaultFormat)(y)}`)));
        root.append(g);
      }
    } else {
      if (s.kind !== "dots") {
        const d = s.points.map(([x, y], i) => `${i ? "L" : "M"}${xAt(x).toFixed(1)},${axis.at(y).toFixed(1)}`).join("");
        root.append(svg("path", { class: `line ${color}`, d }));
      }
      if (s.points.length <= 40 || s.kind === "dots") {
        for (const [x, y] of s.points) {
          root.append(svg("circle", { class: `dot ${color}`, cx: xAt(x), cy: axis.at(y), r: s.kind === "dots" ? 4.5 : 2.6 },
            svg("title", {}, document.createTextNode(`${s.name}: ${xFormat(x)} → ${(s.format || defaultFormat)(y)}`))));
        }
      }
    }
  }
  const legend = el("div", { class: "legend", "aria-hidden": "true" },
    series.map((s) => el("span", { class: `c${s.color || 1}` }, s.name)));
  clear(container, root, series.length > 1 || options.legend ? legend : null);
}
