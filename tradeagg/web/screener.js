// tradeagg live screener: plain JS, no dependency, no build step.
// Loads the ranking (/v1/top), then follows /v1/stream?top=WINDOW:BY:LIMIT
// (Server-Sent Events read through fetch, so a bearer token can be sent).
// A bearer token, when the API needs one, is given as #token=... in the URL.
"use strict";

const $ = (id) => document.getElementById(id);
const SPARK_POINTS = 40;
const state = {
  windows: [], window: "5m", by: "volume", limit: 50,
  rows: new Map(),      // token -> {w: metrics of the chosen window, doc, spark: [volume...], version}
  order: [],            // tokens, ranked
  selected: null,
  abort: null,
};

function authHeaders() {
  const m = location.hash.match(/token=([^&]+)/);
  return m ? { Authorization: "Bearer " + decodeURIComponent(m[1]) } : {};
}

async function getJSON(path) {
  const r = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (r.status === 401) throw new Error("the API needs its bearer token: add #token=… to the URL");
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.status);
  return body;
}

const fmt = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4, notation: "compact" });
function num(v) { return v === null || v === undefined ? "–" : fmt.format(Number(v)); }
function pct(v) { return v === null || v === undefined ? "–" : (v > 0 ? "+" : "") + Number(v).toFixed(2) + "%"; }
function shortAddr(a) { return a.length > 14 ? a.slice(0, 6) + "…" + a.slice(-6) : a; }
function metricOf(w) {
  if (!w || w.buys + w.sells === 0) return null;
  return state.by === "trades" ? w.buys + w.sells : Number(w[state.by]);
}

function setStatus(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + (cls || "");
}

function spark(values) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 120 24");
  svg.setAttribute("preserveAspectRatio", "none");
  const line = document.createElementNS(ns, "polyline");
  const lo = Math.min(...values), hi = Math.max(...values);
  const span = hi - lo || 1;
  const step = values.length > 1 ? 120 / (values.length - 1) : 0;
  line.setAttribute("points", values.map((v, i) =>
    (i * step).toFixed(1) + "," + (22 - ((v - lo) / span) * 20).toFixed(1)).join(" "));
  svg.appendChild(line);
  return svg;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function render() {
  const body = $("top").querySelector("tbody");
  const tokens = state.order.filter((t) => metricOf(state.rows.get(t)?.w) !== null)
    .slice(0, state.limit);
  const hasMakers = tokens.some((t) => state.rows.get(t).w.makers !== undefined);
  $("top").classList.toggle("hidden-col", !hasMakers);
  const rows = tokens.map((t, i) => {
    const r = state.rows.get(t), w = r.w;
    const tr = document.createElement("tr");
    tr.dataset.token = t;
    tr.dataset.version = r.version;
    cell(tr, String(i + 1), "num");
    const td = cell(tr, shortAddr(t), "token");
    td.title = t;
    cell(tr, String(w.buys), "num buys");
    cell(tr, String(w.sells), "num sells");
    cell(tr, num(w.volume), "num volume");
    cell(tr, w.makers === undefined ? "–" : String(w.makers), "num makers");
    const c = w.price_change_pct;
    cell(tr, pct(c), "num change " + (c > 0 ? "up" : c < 0 ? "down" : ""));
    const sp = document.createElement("td");
    sp.appendChild(spark(r.spark.length > 1 ? r.spark : [0, ...r.spark]));
    tr.appendChild(sp);
    if (r.flash) { tr.classList.add("flash"); r.flash = false; }
    tr.addEventListener("click", () => select(t));
    return tr;
  });
  body.replaceChildren(...rows);
  requestAnimationFrame(() => requestAnimationFrame(() =>
    body.querySelectorAll("tr.flash").forEach((tr) => tr.classList.remove("flash"))));
  $("empty").hidden = tokens.length > 0;
}

function remember(token, w, doc) {
  let r = state.rows.get(token);
  if (!r) { r = { spark: [], version: 0 }; state.rows.set(token, r); }
  r.w = w;
  if (doc) r.doc = doc;
  r.version += 1;
  r.flash = true;
  r.spark.push(Number(w.volume));
  if (r.spark.length > SPARK_POINTS) r.spark.shift();
}

