// The shoal dashboard: polls /api/cluster every second and draws it. No libraries.
// Counters from the server are cumulative; rates and per-second latency percentiles come from
// the difference between two polls, kept for the last HISTORY polls.
"use strict";

const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 3000;
const HISTORY = 60;
const GRID = 64; // 64 x 64 = 4096 partitions
const CELL = 6; // pixels per partition
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"];
const CHART_OPS = ["read", "write", "delete", "batch", "scan", "udf"];
const CHART_LATENCY = ["read", "write"];

const errorsEl = document.getElementById("errors");
function reportError(text) {
  errorsEl.textContent += text + "\n";
}
window.onerror = (message, source, line, column) => {
  reportError(`${message} (${source}:${line}:${column})`);
};
window.addEventListener("unhandledrejection", (event) => {
  const r = event.reason;
  reportError(`unhandled rejection: ${r && r.stack ? r.stack : r}`);
});
// The page may load nothing from outside the node (the server's Content-Security-Policy).
document.addEventListener("securitypolicyviolation", (event) => {
  reportError(`blocked by the content security policy: ${event.violatedDirective} ${event.blockedURI}`);
});

const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A colour per node id, kept for the page's life so a node keeps its colour when others come
// and go.
const colours = new Map();
function colourOf(id) {
  if (!colours.has(id)) {
    const n = colours.size;
    colours.set(id, n < PALETTE.length ? PALETTE[n] : `hsl(${(n * 137.5) % 360} 60% 55%)`);
  }
  return colours.get(id);
}

function formatUptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? `${d}d ` : "") + (d || h ? `${h}h ` : "") + `${m}m ${s % 60}s`;
}
function formatBytes(b) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function formatUs(us) {
  if (us === null || us === undefined) return "–";
  return us >= 1000 ? `${us / 1000} ms` : `${us} µs`;
}
function formatRate(r) {
  if (r === null || r === undefined) return "–";
  return r >= 100 ? Math.round(r).toLocaleString("en") : r.toFixed(1);
}

// The estimated q-quantile of bucket counts (upper bound of the bucket reaching it), in µs.
function percentile(counts, bounds, q) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(total * q));
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    acc += counts[i];
    if (acc >= rank) return i < bounds.length ? bounds[i] : bounds[bounds.length - 1];
  }
  return null;
}

// History of derived values, one entry per successful poll.
const history = []; // { rates: {kind: ops/s}, latency: {kind: {p50, p99} in ms} }
let previous = null; // the last snapshot
let migrationPeak = 0;

function derive(data) {
  const entry = { rates: {}, latency: {} };
  // A restarted node (or another node behind the same address) starts its counters afresh.
  const prev = previous && previous.node === data.node &&
    previous.uptime_ms <= data.uptime_ms ? previous : null;
  // The server's clock, not the page's: the time between two polls is when the counters
  // were read, whatever the network or a background tab did to the polls.
  const seconds = prev ? (data.uptime_ms - prev.uptime_ms) / 1000 : 0;
  for (const op of data.ops) {
    const before = prev && prev.ops.find((o) => o.kind === op.kind);
    if (!before || seconds <= 0 || op.count < before.count) {
      entry.rates[op.kind] = null;
      continue;
    }
    entry.rates[op.kind] = (op.count - before.count) / seconds;
    const delta = op.buckets.map((c, i) => c - (before.buckets[i] || 0));
    const p50 = percentile(delta, data.latency_bounds_us, 0.5);
    const p99 = percentile(delta, data.latency_bounds_us, 0.99);
    entry.latency[op.kind] = {
      p50: p50 === null ? null : p50 / 1000,
      p99: p99 === null ? null : p99 / 1000,
    };
  }
  previous = data;
  history.push(entry);
  while (history.length > HISTORY) history.shift();
  return entry;
}

