// koopstream dashboard: small SVG charts (axes with round ticks, lines, bands, points with
// error bars, threshold lines, a compass), written for this page so it needs no plotting
// library and no network.

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes, appended to `parent` when given. */
export function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** Round tick values covering [lo, hi], about `count` of them. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** A tick label with the digits the step carries. */
export function tickLabel(value, values) {
  const step = values.length > 1 ? Math.abs(values[1] - values[0]) : Math.abs(value) || 1;
  const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return value.toFixed(digits);
}

/** [min, max] of finite numbers, widened when empty or flat. */
export function extent(values, pad = 0.05) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) {
    const half = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1;
    return [lo - half, hi + half];
  }
  const margin = (hi - lo) * pad;
  return [lo - margin, hi + margin];
}

/** A chart frame on an <svg>: scales, axes, grid and drawing helpers. */
export class Plot {
  constructor(svg, { x, y, xLabel = "", yLabel = "", width = 520, height = 260 }) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    this.svg = svg;
    this.margin = { left: 58, right: 12, top: 10, bottom: 38 };
    this.width = width;
    this.height = height;
    this.x = x;
    this.y = y;
    const m = this.margin;
    this.grid = el("g", { class: "grid" }, svg);
    const xt = ticks(x[0], x[1], 6);
    const yt = ticks(y[0], y[1], 5);
    for (const v of xt) {
      el("line", { x1: this.px(v), x2: this.px(v), y1: m.top, y2: height - m.bottom }, this.grid);
      const label = el("text", { x: this.px(v), y: height - m.bottom + 14, class: "tick", "text-anchor": "middle" }, svg);
      label.textContent = tickLabel(v, xt);
    }
    for (const v of yt) {
      el("line", { x1: m.left, x2: width - m.right, y1: this.py(v), y2: this.py(v) }, this.grid);
      const label = el("text", { x: m.left - 5, y: this.py(v) + 4, class: "tick", "text-anchor": "end" }, svg);
      label.textContent = tickLabel(v, yt);
    }
    el("rect", { x: m.left, y: m.top, width: width - m.left - m.right, height: height - m.top - m.bottom, class: "frame" }, svg);
    const xl = el("text", { x: (m.left + width - m.right) / 2, y: height - 4, class: "axis-label", "text-anchor": "middle" }, svg);
    xl.textContent = xLabel;
    const yl = el("text", { x: 12, y: (m.top + height - m.bottom) / 2, class: "axis-label", "text-anchor": "middle",
      transform: `rotate(-90 12 ${(m.top + height - m.bottom) / 2})` }, svg);
    yl.textContent = yLabel;
    // Everything drawn later is clipped to the frame.
    const id = `clip-${Math.random().toString(36).slice(2)}`;
    const clip = el("clipPath", { id }, el("defs", {}, svg));
    el("rect", { x: m.left, y: m.top, width: width - m.left - m.right, height: height - m.top - m.bottom }, clip);
    this.layer = el("g", { "clip-path": `url(#${id})` }, svg);
  }

  px(v) {
    const m = this.margin;
    return m.left + ((v - this.x[0]) / (this.x[1] - this.x[0])) * (this.width - m.left - m.right);
  }

  py(v) {
    const m = this.margin;
    return this.height - m.bottom - ((v - this.y[0]) / (this.y[1] - this.y[0])) * (this.height - m.top - m.bottom);
  }

  /** A polyline through [x, y] points; a non-finite y breaks it. */
  line(points, colour, { dash = null, width = 1.6, cls = "series" } = {}) {
    let d = "";
    let pen = false;
    for (const [x, y] of points) {
      if (!Number.isFinite(y) || !Number.isFinite(x)) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${this.px(x).toFixed(1)},${this.py(y).toFixed(1)}`;
      pen = true;
    }
    const attrs = { d, stroke: colour, fill: "none", "stroke-width": width, class: cls };
    if (dash) attrs["stroke-dasharray"] = dash;
    return el("path", attrs, this.layer);
  }

  /** A filled band between lower and upper values at each x ([x, lo, hi] triples). */
  band(triples, colour) {
    const good = triples.filter(([x, lo, hi]) => [x, lo, hi].every(Number.isFinite));
    if (good.length < 2) return null;
    const top = good.map(([x, , hi]) => `${this.px(x).toFixed(1)},${this.py(hi).toFixed(1)}`);
    const bottom = good.slice().reverse().map(([x, lo]) => `${this.px(x).toFixed(1)},${this.py(lo).toFixed(1)}`);
    return el("path", { d: `M${top.join("L")}L${bottom.join("L")}Z`, fill: colour, "fill-opacity": 0.18, stroke: "none", class: "band" }, this.layer);
  }

  /** A point with optional horizontal and vertical 95 % bars, and a tooltip. */
  point(x, y, colour, { xBar = null, yBar = null, title = "", radius = 5, cls = "point" } = {}) {
    const g = el("g", { class: cls }, this.layer);
    if (xBar) el("line", { x1: this.px(xBar[0]), x2: this.px(xBar[1]), y1: this.py(y), y2: this.py(y), stroke: colour, "stroke-width": 1.4 }, g);
    if (yBar) el("line", { x1: this.px(x), x2: this.px(x), y1: this.py(yBar[0]), y2: this.py(yBar[1]), stroke: colour, "stroke-width": 1.4 }, g);
    el("circle", { cx: this.px(x), cy: this.py(y), r: radius, fill: colour, stroke: "#fff", "stroke-width": 1 }, g);
    if (title) el("title", {}, g).textContent = title;
    return g;
  }

  /** A horizontal threshold line with its label at the right, above the line or, for the
   *  lower of two close thresholds, below it (so the two labels never overlap). */
  hline(y, colour, label, { below = false } = {}) {
    if (y < this.y[0] || y > this.y[1]) return;
    el("line", { x1: this.margin.left, x2: this.width - this.margin.right, y1: this.py(y), y2: this.py(y), stroke: colour, "stroke-dasharray": "6 4", "stroke-width": 1.5, class: "threshold" }, this.svg);
    const t = el("text", { x: this.width - this.margin.right - 4, y: this.py(y) + (below ? 12 : -4), class: "threshold-label", "text-anchor": "end", fill: colour }, this.svg);
    t.textContent = label;
  }

  /** A line of text in the middle (an empty chart says why). */
  message(text) {
    const t = el("text", { x: this.width / 2, y: this.height / 2, class: "empty", "text-anchor": "middle" }, this.svg);
    t.textContent = text;
  }
}

/** A phase in whole or tenth degrees, with no "-0" for a phase that rounds to zero. */
const degrees = (e, digits) => {
  const text = ((Math.atan2(e.im, e.re) * 180) / Math.PI).toFixed(digits);
  return Number(text) === 0 ? (0).toFixed(digits) : text;
};

/** A compass plot: one arrow per channel, length = magnitude (largest 1), angle = phase. */
export function compass(svg, entries, colour, { size = 300 } = {}) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  svg.setAttribute("viewBox", `0 0 ${size + 215} ${size}`);
  // Room on the left for the 180° label.
  const cx = size / 2 + 14;
  const c = size / 2;
  const r = size / 2 - 18;
  for (const f of [0.25, 0.5, 0.75, 1]) el("circle", { cx, cy: c, r: r * f, class: "compass-ring" }, svg);
  for (let a = 0; a < 360; a += 30) {
    const rad = (a * Math.PI) / 180;
    el("line", { x1: cx, y1: c, x2: cx + r * Math.cos(rad), y2: c - r * Math.sin(rad), class: "compass-spoke" }, svg);
    const t = el("text", { x: cx + (r + 12) * Math.cos(rad), y: c - (r + 10) * Math.sin(rad) + 3, class: "tick", "text-anchor": "middle" }, svg);
    t.textContent = `${a}°`;
  }
  entries.forEach((e, k) => {
    const mag = Math.hypot(e.re, e.im);
    const x = cx + r * e.re;
    const y = c - r * e.im;
    const g = el("g", { class: "compass-arrow" }, svg);
    el("line", { x1: cx, y1: c, x2: x, y2: y, stroke: e.colour || colour, "stroke-width": 2 }, g);
    el("circle", { cx: x, cy: y, r: 3, fill: e.colour || colour }, g);
    el("title", {}, g).textContent = `${e.label}: |${mag.toFixed(3)}| ∠${degrees(e, 1)}°`;
    if (k < 12) {
      const t = el("text", { x: size + 36, y: 16 + 14 * k, class: "legend", fill: e.colour || colour }, svg);
      t.textContent = `${e.label}  ${mag.toFixed(2)} ∠${degrees(e, 0)}°`;
    }
  });
}

/** A colour for a mode id, stable across refreshes. */
export function modeColour(id) {
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
  return palette[Number(id) % palette.length];
}