function resort() {
  state.order.sort((a, b) => {
    const x = metricOf(state.rows.get(a)?.w), y = metricOf(state.rows.get(b)?.w);
    if (x === y) return a < b ? -1 : 1;
    if (x === null) return 1;
    if (y === null) return -1;
    return y - x;
  });
}

function onUpdate(doc) {
  const w = doc.windows[state.window];
  if (!w) return;
  remember(doc.token, w, doc);
  if (!state.order.includes(doc.token)) state.order.push(doc.token);
  resort();
  if (state.selected === doc.token) showDetail(doc);
}

function onTop(msg) {
  if (msg.window !== state.window || msg.by !== state.by) return;
  state.order = msg.tokens.slice();
  for (const t of [...state.rows.keys()]) if (!state.order.includes(t)) state.rows.delete(t);
}

let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(); });
}

async function follow(signal) {
  const url = `/v1/stream?top=${state.window}:${state.by}:${state.limit}`;
  const r = await fetch(url, { headers: authHeaders(), signal, cache: "no-store" });
  if (!r.ok) throw new Error((await r.json()).error || r.status);
  setStatus("live", "live");
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("stream closed");
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (!data) continue;
      if (event === "update") onUpdate(JSON.parse(data));
      else if (event === "top") onTop(JSON.parse(data));
      schedule();
    }
  }
}

async function start() {
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  state.abort = abort;
  state.rows = new Map();
  state.order = [];
  while (!abort.signal.aborted) {
    try {
      const rows = await getJSON(`/v1/top?window=${state.window}&by=${state.by}&limit=${state.limit}`);
      for (const row of rows) {
        if (!state.rows.has(row.token)) remember(row.token, row, null);
        if (!state.order.includes(row.token)) state.order.push(row.token);
      }
      resort();
      render();
      await follow(abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return;
      setStatus("reconnecting: " + err.message, "down");
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }
}

function showDetail(doc) {
  $("detail").hidden = false;
  $("detail-token").textContent = doc.token;
  const labels = Object.keys(doc.windows);
  const metrics = Object.keys(doc.windows[labels[0]] || {}).filter((m) => m !== "kind");
  const head = document.createElement("tr");
  ["metric", ...labels].forEach((h, i) => {
    const th = document.createElement("th");
    th.textContent = h;
    if (i) th.className = "num";
    head.appendChild(th);
  });
  $("detail-table").querySelector("thead").replaceChildren(head);
  $("detail-table").querySelector("tbody").replaceChildren(...metrics.map((m) => {
    const tr = document.createElement("tr");
    cell(tr, m);
    for (const l of labels) {
      const v = doc.windows[l][m];
      cell(tr, m.endsWith("_pct") ? pct(v) : v === null ? "–" : String(v), "num");
    }
    return tr;
  }));
}

async function select(token) {
  state.selected = token;
  try {
    showDetail(await getJSON(`/v1/tokens/${token}`));
  } catch (err) {
    setStatus("read failed: " + err.message, "down");
  }
}

async function init() {
  const cfg = await getJSON("/v1/windows");
  state.windows = cfg.windows;
  const q = new URLSearchParams(location.search);
  state.window = cfg.windows.includes(q.get("window")) ? q.get("window") : cfg.default;
  if (q.get("by")) state.by = q.get("by");
  $("window").replaceChildren(...cfg.windows.map((w) => {
    const o = document.createElement("option");
    o.textContent = w;
    o.selected = w === state.window;
    return o;
  }));
  $("by").value = state.by;
  $("limit").value = String(state.limit);
  $("controls").addEventListener("change", () => {
    state.window = $("window").value;
    state.by = $("by").value;
    state.limit = Number($("limit").value);
    start();
  });
  $("detail-close").addEventListener("click", () => { state.selected = null; $("detail").hidden = true; });
  start();
}

init().catch((err) => setStatus("failed: " + err.message, "down"));
