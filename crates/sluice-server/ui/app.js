// sluice web UI: a small single-page app over sluice's HTTP API. Plain JavaScript, no
// dependencies, nothing loaded from elsewhere; charts are drawn as SVG by lineChart/barChart.
"use strict";

const app = document.getElementById("app");
const statusEl = document.getElementById("status");
let refreshTimer = null;
let renderSeq = 0;

// ---------------------------------------------------------------------------------------------
// Helpers

function esc(v) {
  return String(v == null ? "" : v)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

// ---------------------------------------------------------------------------------------------
// The token: asked for once per browser tab, kept in sessionStorage (gone when the tab closes),
// sent as a bearer token with every API call. The server checks every call; the roles below
// only hide the buttons a token may not use.

const TOKEN_KEY = "sluice.token";
const ROLES = ["viewer", "submitter", "operator", "admin"];
let me = null;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class AuthError extends Error {}

async function api(path, opts) {
  opts = Object.assign({}, opts || {});
  opts.headers = Object.assign({}, opts.headers || {});
  if (token()) opts.headers["Authorization"] = "Bearer " + token();
  const res = await fetch(path, opts);
  let body = null;
  const text = await res.text();
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (!res.ok) {
    const msg = body && body.error ? body.error : (res.status + " " + res.statusText);
    if (res.status === 401) throw new AuthError(msg);
    throw new Error(msg);
  }
  return body;
}

// The caller's role in a namespace: the highest of its bindings there and on "*".
function roleIn(ns) {
  if (!me) return -1;
  let best = -1;
  for (const b of me.bindings) {
    const [bns, role] = b.split("=");
    if (bns === "*" || bns === ns) best = Math.max(best, ROLES.indexOf(role));
  }
  return best;
}

function can(ns, role) { return roleIn(ns) >= ROLES.indexOf(role); }

async function whoami() {
  if (!me) me = await api("/v1/whoami");
  const who = document.getElementById("who");
  if (who) {
    who.innerHTML = me.auth_enabled
      ? `${esc(me.subject)} <a href="#" id="sign-out">sign out</a>`
      : "authentication off";
    const out = document.getElementById("sign-out");
    if (out) out.addEventListener("click", ev => { ev.preventDefault(); signOut(); });
  }
  return me;
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  render();
}

function loginPage(message) {
  clearTimeout(refreshTimer);
  me = null;
  const who = document.getElementById("who");
  if (who) who.textContent = "";
  app.innerHTML = `<h1 id="page-title">Sign in</h1>
  ${message ? notice(message, "error") : ""}
  <div class="panel"><form id="login" class="filters">
    <label>API token<input id="token-input" name="token" type="password" autocomplete="off" placeholder="sluice_..." size="72"></label>
    <button class="primary" type="submit">Sign in</button></form>
    <p class="muted">The server's admin token is in <code>admin.token</code> in its data directory;
    <code>sluice token create --namespace NS --role viewer</code> makes one for a namespace.
    The token stays in this tab only.</p></div>`;
  document.getElementById("login").addEventListener("submit", ev => {
    ev.preventDefault();
    const t = (new FormData(ev.target).get("token") || "").trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    render();
  });
  document.body.dataset.loaded = "login";
}

function post(path) { return api(path, { method: "POST" }); }

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}

function route() {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, query] = h.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}

function ago(iso) {
  if (!iso) return "";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  return duration(s) + " ago";
}

function duration(s) {
  if (s == null || isNaN(s)) return "–";
  s = Math.max(0, s);
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.round((s % 86400) / 3600) + " h";
}

// "in 25 min 0 s" (or "now") until an ISO time.
function untilText(iso) {
  const s = (Date.parse(iso) - Date.now()) / 1000;
  return s <= 1 ? "now" : "in " + duration(s);
}

function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function cores(milli) { return (milli / 1000).toFixed(milli % 1000 ? 1 : 0); }
function mem(mib) { return mib >= 1024 ? (mib / 1024).toFixed(1) + " GiB" : mib + " MiB"; }
function pct(a, b) { return b > 0 ? Math.min(100, (100 * a) / b) : 0; }
function badge(state, extra) { return `<span class="badge ${esc(extra || state)}">${esc(state)}</span>`; }
function jobLink(j) { return `<a href="#/job/${encodeURIComponent(j.id)}" data-job-id="${esc(j.id)}">${esc(j.name)}</a>`; }

function setNav(name) {
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === name);
}

function notice(msg, kind) { return `<div class="notice ${kind || ""}">${esc(msg)}</div>`; }

function showError(e) {
  app.innerHTML = `<h1>Something went wrong</h1>${notice(e.message || String(e), "error")}`;
}