function renderHeader(data) {
  $("node").textContent = data.node;
  $("cluster-key").textContent = data.cluster.key;
  $("cluster-size").textContent = String(data.cluster.size);
  const stable = $("cluster-stable");
  stable.textContent = data.cluster.stable ? "stable" : "changing";
  stable.className = "badge " + (data.cluster.stable ? "good" : "warn");
  $("uptime").textContent = formatUptime(data.uptime_s);
  $("build").textContent = `${data.build} (shoal ${data.version})`;
  document.title = `shoal ${data.node} · ${data.cluster.size} node${data.cluster.size === 1 ? "" : "s"}`;
}

function renderNodes(data) {
  const mastered = data.members.map(() => 0);
  for (const ns of data.namespaces) {
    for (const m of ns.partition_masters) if (m !== null) mastered[m]++;
  }
  const rows = data.members.map((m, i) => {
    const tr = el("tr");
    tr.dataset.node = m.id;
    if (m.self) tr.className = "self";
    const swatch = el("span", "swatch");
    swatch.style.background = colourOf(m.id);
    const first = el("td");
    first.append(swatch);
    const roles = [];
    if (m.principal) roles.push("principal");
    if (m.self) roles.push("this node");
    if (!m.in_succession) roles.push("not in succession");
    tr.append(first, el("td", "mono", m.id), el("td", "", roles.join(", ")),
      el("td", "num", String(mastered[i])));
    return tr;
  });
  $("nodes").replaceChildren(...rows);
}

function renderMigrations(data) {
  const remaining = data.migrate_partitions_remaining;
  migrationPeak = remaining === 0 ? 0 : Math.max(migrationPeak, remaining);
  $("migrations-remaining").textContent = String(remaining);
  const bar = $("migrations-progress");
  bar.value = migrationPeak === 0 ? 100 : 100 * (1 - remaining / migrationPeak);
}

function renderOps(data, entry) {
  const rows = data.ops.map((op) => {
    const tr = el("tr");
    tr.append(el("td", "", op.kind), el("td", "num", formatRate(entry.rates[op.kind])),
      el("td", "num", op.count.toLocaleString("en")), el("td", "num", formatUs(op.p50_us)),
      el("td", "num", formatUs(op.p99_us)));
    return tr;
  });
  $("ops").replaceChildren(...rows);
  drawChart($("chart-ops"), CHART_OPS.map((kind, i) => ({
    name: kind, colour: PALETTE[i], values: history.map((h) => h.rates[kind]),
  })));
  const latencySeries = [];
  CHART_LATENCY.forEach((kind, i) => {
    for (const [q, dash] of [["p50", []], ["p99", [4, 3]]]) {
      latencySeries.push({
        name: `${kind} ${q}`, colour: PALETTE[i], dash,
        values: history.map((h) => (h.latency[kind] ? h.latency[kind][q] : null)),
      });
    }
  });
  drawChart($("chart-latency"), latencySeries);
}

// The namespace sections are built once per namespace and then only updated.
function namespaceSection(name) {
  const id = `ns-${name}`;
  let section = document.getElementById(id);
  if (section) return section;
  section = el("section", "wide namespace");
  section.id = id;
  section.append(el("h2", "", `Namespace ${name}`), el("p", "ns-facts"));
  const body = el("div", "ns-body");
  const canvas = el("canvas", "partition-map");
  canvas.width = GRID * CELL;
  canvas.height = GRID * CELL;
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    const col = Math.floor((e.clientX - r.left) / (r.width / GRID));
    const row = Math.floor((e.clientY - r.top) / (r.height / GRID));
    const pid = row * GRID + col;
    const owner = canvas.owners && canvas.owners[pid];
    canvas.title = `partition ${pid}: master ${owner || "none"}`;
  });
  const side = el("div", "legend");
  body.append(canvas, side);
  section.append(body);
  $("namespaces").append(section);
  return section;
}

