// koopstream dashboard: lists the streams and, for the chosen one, shows its tracked modes,
// their course, a mode's shape, a prediction against what was measured and the alarms,
// kept live by the stream's server-sent events. It reads only what the `read` scope
// allows: GET /v1/streams, /modes, /modes/trend, /alarms, /recent, /events, and
// POST /predict.

import { Plot, compass, extent, modeColour } from "./charts.js";

// Errors the page met, for the browser tests (and for anyone looking in the console).
window.koopErrors = window.koopErrors || [];
window.addEventListener("error", (e) => window.koopErrors.push(String(e.message || e)));
window.addEventListener("unhandledrejection", (e) => window.koopErrors.push(String(e.reason)));

const TOKEN_KEY = "koopstream.token";
const LIST_EVERY_MS = 2000;
const PREDICT_EVERY_MS = 3000;
const PREDICT_STEPS = 300;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  streams: [],
  selected: null,
  view: null,
  modes: null,
  trend: [],
  alarms: null,
  shapeMode: null,
  shapeUnit: null,
  shapeUnits: [null],
  channel: 0,
  events: null,
  refreshing: false,
  refreshAgain: null,
  predictedAt: 0,
};
window.koopstream = state;

const $ = (id) => document.getElementById(id);

/** A token given in the address's fragment (`#token=...`) is kept for the session and
 * removed from the address bar; fragments never reach the server's logs. */
function tokenFromFragment() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return;
  state.token = decodeURIComponent(match[1]);
  sessionStorage.setItem(TOKEN_KEY, state.token);
  const stream = streamFromFragment();
  history.replaceState(null, "", location.pathname + location.search + (stream ? `#stream=${encodeURIComponent(stream)}` : ""));
}

/** The stream a link names (`#stream=ID`), so an address can open the page on it. */
function streamFromFragment() {
  const match = /(?:^#|&)stream=([^&]*)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

class HttpError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  if (state.token) h.Authorization = `Bearer ${state.token}`;
  return h;
}

/** A JSON document from the API; a problem document becomes an HttpError with its detail. */
async function api(path, options = {}) {
  return (await request(path, options)).json();
}

/** An answer of the API that succeeded; a problem document becomes an HttpError. */
async function request(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      detail = problem.detail || problem.title || detail;
    } catch (_) { /* not a problem document */ }
    throw new HttpError(response.status, detail);
  }
  return response;
}

/** Saves the selected stream's model as a file: the JSON document, or the MATLAB and
 *  NumPy files (fetched with the token, which a plain link could not send). */
async function downloadModel(format) {
  const id = state.selected;
  if (!id) return;
  try {
    const response = await request(`/v1/streams/${encodeURIComponent(id)}/model?format=${format}`, { headers: { Accept: "*/*" } });
    const blob = await response.blob();
    const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const version = state.view ? state.view.status.version : "";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = named ? named[1] : `${id}-v${version}.${format}`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    notice("");
  } catch (error) {
    handleError(error);
  }
}

function notice(text) {
  const box = $("notice");
  box.hidden = !text;
  box.textContent = text || "";
}

/** The server pill: its text, green only while the server answers what the page asks. */
function serverState(text, on) {
  $("server-state").textContent = text;
  $("server-state").className = on ? "pill on" : "pill";
}

function handleError(error) {
  if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
    $("token-form").hidden = false;
    serverState(error.status === 401 ? "token needed" : "token not allowed", false);
    notice(`The server refused the request (${error.status}): ${error.message}. Enter a token with the read scope.`);
  } else if (error instanceof HttpError) {
    notice(error.message);
  } else {
    notice(`The server cannot be reached (${error.message}); retrying.`);
    serverState("unreachable", false);
  }
}

const fmt = (v, digits) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
const pct = (v, digits = 2) => (Number.isFinite(v) ? (100 * v).toFixed(digits) : "–");
const interval = (ci, scale, digits) => (ci ? `[${(ci[0] * scale).toFixed(digits)}, ${(ci[1] * scale).toFixed(digits)}]` : "");