const PALETTE = ["#2f5fd0", "#1f8a4c", "#c23b3b", "#b7791f", "#6b5bd6", "#0f8a8a", "#a33ea1", "#5b6b82",
  "#d46a1f", "#3a9d3a"];

// ---------------------------------------------------------------------------------------------
// Charts (SVG)

function niceMax(v) {
  if (!(v > 0)) return 1;
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

function fmtTick(t, spanMs) {
  const d = new Date(t);
  if (spanMs <= 2 * 86400000) return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

// opts: {times: [ms], series: [{name, values:[number|null], color}], fmt: v => string,
//        stacked: bool (bars), kind: "line" | "bar", title}
function chart(opts) {
  const W = 640, H = 220, L = 52, R = 12, T = 10, B = 26;
  const times = opts.times, n = times.length;
  // A series with no value is left out, and one of zeros too unless zero means something.
  const series = opts.series.filter(s => s.values.some(v => v != null && (opts.keepZero || v !== 0)));
  const fmt = opts.fmt || null;
  let max = 0;
  if (opts.kind === "bar") {
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (const s of series) sum += s.values[i] || 0;
      max = Math.max(max, sum);
    }
  } else {
    for (const s of series) for (const v of s.values) if (v != null) max = Math.max(max, v);
  }
  for (const line of opts.lines || []) max = Math.max(max, line.value);
  max = niceMax(max);
  // Tick labels with as many decimals as the scale needs.
  const label = fmt || (v => v === 0 ? "0" : max >= 20 ? v.toFixed(0) : max >= 2 ? String(+v.toFixed(2)) : String(+v.toPrecision(2)));
  const x = i => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
  const y = v => T + (H - T - B) * (1 - v / max);
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title || "chart")}">`;
  svg += `<g class="grid">`;
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    svg += `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/>`;
  }
  svg += `</g><g class="axis">`;
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    svg += `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${esc(label(v))}</text>`;
  }
  const span = n > 1 ? times[n - 1] - times[0] : 0;
  const ticks = Math.min(6, n);
  for (let k = 0; k < ticks; k++) {
    const i = ticks <= 1 ? 0 : Math.round((k * (n - 1)) / (ticks - 1));
    svg += `<text x="${x(i)}" y="${H - 8}" text-anchor="${k === 0 ? "start" : k === ticks - 1 ? "end" : "middle"}">${esc(fmtTick(times[i], span))}</text>`;
  }
  svg += `</g>`;
  if (!series.length) {
    svg += `<text class="empty" x="${(W + L) / 2}" y="${H / 2}" text-anchor="middle">no data in this range</text>`;
  } else if (opts.kind === "bar") {
    const bw = Math.max(1, ((W - L - R) / Math.max(1, n)) * 0.8);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (const s of series) {
        const v = s.values[i] || 0;
        if (!v) continue;
        const y0 = y(acc), y1 = y(acc + v);
        svg += `<rect x="${x(i) - bw / 2}" y="${y1}" width="${bw}" height="${Math.max(0.5, y0 - y1)}" fill="${s.color}"><title>${esc(s.name)}: ${esc(label(v))} (${esc(new Date(times[i]).toLocaleString())})</title></rect>`;
        acc += v;
      }
    }
  } else {
    for (const s of series) {
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (v == null) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1) + " ";
        pen = true;
      });
      svg += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8" stroke-linejoin="round"><title>${esc(s.name)}</title></path>`;
      // Dots where there are few points, and always on points with no neighbour (no line).
      s.values.forEach((v, i) => {
        const alone = (i === 0 || s.values[i - 1] == null) && (i === n - 1 || s.values[i + 1] == null);
        if (v != null && (n <= 60 || alone)) svg += `<circle cx="${x(i)}" cy="${y(v)}" r="2.2" fill="${s.color}"><title>${esc(s.name)}: ${esc(label(v))} (${esc(new Date(times[i]).toLocaleString())})</title></circle>`;
      });
    }
  }
  for (const line of opts.lines || []) {
    svg += `<line x1="${L}" x2="${W - R}" y1="${y(line.value)}" y2="${y(line.value)}" stroke="#999" stroke-dasharray="4 3"><title>${esc(line.name)}</title></line>`;
  }
  svg += `</svg>`;
  const legend = series.map(s => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`)
    .concat((opts.lines || []).map(l => `<span><i style="background:#999"></i>${esc(l.name)}</span>`)).join("");
  return `<div class="chart" data-chart="${esc(opts.id || "")}"><h2>${esc(opts.title)}</h2>${svg}<div class="legend">${legend}</div></div>`;
}

// Sums the series of a history answer by namespace (over levels) with `pick(series) -> [v]`.
function byNamespace(hist, pick) {
  const out = new Map();
  for (const s of hist.series) {
    const vals = pick(s);
    const acc = out.get(s.namespace) || vals.map(() => null);
    vals.forEach((v, i) => { if (v != null) acc[i] = (acc[i] || 0) + v; });
    out.set(s.namespace, acc);
  }
  return [...out.entries()].map(([name, values], i) => ({ name, values, color: PALETTE[i % PALETTE.length] }));
}

// Wait percentiles over every series: the highest per bucket (the worst queue).
function worstWait(hist, key) {
  const n = hist.buckets.length;
  const out = new Array(n).fill(null);
  for (const s of hist.series) s[key].forEach((v, i) => { if (v != null) out[i] = Math.max(out[i] || 0, v); });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pages

async function overview(seq) {
  setNav("overview");
  const [cluster, queues, running, hist] = await Promise.all([
    api("/v1/cluster"),
    api("/v1/queues"),
    api("/v1/jobs" + qs({ state: "admitted,submitted,running", limit: 200 })),
    api("/v1/history" + qs({ from: new Date(Date.now() - 6 * 3600000).toISOString(), step: "5m" })),
  ]);
  if (seq !== renderSeq) return;
  const queuedTotal = queues.reduce((a, q) => a + q.queued, 0);
  const cpuPct = pct(cluster.allocated_cpu_milli, cluster.capacity_cpu_milli);
  const memPct = pct(cluster.allocated_memory_mib, cluster.capacity_memory_mib);
  const times = hist.buckets.map(b => Date.parse(b));
  let html = `<h1 id="page-title">Overview</h1>
  <div class="grid cols-4">
    <div class="panel stat"><div class="muted">Backend</div><div class="value">${esc(cluster.backend)}</div>
      <div class="sub">${cluster.backend_available ? "available" : "<b style='color:var(--bad)'>unavailable</b>"}</div></div>
    <div class="panel stat"><div class="muted">CPU allocated</div><div class="value">${cores(cluster.allocated_cpu_milli)} / ${cores(cluster.capacity_cpu_milli)} cores</div>
      <div class="bar"><span style="width:${cpuPct}%"></span></div><div class="sub">${cpuPct.toFixed(0)}% · ${cluster.reservations} reservation(s)</div></div>
    <div class="panel stat"><div class="muted">Memory allocated</div><div class="value">${mem(cluster.allocated_memory_mib)} / ${mem(cluster.capacity_memory_mib)}</div>
      <div class="bar"><span style="width:${memPct}%"></span></div><div class="sub">${memPct.toFixed(0)}%</div></div>
    <div class="panel stat"><div class="muted">Jobs</div><div class="value">${running.jobs.length} active · ${queuedTotal} queued</div>
      <div class="sub">${queues.length} non-empty queue(s)</div></div>
  </div>
  <div class="grid cols-2" style="margin-top:16px">
    <div class="panel"><h2>Queues by namespace and level</h2>
      <table id="queues"><thead><tr><th>Namespace</th><th>Level</th><th class="num">Queued</th><th class="num">Oldest wait</th></tr></thead><tbody>
      ${queues.map(q => `<tr><td><a href="#/jobs${qs({ namespace: q.namespace, state: "queued" })}">${esc(q.namespace)}</a></td><td>${esc(q.level)}</td><td class="num">${q.queued}</td><td class="num">${duration(q.oldest_wait_seconds)}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">Every queue is empty.</td></tr>`}
      </tbody></table></div>
    <div class="panel"><h2>Allocation by namespace</h2>
      <table id="namespaces"><thead><tr><th>Namespace</th><th class="num">CPU</th><th class="num">Memory</th><th class="num">Running</th><th class="num">Starting</th></tr></thead><tbody>
      ${cluster.namespaces.map(u => `<tr><td>${esc(u.namespace)}</td><td class="num">${cores(u.cpu_milli)} cores (${pct(u.cpu_milli, cluster.capacity_cpu_milli).toFixed(0)}%)</td><td class="num">${mem(u.memory_mib)}</td><td class="num">${u.running}</td><td class="num">${u.admitted + u.submitted}</td></tr>`).join("") || `<tr><td colspan="5" class="muted">Nothing is running.</td></tr>`}
      </tbody></table></div>
  </div>
  <div class="panel" style="margin-top:16px"><h2>Running jobs</h2>
    <table id="running"><thead><tr><th>Job</th><th>Namespace</th><th>Level</th><th>State</th><th class="num">Demand</th><th>Started</th><th>Id</th></tr></thead><tbody>
    ${running.jobs.map(j => `<tr><td>${jobLink(j)}</td><td>${esc(j.namespace)}</td><td>${esc(j.level)}</td><td>${badge(j.state)}</td><td class="num">${cores(j.demand.total_cpu_milli)} cores / ${mem(j.demand.total_memory_mib)}</td><td>${esc(ago(j.started_at || j.updated_at))}</td><td class="mono">${esc(j.id)}</td></tr>`).join("") || `<tr><td colspan="7" class="muted">No job is running.</td></tr>`}
    </tbody></table></div>
  <div class="grid cols-2" style="margin-top:16px">
    <div class="panel">${chart({ id: "ov-queue", title: "Queue length, last 6 hours (mean per 5 min)", times, series: byNamespace(hist, s => s.queued_avg) })}</div>
    <div class="panel">${chart({ id: "ov-cpu", title: "CPU requested by running jobs, last 6 hours (cores)", times,
      series: byNamespace(hist, s => s.cpu_requested_avg_cores), lines: cluster.capacity_cpu_milli ? [{ name: "capacity", value: cluster.capacity_cpu_milli / 1000 }] : [] })}</div>
  </div>`;
  app.innerHTML = html;
  refreshTimer = setTimeout(() => render(), 5000);
}

const JOB_FILTERS = ["namespace", "state", "name", "label", "since", "until"];

async function jobs(seq, params) {
  setNav("jobs");
  const filters = {};
  for (const k of JOB_FILTERS) if (params.get(k)) filters[k] = params.get(k);
  const cursor = params.get("cursor") || "";
  const prev = params.get("prev") || "";
  const limit = Math.min(1000, Math.max(1, parseInt(params.get("limit") || "50", 10) || 50));
  if (params.get("limit")) filters.limit = String(limit);
  const page = await api("/v1/jobs" + qs({ ...filters, limit, cursor }));
  if (seq !== renderSeq) return;
  const states = ["", "queued", "admitted", "submitted", "running", "succeeded", "failed", "cancelled"];
  const input = (k, ph) => `<label>${k}<input name="${k}" value="${esc(filters[k] || "")}" placeholder="${esc(ph)}"></label>`;
  // The cursors of earlier pages travel in `prev` (comma-separated), so Back works.
  const prevList = prev ? prev.split(",") : [];
  const nextHref = page.next_cursor ? "#/jobs" + qs({ ...filters, cursor: page.next_cursor, prev: prevList.concat([cursor || "-"]).join(",") }) : null;
  const backCursor = prevList.length ? prevList[prevList.length - 1] : null;
  const backHref = prevList.length ? "#/jobs" + qs({ ...filters, cursor: backCursor === "-" ? "" : backCursor, prev: prevList.slice(0, -1).join(",") }) : null;
  app.innerHTML = `<h1 id="page-title">Jobs</h1>
  <form class="filters" id="job-filters">
    ${input("namespace", "any")}
    <label>state<select name="state">${states.map(s => `<option value="${s}" ${filters.state === s ? "selected" : ""}>${s || "any"}</option>`).join("")}</select></label>
    ${input("name", "exact name")}
    ${input("label", "key=value,…")}
    ${input("since", "2026-11-01T00:00:00Z")}
    ${input("until", "RFC 3339")}
    <button class="primary" type="submit">Filter</button>
    <button type="button" id="clear-filters">Clear</button>
  </form>
  <div class="panel">
  <table id="jobs"><thead><tr><th>Job</th><th>Namespace</th><th>Level</th><th>State</th><th>Created</th><th class="num">Ran for</th><th>Expected start</th><th>Message</th><th>Id</th></tr></thead><tbody>
  ${page.jobs.map(j => {
    const ran = j.started_at ? ((j.finished_at ? Date.parse(j.finished_at) : Date.now()) - Date.parse(j.started_at)) / 1000 : null;
    const eta = j.state === "queued" && j.wait && j.wait.estimated_start;
    return `<tr><td>${jobLink(j)}</td><td>${esc(j.namespace)}</td><td>${esc(j.level)}</td><td>${badge(j.state)}</td><td>${esc(time(j.created_at))}</td><td class="num">${ran == null ? "–" : duration(ran)}</td><td class="eta" title="${eta ? esc(time(eta)) : ""}">${eta ? esc(untilText(eta)) : "–"}</td><td>${esc((j.message || "").slice(0, 90))}</td><td class="mono">${esc(j.id)}</td></tr>`;
  }).join("") || `<tr><td colspan="9" class="muted">No job matches.</td></tr>`}
  </tbody></table>
  <div class="pager">
    ${backHref ? `<a id="prev-page" href="${backHref}">← Newer</a>` : ""}
    <span class="muted">page ${prevList.length + 1} · ${page.jobs.length} job(s)</span>
    ${nextHref ? `<a id="next-page" href="${nextHref}">Older →</a>` : ""}
  </div></div>`;
  document.getElementById("job-filters").addEventListener("submit", ev => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const p = {};
    for (const k of JOB_FILTERS) p[k] = (f.get(k) || "").trim();
    location.hash = "#/jobs" + qs(p);
  });
  document.getElementById("clear-filters").addEventListener("click", () => { location.hash = "#/jobs"; });
}

async function logTail(id, attempt) {
  // Read the log to its end in pieces of 1 MiB (at most 16) and keep the last 64 KiB.
  let offset = 0, text = "", complete = false;
  for (let i = 0; i < 16; i++) {
    const l = await api(`/v1/jobs/${encodeURIComponent(id)}/logs` + qs({ offset, max_bytes: 1048576, attempt }));
    text = (text + l.data).slice(-65536);
    complete = l.complete;
    if (l.next_offset === offset || l.complete) break;
    offset = l.next_offset;
  }
  return { text, complete };
}

async function jobPage(seq, id, params) {
  setNav("jobs");
  const j = await api(`/v1/jobs/${encodeURIComponent(id)}`);
  // The log of the attempt asked for in the address (#/job/ID?attempt=N), else the current one.
  const asked = parseInt(params.get("attempt") || "", 10);
  const logAttempt = asked >= 1 && asked <= j.attempt ? asked : j.attempt;
  const log = await logTail(id, logAttempt).catch(e => ({ text: "(log unavailable: " + e.message + ")", complete: true }));
  if (seq !== renderSeq) return;
  const o = j.orchestration || null;
  const inDlq = o && o.dead_lettered_at;
  const terminal = ["succeeded", "failed", "cancelled"].includes(j.state);
  const wait = j.wait;
  const events = j.timeline || [];
  const attempts = events.filter(e => e.to === "admitted").length;
  app.innerHTML = `<h1 id="page-title">${esc(j.name)} ${badge(j.state)} ${inDlq ? badge("dead letter", "dlq") : ""}</h1>
  <div id="action-result"></div>
  <div class="grid cols-2">
    <div class="panel"><h2>Job</h2><dl class="kv">
      <dt>Id</dt><dd class="mono" id="job-id">${esc(j.id)}</dd>
      <dt>Namespace</dt><dd>${esc(j.namespace)}</dd>
      <dt>Level</dt><dd>${esc(j.level)}</dd>
      <dt>Labels</dt><dd>${Object.entries(j.labels || {}).map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(" ") || "–"}</dd>
      <dt>Attempt</dt><dd>${j.attempt}${o ? ` (${o.attempt_in_round} of ${o.max_attempts} in this round)` : ""} · admitted ${attempts} time(s)</dd>
      <dt>Created</dt><dd>${esc(time(j.created_at))} (${esc(ago(j.created_at))})</dd>
      <dt>Started</dt><dd>${esc(time(j.started_at)) || "–"}</dd>
      <dt>Finished</dt><dd>${esc(time(j.finished_at)) || "–"}</dd>
      <dt>Exit code</dt><dd>${j.exit_code == null ? "–" : esc(j.exit_code)}</dd>
      <dt>Backend ref</dt><dd class="mono">${esc(j.backend_ref || "–")}</dd>
      <dt>Message</dt><dd>${esc(j.message || "–")}</dd>
      ${o && o.schedule ? `<dt>Schedule</dt><dd>${esc(o.schedule)}</dd>` : ""}
      ${o && o.retry_at ? `<dt>Retry at</dt><dd>${esc(time(o.retry_at))}</dd>` : ""}
      ${o && o.failure_class ? `<dt>Failure class</dt><dd>${esc(o.failure_class)}</dd>` : ""}
      ${inDlq ? `<dt>Dead-lettered</dt><dd>${esc(time(o.dead_lettered_at))}: ${esc(o.dead_letter_reason || "")}</dd>` : ""}
    </dl>
    <div class="actions" style="margin-top:12px">
      ${terminal || !can(j.namespace, "submitter") ? "" : `<button class="danger" id="cancel-job">Cancel</button>`}
      ${inDlq && can(j.namespace, "operator") ? `<button class="primary" id="requeue-job">Requeue</button>` : ""}
    </div></div>
    <div class="panel"><h2>Queue</h2>
      ${j.state === "queued" && wait ? `<dl class="kv"><dt>Position</dt><dd id="queue-position">${wait.position} in namespace ${esc(j.namespace)} · ${wait.level_position} in level ${esc(j.level)}</dd>
        <dt>Expected start</dt><dd id="estimated-start">${wait.estimated_start ? `${esc(time(wait.estimated_start))} (${esc(untilText(wait.estimated_start))}; if jobs run as long as expected)` : "no estimate"}</dd></dl>
        <div class="reason" id="wait-reason"><b>Why it waits (${esc(wait.reason_kind)}):</b> ${esc(wait.reason)}</div>`
        : j.state === "queued" ? `<p class="muted">Waiting for the next scheduling cycle.</p>` : `<p class="muted">Not waiting (${esc(j.state)}).</p>`}
      <h2 style="margin-top:14px">Demand</h2>
      <table><thead><tr><th>Role</th><th class="num">Count</th><th class="num">CPU each</th><th class="num">Memory each</th></tr></thead><tbody>
      ${j.demand.pods.map(p => `<tr><td>${esc(p.role)}</td><td class="num">${p.count}</td><td class="num">${cores(p.cpu_milli)} cores</td><td class="num">${mem(p.memory_mib)}</td></tr>`).join("")}
      <tr><td><b>total</b></td><td></td><td class="num"><b>${cores(j.demand.total_cpu_milli)} cores</b></td><td class="num"><b>${mem(j.demand.total_memory_mib)}</b></td></tr>
      </tbody></table>
    </div>
  </div>
  <div class="panel" style="margin-top:16px"><h2>Timeline</h2>
    <table id="timeline"><thead><tr><th>At</th><th>From</th><th>To</th><th>What happened</th></tr></thead><tbody>
    ${events.map(e => `<tr><td>${esc(time(e.at))}</td><td>${e.from ? badge(e.from) : ""}</td><td>${badge(e.to)}</td><td>${esc(e.message)}</td></tr>`).join("")}
    </tbody></table></div>
  <div class="panel" style="margin-top:16px"><h2>Log of attempt ${logAttempt} ${log.complete ? "" : "(tail, still running)"}</h2>
    ${j.attempt > 1 ? `<p id="log-attempts">Attempts: ${Array.from({ length: j.attempt }, (_, i) => i + 1).map(a => a === logAttempt ? `<b>${a}</b>` : `<a href="#/job/${encodeURIComponent(id)}?attempt=${a}">${a}</a>`).join(" · ")}</p>` : ""}
    <pre class="log" id="log">${esc(log.text) || '<span class="muted">(no output)</span>'}</pre></div>
  <div class="panel" style="margin-top:16px"><h2>Spec</h2><pre id="spec">${esc(JSON.stringify(j.spec, null, 2))}</pre></div>`;
  const result = document.getElementById("action-result");
  const act = (btn, fn) => btn && btn.addEventListener("click", async () => {
    btn.disabled = true;
    try { await fn(); render(); } catch (e) { result.innerHTML = notice(e.message, "error"); btn.disabled = false; }
  });
  act(document.getElementById("cancel-job"), () => post(`/v1/jobs/${encodeURIComponent(id)}/cancel`));
  act(document.getElementById("requeue-job"), () => post("/v1/dlq/requeue" + qs({ id })));
  if (!terminal) refreshTimer = setTimeout(() => render(), 3000);
}

const RANGES = { "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400 };

async function historyPage(seq, params) {
  setNav("history");
  const range = RANGES[params.get("range")] ? params.get("range") : "24h";
  const namespace = params.get("namespace") || "";
  const now = Date.now();
  const hist = await api("/v1/history" + qs({ from: new Date(now - RANGES[range] * 1000).toISOString(), to: new Date(now).toISOString(), namespace }));
  const cluster = await api("/v1/cluster").catch(() => null);
  if (seq !== renderSeq) return;
  const times = hist.buckets.map(b => Date.parse(b));
  const finished = {};
  for (const s of hist.series) for (const [state, vals] of Object.entries(s.finished)) {
    const acc = finished[state] || vals.map(() => 0);
    vals.forEach((v, i) => { acc[i] += v; });
    finished[state] = acc;
  }
  const outcomeColor = { succeeded: "#1f8a4c", failed: "#c23b3b", cancelled: "#98a2b3" };
  const secs = v => duration(v);
  const totals = hist.series.map(s => ({
    ns: s.namespace, level: s.level,
    admitted: s.admitted.reduce((a, b) => a + b, 0),
    finished: Object.values(s.finished).reduce((a, v) => a + v.reduce((x, y) => x + y, 0), 0),
    failed: (s.finished.failed || []).reduce((a, b) => a + b, 0),
    p90: Math.max(0, ...s.wait_p90_seconds.filter(v => v != null)),
    queued: s.queued[s.queued.length - 1],
  }));
  app.innerHTML = `<h1 id="page-title">History</h1>
  <form class="filters" id="history-filters">
    <label>range<select name="range">${Object.keys(RANGES).map(r => `<option ${r === range ? "selected" : ""}>${r}</option>`).join("")}</select></label>
    <label>namespace<input name="namespace" value="${esc(namespace)}" placeholder="all"></label>
    <button class="primary" type="submit">Show</button>
    <span class="muted">${esc(time(hist.from))} – ${esc(time(hist.to))}, step ${esc(duration(hist.step_seconds))}</span>
  </form>
  <div class="grid cols-2">
    <div class="panel">${chart({ id: "queue", title: "Queue length by namespace (mean per step)", times, series: byNamespace(hist, s => s.queued_avg) })}</div>
    <div class="panel">${chart({ id: "wait", title: "Wait time, submit to admission (worst queue per step)", times, fmt: secs, keepZero: true,
      series: [
        { name: "p50", values: worstWait(hist, "wait_p50_seconds"), color: PALETTE[1] },
        { name: "p90", values: worstWait(hist, "wait_p90_seconds"), color: PALETTE[3] },
        { name: "p99", values: worstWait(hist, "wait_p99_seconds"), color: PALETTE[2] },
      ] })}</div>
    <div class="panel">${chart({ id: "cpu", title: "CPU requested by running jobs by namespace (cores, mean per step)", times,
      series: byNamespace(hist, s => s.cpu_requested_avg_cores), lines: cluster && cluster.capacity_cpu_milli ? [{ name: "capacity now", value: cluster.capacity_cpu_milli / 1000 }] : [] })}</div>
    <div class="panel">${chart({ id: "finished", title: "Jobs finished per step, by outcome", times, kind: "bar",
      series: Object.entries(finished).map(([state, values], i) => ({ name: state, values, color: outcomeColor[state] || PALETTE[i % PALETTE.length] })) })}</div>
  </div>
  <div class="panel" style="margin-top:16px"><h2>Per namespace and level over the range</h2>
    <table id="history-totals"><thead><tr><th>Namespace</th><th>Level</th><th class="num">Admitted</th><th class="num">Finished</th><th class="num">Failed</th><th class="num">Worst p90 wait</th><th class="num">Queued at end</th></tr></thead><tbody>
    ${totals.map(t => `<tr><td><a href="#/jobs${qs({ namespace: t.ns })}">${esc(t.ns)}</a></td><td>${esc(t.level)}</td><td class="num">${t.admitted}</td><td class="num">${t.finished}</td><td class="num">${t.failed}</td><td class="num">${duration(t.p90)}</td><td class="num">${t.queued}</td></tr>`).join("") || `<tr><td colspan="7" class="muted">Nothing happened in this range.</td></tr>`}
    </tbody></table></div>`;
  document.getElementById("history-filters").addEventListener("submit", ev => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    location.hash = "#/history" + qs({ range: f.get("range"), namespace: (f.get("namespace") || "").trim() });
  });
  refreshTimer = setTimeout(() => render(), 30000);
}

async function schedules(seq) {
  setNav("schedules");
  const list = await api("/v1/schedules");
  if (seq !== renderSeq) return;
  app.innerHTML = `<h1 id="page-title">Schedules</h1><div id="action-result"></div>
  <div class="panel"><table id="schedules"><thead><tr><th>Namespace</th><th>Name</th><th>Schedule</th><th>Policy</th><th>Level</th><th>Next run</th><th>Last run</th><th>State</th><th></th></tr></thead><tbody>
  ${list.map(s => {
    const key = encodeURIComponent(s.namespace) + "/" + encodeURIComponent(s.name);
    return `<tr data-schedule="${esc(s.namespace + "/" + s.name)}"><td>${esc(s.namespace)}</td><td><b>${esc(s.name)}</b></td><td><code>${esc(s.schedule)}</code> <span class="muted">${esc(s.time_zone)}</span></td>
      <td>${esc(s.concurrency_policy)} · missed: ${esc(s.missed_run_policy)}</td><td>${esc(s.level)}</td>
      <td>${s.suspended ? "–" : esc(time(s.next_run_at))}</td>
      <td>${s.last_job_id ? `<a href="#/job/${encodeURIComponent(s.last_job_id)}">${esc(time(s.last_run_at))}</a>` : "–"}${s.last_message ? `<div class="muted">${esc(s.last_message)}</div>` : ""}</td>
      <td>${s.suspended ? badge("suspended", "cancelled") : badge("active", "running")}</td>
      <td>${can(s.namespace, "submitter") ? `<div class="actions">
        <button data-action="trigger" data-key="${esc(key)}">Run now</button>
        ${s.suspended ? `<button data-action="resume" data-key="${esc(key)}">Resume</button>` : `<button data-action="suspend" data-key="${esc(key)}">Suspend</button>`}
        <button class="danger" data-action="delete" data-key="${esc(key)}">Delete</button>
      </div>` : ""}</td></tr>`;
  }).join("") || `<tr><td colspan="9" class="muted">No schedule. Create one with <code>sluice schedule create FILE</code>.</td></tr>`}
  </tbody></table></div>`;
  const result = document.getElementById("action-result");
  for (const btn of app.querySelectorAll("button[data-action]")) {
    btn.addEventListener("click", async () => {
      const { action, key } = btn.dataset;
      if (action === "delete" && !confirm("Delete schedule " + decodeURIComponent(key) + "?")) return;
      btn.disabled = true;
      try {
        const r = action === "delete"
          ? await api(`/v1/schedules/${key}`, { method: "DELETE" })
          : await post(`/v1/schedules/${key}/${action}`);
        await render();
        document.getElementById("action-result").innerHTML = notice(action === "trigger" && r && r.id ? `Started job ${r.id}.` : `Done: ${action}.`);
      } catch (e) { result.innerHTML = notice(e.message, "error"); btn.disabled = false; }
    });
  }
  refreshTimer = setTimeout(() => render(), 10000);
}

async function dlq(seq, params) {
  setNav("dlq");
  const namespace = params.get("namespace") || "";
  const list = await api("/v1/dlq" + qs({ namespace, limit: 500 }));
  if (seq !== renderSeq) return;
  app.innerHTML = `<h1 id="page-title">Dead letters</h1><div id="action-result"></div>
  <form class="filters" id="dlq-filters"><label>namespace<input name="namespace" value="${esc(namespace)}" placeholder="all"></label>
    <button class="primary" type="submit">Filter</button><span class="muted">${list.length} job(s)</span></form>
  <div class="panel"><table id="dlq"><thead><tr><th>Job</th><th>Namespace</th><th>Level</th><th>Class</th><th>Reason</th><th>Dead-lettered</th><th>Attempts</th><th>Id</th><th></th></tr></thead><tbody>
  ${list.map(d => `<tr data-dlq-id="${esc(d.job.id)}"><td>${jobLink(d.job)}</td><td>${esc(d.job.namespace)}</td><td>${esc(d.job.level)}</td><td>${esc(d.failure_class)}</td>
    <td>${esc(d.reason)}</td><td>${esc(ago(d.dead_lettered_at))}</td><td class="num">${d.job.attempt}</td><td class="mono">${esc(d.job.id)}</td>
    <td>${can(d.job.namespace, "operator") ? `<div class="actions"><button class="primary" data-action="requeue" data-id="${esc(d.job.id)}">Requeue</button>
      <button data-action="requeue-front" data-id="${esc(d.job.id)}">Requeue at front</button>
      <button class="danger" data-action="purge" data-id="${esc(d.job.id)}">Purge</button></div>` : ""}</td></tr>`).join("")
    || `<tr><td colspan="9" class="muted">The dead-letter queue is empty.</td></tr>`}
  </tbody></table></div>`;
  document.getElementById("dlq-filters").addEventListener("submit", ev => {
    ev.preventDefault();
    location.hash = "#/dlq" + qs({ namespace: (new FormData(ev.target).get("namespace") || "").trim() });
  });
  const result = document.getElementById("action-result");
  for (const btn of app.querySelectorAll("button[data-action]")) {
    btn.addEventListener("click", async () => {
      const { action, id } = btn.dataset;
      if (action === "purge" && !confirm("Delete job " + id + " for good?")) return;
      btn.disabled = true;
      try {
        if (action === "purge") await post("/v1/dlq/purge" + qs({ id }));
        else await post("/v1/dlq/requeue" + qs({ id, front: action === "requeue-front" ? "true" : "" }));
        await render();
        document.getElementById("action-result").innerHTML = notice(action === "purge" ? `Purged ${id}.` : `Requeued ${id}.`);
      } catch (e) { result.innerHTML = notice(e.message, "error"); btn.disabled = false; }
    });
  }
  refreshTimer = setTimeout(() => render(), 10000);
}

// ---------------------------------------------------------------------------------------------
// Router

async function render() {
  clearTimeout(refreshTimer);
  const seq = ++renderSeq;
  const { parts, params } = route();
  try {
    await whoami();
    if (seq !== renderSeq) return;
    if (parts.length === 0) await overview(seq);
    else if (parts[0] === "jobs") await jobs(seq, params);
    else if (parts[0] === "job" && parts[1]) await jobPage(seq, decodeURIComponent(parts[1]), params);
    else if (parts[0] === "history") await historyPage(seq, params);
    else if (parts[0] === "schedules") await schedules(seq);
    else if (parts[0] === "dlq") await dlq(seq, params);
    else app.innerHTML = `<h1>Not found</h1>${notice("No page " + location.hash)}`;
    statusEl.textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = location.hash || "#/";
  } catch (e) {
    if (e instanceof AuthError) {
      if (seq === renderSeq) loginPage(token() ? e.message : "");
      return;
    }
    if (seq === renderSeq) showError(e);
    statusEl.textContent = "error";
    document.body.dataset.loaded = "error";
  }
}

window.addEventListener("hashchange", render);
render();