function renderNamespaces(data) {
  const wanted = new Set(data.namespaces.map((ns) => `ns-${ns.name}`));
  for (const s of [...$("namespaces").children]) if (!wanted.has(s.id)) s.remove();
  for (const ns of data.namespaces) {
    const section = namespaceSection(ns.name);
    section.querySelector(".ns-facts").textContent =
      `replication factor ${ns.replication_factor} (effective ${ns.effective_replication_factor})` +
      ` · ${ns.objects.toLocaleString("en")} objects` +
      ` · memory ${formatBytes(ns.memory_used_bytes)} of ${formatBytes(ns.memory_size_bytes)}` +
      (ns.stop_writes ? " · STOP WRITES" : "");
    const canvas = section.querySelector("canvas");
    const ctx = canvas.getContext("2d");
    const counts = data.members.map(() => 0);
    let none = 0;
    canvas.owners = ns.partition_masters.map((m) => (m === null ? null : data.members[m].id));
    ns.partition_masters.forEach((m, pid) => {
      if (m === null) none++; else counts[m]++;
      ctx.fillStyle = m === null ? "#d0d0d0" : colourOf(data.members[m].id);
      ctx.fillRect((pid % GRID) * CELL, Math.floor(pid / GRID) * CELL, CELL - 1, CELL - 1);
    });
    const items = data.members.map((m, i) => {
      const item = el("div", "legend-item");
      const swatch = el("span", "swatch");
      swatch.style.background = colourOf(m.id);
      item.append(swatch, el("span", "mono", m.id), el("span", "num", ` ${counts[i]} partitions`));
      return item;
    });
    if (none > 0) items.push(el("div", "legend-item", `no master: ${none}`));
    section.querySelector(".legend").replaceChildren(
      el("div", "legend-title", "master of each partition"), ...items);
  }
}

// A line chart of several series over the history; null values leave gaps.
function drawChart(canvas, series) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 48, right = 8, top = 8, bottom = 22;
  const pw = w - left - right, ph = h - top - bottom;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  // Four grid steps of a round size.
  const step = niceCeiling(max / 4);
  max = step * 4;
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#e4e4e4";
  ctx.fillStyle = "#666";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + pw, y); ctx.stroke();
    ctx.fillText(formatTick(step * i), left - 6, y);
  }
  const x = (i) => left + (pw * i) / (HISTORY - 1);
  const offset = HISTORY - Math.max(...series.map((s) => s.values.length), 0);
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = 1.5;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    let drawing = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { drawing = false; return; }
      const px = x(i + offset), py = top + ph - (max ? (ph * v) / max : 0);
      if (drawing) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      drawing = true;
    });
    ctx.stroke();
  }
  ctx.setLineDash([]);
  // Legend along the bottom.
  ctx.textAlign = "left";
  let lx = left;
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath(); ctx.moveTo(lx, h - 8); ctx.lineTo(lx + 14, h - 8); ctx.stroke();
    ctx.fillText(s.name, lx + 18, h - 8);
    lx += 26 + ctx.measureText(s.name).width;
  }
  ctx.setLineDash([]);
}
function niceCeiling(v) {
  if (v <= 0) return 0.25;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
function formatTick(v) {
  if (v >= 1000) return `${+(v / 1000).toFixed(1)}k`;
  return String(+v.toPrecision(3));
}

let failures = 0; // consecutive failed polls
function setConnected(up, why) {
  failures = up ? 0 : failures + 1;
  const banner = $("banner");
  banner.hidden = up;
  if (!up) {
    banner.textContent = `disconnected from this node (${why}); retrying every second` +
      ` (${failures} failed)`;
  }
  document.body.dataset.connection = up ? "up" : "down";
  document.body.dataset.failures = String(failures);
}

async function fetchCluster() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const response = await fetch("/api/cluster", { cache: "no-store", signal: controller.signal });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.json();
  } finally {
    clearTimeout(timer);
  }
}

async function poll() {
  let data;
  try {
    data = await fetchCluster();
  } catch (e) {
    setConnected(false, e && e.name === "AbortError" ? "timeout" : String(e && e.message || e));
    setTimeout(poll, POLL_MS);
    return;
  }
  setConnected(true);
  try {
    const entry = derive(data);
    renderHeader(data);
    renderNodes(data);
    renderMigrations(data);
    renderOps(data, entry);
    renderNamespaces(data);
    document.body.dataset.state = "ok";
  } catch (e) {
    reportError(`render failed: ${e && e.stack ? e.stack : e}`);
  }
  setTimeout(poll, POLL_MS);
}

poll();