function cell(row, text, attrs = {}) {
  const td = document.createElement("td");
  td.textContent = text;
  for (const [k, v] of Object.entries(attrs)) td.setAttribute(k, v);
  row.appendChild(td);
  return td;
}

// ---- the stream list ----

function stateText(status) {
  if (status.state === "warming_up") return `warming up ${status.warmup.have}/${status.warmup.need}`;
  if (status.state === "awaiting_rank") return "awaiting rank";
  return "ready";
}

function sourceText(view) {
  const spec = view.definition.source;
  if (!spec) return "HTTP / WebSocket";
  const c37 = spec.c37118;
  const connected = view.source && view.source.connected;
  return `C37.118 ${c37 ? c37.address : ""} ${connected ? "● connected" : "○ not connected"}`;
}

function rejectedText(counts) {
  const entries = Object.entries(counts).filter(([, v]) => v > 0);
  const total = entries.reduce((sum, [, v]) => sum + v, 0);
  return { total, detail: entries.length ? entries.map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`).join(", ") : "none" };
}

async function loadStreams() {
  try {
    const list = await api("/v1/streams");
    serverState("connected", true);
    state.streams = list;
    renderStreams();
    if (!state.selected) {
      const named = streamFromFragment();
      const first = list.find((s) => s.definition && s.definition.id === named) || list.find((s) => s.definition);
      if (first) select(first.definition.id);
    } else if (!list.some((s) => s.definition && s.definition.id === state.selected)) {
      select(null);
    }
    if (!$("token-form").hidden && state.token) notice("");
  } catch (error) {
    handleError(error);
  }
}

function renderStreams() {
  const body = $("streams").querySelector("tbody");
  body.replaceChildren();
  for (const entry of state.streams) {
    const row = document.createElement("tr");
    if (!entry.definition) {
      cell(row, entry.id);
      cell(row, `quarantined: ${entry.reason}`, { colspan: 6 });
      body.appendChild(row);
      continue;
    }
    const id = entry.definition.id;
    row.dataset.stream = id;
    if (id === state.selected) row.className = "selected";
    const s = entry.status;
    const rejected = rejectedText(s.samples_rejected);
    cell(row, id);
    cell(row, stateText(s));
    cell(row, `${fmt(s.update_rate_hz, 1)}/s`);
    cell(row, String(s.samples_accepted));
    cell(row, rejected.total ? `${rejected.total} (${rejected.detail})` : "0");
    cell(row, String(s.version));
    cell(row, sourceText(entry));
    row.addEventListener("click", () => select(id));
    body.appendChild(row);
  }
  $("no-streams").hidden = state.streams.length > 0;
}

// ---- one stream ----

function select(id) {
  if (state.events) state.events.abort();
  state.events = null;
  Object.assign(state, { selected: id, view: null, modes: null, trend: [], alarms: null, shapeMode: null, shapeUnit: null, shapeUnits: [null], channel: 0, predictedAt: 0 });
  renderStreams();
  $("stream-panel").hidden = !id;
  setLive(false);
  history.replaceState(null, "", location.pathname + location.search + (id ? `#stream=${encodeURIComponent(id)}` : ""));
  if (!id) return;
  state.view = state.streams.find((s) => s.definition && s.definition.id === id) || null;
  fillChannelChoice();
  renderStatus();
  refreshStream(true);
  watchEvents(id);
}

function setLive(on) {
  $("live").textContent = on ? "live" : "not live";
  $("live").className = on ? "pill on" : "pill off";
}

function fillChannelChoice() {
  const select = $("predict-channel");
  select.replaceChildren();
  const units = $("shape-unit");
  units.replaceChildren();
  units.hidden = true;
  if (!state.view) return;
  state.view.definition.channels.forEach((c, k) => {
    const option = document.createElement("option");
    option.value = String(k);
    option.textContent = c.unit ? `${c.name} (${c.unit})` : c.name;
    select.appendChild(option);
  });
  // Shares in different units do not compare (a frequency deviation in Hz is tiny next to
  // an angle in degrees): with several units, the compass can show one unit's channels.
  const distinct = [...new Set(state.view.definition.channels.map((c) => c.unit || ""))];
  if (distinct.length < 2) return;
  // Options by index: null is every channel, "" those without a unit.
  state.shapeUnits = [null, ...distinct];
  state.shapeUnits.forEach((u, k) => {
    const option = document.createElement("option");
    option.value = String(k);
    option.textContent = u === null ? "all channels" : u ? `${u} channels` : "channels without unit";
    units.appendChild(option);
  });
  units.hidden = false;
}

/** The sample time as people say it: "Ts 33.3 ms (30 samples/s)". */
function samplePeriod(ts) {
  const rate = 1 / ts;
  const period = ts < 1 ? `${Number((ts * 1000).toPrecision(3))} ms` : `${Number(ts.toPrecision(4))} s`;
  return `Ts ${period} (${Number(rate.toPrecision(4))} samples/s)`;
}

function renderStatus() {
  const view = state.view;
  if (!view) return;
  const d = view.definition;
  const s = view.status;
  $("stream-title").textContent = d.id;
  const pill = $("stream-state");
  pill.textContent = stateText(s);
  pill.className = s.state === "ready" ? "pill on" : "pill";
  $("stream-facts").textContent =
    `${d.channels.length} channels · ${samplePeriod(d.ts)} · ${d.estimator} · ${d.dictionary} · version ${s.version} · ` +
    `last t ${fmt(s.last_timestamp, 2)} s · ${fmt(s.update_rate_hz, 1)} updates/s`;
  const source = view.source;
  if (source) {
    const error = source.last_error ? ` · last error: ${source.last_error.message}` : "";
    $("stream-facts").textContent += ` · source ${source.connected ? "connected" : "not connected"}, ` +
      `${source.frames_received} frames, ${source.samples_submitted} samples${error}`;
  }
  const warming = s.state === "warming_up";
  $("warmup").hidden = !warming;
  if (warming) {
    $("warmup-bar").value = s.warmup.need ? s.warmup.have / s.warmup.need : 0;
    $("warmup-text").textContent = `warm-up: ${s.warmup.have} of ${s.warmup.need} samples`;
  }
}

/**
 * Reads the stream's modes, their course and its alarms again (after a refresh event).
 * An event that comes while a read is under way is not dropped: that read may have fetched
 * /alarms before the alarm it announces, so one more read follows when it ends.
 */
async function refreshStream(full = false) {
  const id = state.selected;
  if (!id) return;
  if (state.refreshing) {
    state.refreshAgain = full ? "full" : state.refreshAgain || "since";
    return;
  }
  state.refreshing = true;
  try {
    const base = `/v1/streams/${encodeURIComponent(id)}`;
    const lastT = state.trend.length && !full ? state.trend[state.trend.length - 1].t : null;
    const trendPath = lastT === null ? `${base}/modes/trend` : `${base}/modes/trend?after=${lastT}`;
    // Before its first model a stream answers /modes with 409; the page does not ask.
    const ready = state.view && state.view.status.state === "ready";
    const [modes, trend, alarms] = await Promise.all([
      ready ? api(`${base}/modes`) : Promise.resolve(null),
      api(trendPath),
      api(`${base}/alarms`),
    ]);
    if (id !== state.selected) return;
    state.modes = modes;
    state.trend = lastT === null ? trend.points : state.trend.concat(trend.points).slice(-360);
    state.alarms = alarms;
    renderModes();
    renderMap();
    renderTrend();
    renderShape();
    renderAlarms();
  } catch (error) {
    handleError(error);
  } finally {
    state.refreshing = false;
    const again = state.refreshAgain;
    state.refreshAgain = null;
    // For the stream chosen now, which may not be the one just read (select() queues its own).
    if (again) refreshStream(again === "full");
  }
}

function alarmThresholds() {
  const alarm = state.view && state.view.definition.modes.alarm;
  return alarm || { warning: 0.05, critical: 0.03 };
}

function renderModes() {
  const body = $("modes").querySelector("tbody");
  body.replaceChildren();
  const modes = (state.modes && state.modes.modes) || [];
  for (const m of modes) {
    const row = document.createElement("tr");
    row.dataset.mode = String(m.id);
    row.dataset.frequency = String(m.frequency_hz);
    if (m.id === state.shapeMode) row.className = "selected";
    const first = cell(row, "");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = modeColour(m.id);
    first.append(swatch, `#${m.id}${m.current ? "" : " (missing)"}`);
    cell(row, `${fmt(m.frequency_hz, 3)} ${interval(m.frequency_ci95, 1, 3)}`);
    cell(row, `${pct(m.damping_ratio)} ${interval(m.damping_ci95, 100, 2)}`);
    cell(row, fmt(m.energy, 2));
    cell(row, m.alarm || "", { class: m.alarm ? `alarm-${m.alarm}` : "" });
    row.addEventListener("click", () => { state.shapeMode = m.id; renderModes(); renderShape(); });
    body.appendChild(row);
  }
  const note = $("modes-note");
  if (!state.modes) note.textContent = "No model yet: the stream is warming up.";
  else if (modes.length === 0) note.textContent = "No physical mode tracked yet (modes appear after the first mode-meter refreshes).";
  else note.textContent = state.modes.intervals_unavailable ? `No intervals: ${state.modes.intervals_unavailable}` : "Intervals are 95 %.";
  const choice = $("shape-mode");
  const previous = state.shapeMode;
  choice.replaceChildren();
  for (const m of modes) {
    const option = document.createElement("option");
    option.value = String(m.id);
    option.textContent = `#${m.id} ${fmt(m.frequency_hz, 3)} Hz`;
    choice.appendChild(option);
  }
  if (modes.length && !modes.some((m) => m.id === previous)) state.shapeMode = modes[0].id;
  if (state.shapeMode !== null) choice.value = String(state.shapeMode);
}

function renderMap() {
  const modes = (state.modes && state.modes.modes) || [];
  const limits = alarmThresholds();
  const band = state.view ? state.view.definition.modes.band_hz : [0, 2];
  const zetas = modes.flatMap((m) => [m.damping_ratio, ...(m.damping_ci95 || [])]).map((z) => 100 * z);
  const y = extent(zetas.concat([100 * limits.critical * 0.5, 100 * limits.warning * 1.6, 0]));
  const freqs = modes.flatMap((m) => [m.frequency_hz, ...(m.frequency_ci95 || [])]);
  const x = modes.length ? extent(freqs, 0.15) : [band[0], Math.min(band[1], 3)];
  const plot = new Plot($("chart-map"), { x, y, xLabel: "frequency (Hz)", yLabel: "damping ratio (%)" });
  plot.hline(100 * limits.warning, "#c98a00", `warning ${pct(limits.warning, 1)} %`);
  plot.hline(100 * limits.critical, "#c0262d", `critical ${pct(limits.critical, 1)} %`, { below: true });
  for (const m of modes) {
    plot.point(m.frequency_hz, 100 * m.damping_ratio, modeColour(m.id), {
      xBar: m.frequency_ci95,
      yBar: m.damping_ci95 && m.damping_ci95.map((z) => 100 * z),
      title: `#${m.id}: ${fmt(m.frequency_hz, 3)} Hz, ${pct(m.damping_ratio)} %`,
    });
  }
  if (!modes.length) plot.message("no tracked modes yet");
}

function renderTrend() {
  const points = state.trend;
  const ids = [...new Set(points.flatMap((p) => p.modes.map((m) => m.id)))];
  const tx = extent(points.map((p) => p.t), 0.02);
  const series = (pick, scale) => ids.map((id) => ({
    id,
    values: points.map((p) => {
      const m = p.modes.find((q) => q.id === id);
      const ci = m && pick(m)[1];
      return [p.t, m ? pick(m)[0] * scale : NaN, ci ? ci[0] * scale : NaN, ci ? ci[1] * scale : NaN];
    }),
  }));
  const draw = (svgId, data, label) => {
    const all = data.flatMap((s) => s.values.flatMap((v) => v.slice(1)));
    const plot = new Plot($(svgId), { x: tx, y: extent(all), xLabel: "stream time (s)", yLabel: label });
    for (const s of data) {
      plot.band(s.values.map(([t, , lo, hi]) => [t, lo, hi]), modeColour(s.id));
      plot.line(s.values.map(([t, v]) => [t, v]), modeColour(s.id));
    }
    if (!points.length) plot.message("no refresh yet");
    return plot;
  };
  draw("chart-frequency", series((m) => [m.frequency_hz, m.frequency_ci95], 1), "frequency (Hz)");
  const damping = draw("chart-damping", series((m) => [m.damping_ratio, m.damping_ci95], 100), "damping ratio (%)");
  const limits = alarmThresholds();
  damping.hline(100 * limits.warning, "#c98a00", "warning");
  damping.hline(100 * limits.critical, "#c0262d", "critical", { below: true });
}

function renderShape() {
  const modes = (state.modes && state.modes.modes) || [];
  const mode = modes.find((m) => m.id === state.shapeMode);
  const svg = $("chart-shape");
  const channels = state.view ? state.view.definition.channels : [];
  if (!mode) {
    const plot = new Plot(svg, { x: [0, 1], y: [0, 1] });
    plot.message("no mode chosen");
    $("shape-note").textContent = "";
    return;
  }
  const unit = state.shapeUnit;
  const entries = mode.shape
    .map((z, k) => {
      const c = channels[k] || { name: `channel ${k}`, unit: "" };
      return { re: z.re, im: z.im, unit: c.unit || "", label: c.unit ? `${c.name} (${c.unit})` : c.name };
    })
    .filter((e) => unit === null || e.unit === unit);
  entries.sort((a, b) => Math.hypot(b.re, b.im) - Math.hypot(a.re, a.im));
  // Within one unit the largest share is drawn as 1 (the mode's shape is scaled to its
  // largest channel over all units).
  const largest = entries.length ? Math.hypot(entries[0].re, entries[0].im) : 0;
  if (unit !== null && largest > 0) for (const e of entries) { e.re /= largest; e.im /= largest; }
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  entries.forEach((e, k) => { e.colour = palette[k % palette.length]; });
  compass(svg, entries, modeColour(mode.id));
  const units = new Set(channels.map((c) => c.unit).filter(Boolean));
  $("shape-note").textContent =
    `Mode #${mode.id} at ${fmt(mode.frequency_hz, 3)} Hz: each arrow is a channel's share of the mode ` +
    `(${unit === null ? "largest 1" : "largest of these channels 1"}) ` +
    `and its phase. ${entries.length > 12 ? `The 12 largest of ${entries.length} channels are listed. ` : ""}` +
    `${units.size ? `Channel units: ${[...units].join(", ")}.` : "The channels carry no units."}`;
}

function renderAlarms() {
  const body = $("alarms").querySelector("tbody");
  body.replaceChildren();
  const alarms = state.alarms;
  const history = alarms ? alarms.history.slice().reverse() : [];
  for (const a of history) {
    const row = document.createElement("tr");
    row.dataset.mode = String(a.mode);
    cell(row, `#${a.mode}`);
    cell(row, a.until_t === null ? `${a.severity} (active)` : a.severity, { class: `alarm-${a.severity}` });
    cell(row, fmt(a.since_t, 1));
    cell(row, pct(a.onset.damping_ratio));
    cell(row, a.until_t === null ? "" : fmt(a.until_t, 1));
    cell(row, a.clearing ? pct(a.clearing.damping_ratio) : "");
    body.appendChild(row);
  }
  const active = alarms ? alarms.active.length : 0;
  $("alarms-note").textContent = history.length ? `${active} active.` : "No alarm raised.";
}

/** Predicts from a state some steps back and draws it over what was measured since. */
async function renderPrediction() {
  const id = state.selected;
  const view = state.view;
  if (!id || !view || view.status.state !== "ready") return;
  const note = $("predict-note");
  if (view.definition.inputs.length) {
    note.textContent = "This stream has inputs: a prediction needs their future values, which the page does not have.";
    return;
  }
  try {
    const base = `/v1/streams/${encodeURIComponent(id)}`;
    const recent = await api(`${base}/recent?count=600`);
    const rows = recent.t.length;
    if (rows < 40) return;
    const steps = Math.min(PREDICT_STEPS, Math.floor(rows / 2));
    const start = rows - 1 - steps;
    const history = recent.x.slice(Math.max(0, start - 20), start + 1);
    if (history.some((row) => row.some((v) => v === null))) {
      note.textContent = "A measurement is missing just before the prediction's start; waiting for clean data.";
      return;
    }
    const prediction = await api(`${base}/predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ horizon: steps + Math.floor(steps / 3), start: { x: history, t: recent.t[start] } }),
    });
    if (id !== state.selected) return;
    const k = Number($("predict-channel").value || 0);
    const channel = view.definition.channels[k];
    const measured = recent.t.map((t, i) => [t, recent.x[i][k] === null ? NaN : recent.x[i][k]]);
    const predicted = [[recent.t[start], recent.x[start][k]]].concat(prediction.t.map((t, i) => [t, prediction.x[i][k]]));
    const all = measured.map((p) => p[1]).concat(predicted.map((p) => p[1]));
    const x = [recent.t[0], predicted[predicted.length - 1][0]];
    const unit = channel.unit ? ` (${channel.unit})` : "";
    const plot = new Plot($("chart-predict"), { x, y: extent(all), xLabel: "stream time (s)", yLabel: `${channel.name}${unit}` });
    plot.line(measured, "#5b6573", { width: 1.2, cls: "measured" });
    plot.line(predicted, "#d62728", { dash: "5 3", width: 1.8, cls: "predicted" });
    const err = measured.slice(start + 1).map(([, v], i) => v - prediction.x[i][k]).filter(Number.isFinite);
    const rms = Math.sqrt(err.reduce((s, e) => s + e * e, 0) / Math.max(1, err.length));
    note.textContent = `Grey: measured. Red dashed: model version ${prediction.version} predicting ${steps} steps from ` +
      `t = ${fmt(recent.t[start], 2)} s and on past the last sample; RMS error over the measured part ${rms.toPrecision(3)}${unit}.`;
  } catch (error) {
    if (error instanceof HttpError && error.status === 409) return;
    handleError(error);
  }
}

// ---- live updates ----

/** Reads the stream's server-sent events (with the token, which EventSource cannot send). */
async function watchEvents(id) {
  const controller = new AbortController();
  state.events = controller;
  let delay = 500;
  while (state.selected === id && !controller.signal.aborted) {
    try {
      const response = await fetch(`/v1/streams/${encodeURIComponent(id)}/events`, {
        headers: headers({ Accept: "text/event-stream" }),
        signal: controller.signal,
      });
      if (!response.ok) throw new HttpError(response.status, `events: ${response.status}`);
      setLive(true);
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          onEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof HttpError) handleError(error);
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

function onEvent(block) {
  let name = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (!data) return;
  const doc = JSON.parse(data);
  if (name === "status") {
    const wasReady = state.view && state.view.status.state === "ready";
    state.view = doc;
    renderStatus();
    if (!wasReady && doc.status.state === "ready") refreshStream(true);
    if (Date.now() - state.predictedAt > PREDICT_EVERY_MS) {
      state.predictedAt = Date.now();
      renderPrediction();
    }
  } else if (name === "summary" || name === "alarm" || name === "mode_changed" || name === "lagged") {
    refreshStream(name === "lagged");
  } else if (name === "deleted") {
    select(null);
    loadStreams();
  }
}

// ---- start ----

function start() {
  tokenFromFragment();
  $("token").value = state.token;
  $("token-button").addEventListener("click", () => { $("token-form").hidden = !$("token-form").hidden; });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("token-form").hidden = true;
    notice("");
    const id = state.selected;
    state.selected = null;
    loadStreams().then(() => { if (id) select(id); });
  });
  $("shape-mode").addEventListener("change", (e) => { state.shapeMode = Number(e.target.value); renderModes(); renderShape(); });
  $("predict-channel").addEventListener("change", () => renderPrediction());
  $("shape-unit").addEventListener("change", (e) => { state.shapeUnit = state.shapeUnits[Number(e.target.value)]; renderShape(); });
  for (const button of document.querySelectorAll("#downloads button")) {
    button.addEventListener("click", () => downloadModel(button.dataset.format));
  }
  loadStreams();
  setInterval(loadStreams, LIST_EVERY_MS);
}

start();
