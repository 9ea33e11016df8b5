// Charts drawn as SVG by hand (no chart library): time series as lines or stacked bars
// (chart), a bar per run coloured by its state (runBars), and groups of side-by-side bars
// (pairBars).

import { esc, duration, PALETTE, STATE_COLOR } from "./util.js";

export function niceMax(v) {
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
export function chart(opts) {
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
export function byNamespace(hist, pick) {
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
export function worstWait(hist, key) {
  const n = hist.buckets.length;
  const out = new Array(n).fill(null);
  for (const s of hist.series) s[key].forEach((v, i) => { if (v != null) out[i] = Math.max(out[i] || 0, v); });
  return out;
}


// Axes of a bar chart: horizontal grid lines and y labels up to `max` (already nice).
function yAxis(W, H, L, R, T, B, max, label) {
  const y = v => T + (H - T - B) * (1 - v / max);
  let svg = `<g class="grid">`;
  for (let k = 0; k <= 4; k++) svg += `<line x1="${L}" x2="${W - R}" y1="${y((max * k) / 4)}" y2="${y((max * k) / 4)}"/>`;
  svg += `</g><g class="axis">`;
  for (let k = 0; k <= 4; k++) svg += `<text x="${L - 6}" y="${y((max * k) / 4) + 4}" text-anchor="end">${esc(label((max * k) / 4))}</text>`;
  return svg + `</g>`;
}

// A schedule's runs, oldest first, one bar each: its height how long it ran (queued runs get
// a stub), its colour its state; each bar links to its job.
// opts: {id, title, runs: [{id, state, created_at, started_at, finished_at}]}
export function runBars(opts) {
  const W = 640, H = 200, L = 52, R = 12, T = 10, B = 26;
  const runs = opts.runs;
  const now = Date.now();
  const secs = r => r.started_at ? Math.max(0, ((r.finished_at ? Date.parse(r.finished_at) : now) - Date.parse(r.started_at)) / 1000) : 0;
  const max = niceMax(Math.max(0, ...runs.map(secs)));
  const label = v => (v === 0 ? "0" : duration(v));
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}">` + yAxis(W, H, L, R, T, B, max, label);
  if (!runs.length) {
    svg += `<text class="empty" x="${(W + L) / 2}" y="${H / 2}" text-anchor="middle">no run yet</text>`;
  }
  const slot = (W - L - R) / Math.max(1, runs.length);
  const bw = Math.max(2, Math.min(40, slot * 0.7));
  const plotH = H - T - B;
  runs.forEach((r, i) => {
    const h = Math.max(8, (plotH * secs(r)) / max);
    const x = L + slot * i + (slot - bw) / 2;
    const color = STATE_COLOR[r.state] || "#98a2b3";
    const tip = `${r.state}, created ${new Date(r.created_at).toLocaleString()}${r.started_at ? ", ran " + duration(secs(r)) : ""}`;
    svg += `<a href="#/job/${encodeURIComponent(r.id)}"><rect class="run" x="${x.toFixed(1)}" y="${(T + plotH - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${color}" data-state="${esc(r.state)}" data-job-id="${esc(r.id)}"><title>${esc(tip)}</title></rect></a>`;
  });
  if (runs.length) {
    svg += `<g class="axis"><text x="${L}" y="${H - 8}" text-anchor="start">${esc(new Date(runs[0].created_at).toLocaleString())}</text>`;
    if (runs.length > 1) svg += `<text x="${W - R}" y="${H - 8}" text-anchor="end">${esc(new Date(runs[runs.length - 1].created_at).toLocaleString())}</text>`;
    svg += `</g>`;
  }
  svg += `</svg>`;
  const states = [...new Set(runs.map(r => r.state))];
  const legend = states.map(s => `<span><i style="background:${STATE_COLOR[s] || "#98a2b3"}"></i>${esc(s)}</span>`).join("");
  return `<div class="chart" data-chart="${esc(opts.id)}"><h2>${esc(opts.title)}</h2>${svg}<div class="legend">${legend}</div></div>`;
}

// Groups of side-by-side bars on one scale (what was requested next to what was used).
// opts: {id, title, fmt, groups: [{label, bars: [{series, value, color}]}]}
export function pairBars(opts) {
  const W = 640, H = 220, L = 60, R = 12, T = 10, B = 40;
  const groups = opts.groups;
  const fmt = opts.fmt || (v => String(+v.toPrecision(3)));
  const max = niceMax(Math.max(0, ...groups.flatMap(g => g.bars.map(b => b.value || 0))));
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}">` + yAxis(W, H, L, R, T, B, max, v => (v === 0 ? "0" : fmt(v)));
  if (!groups.length) svg += `<text class="empty" x="${(W + L) / 2}" y="${H / 2}" text-anchor="middle">no data</text>`;
  const slot = (W - L - R) / Math.max(1, groups.length);
  const plotH = H - T - B;
  const every = Math.max(1, Math.ceil(groups.length / 8));
  groups.forEach((g, i) => {
    const n = Math.max(1, g.bars.length);
    const bw = Math.max(2, Math.min(28, (slot * 0.8) / n));
    const x0 = L + slot * i + (slot - bw * n) / 2;
    g.bars.forEach((b, k) => {
      const h = (plotH * (b.value || 0)) / max;
      svg += `<rect x="${(x0 + bw * k).toFixed(1)}" y="${(T + plotH - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(0, h).toFixed(2)}" fill="${b.color}" data-series="${esc(b.series)}" data-group="${esc(g.label)}" data-value="${b.value || 0}"><title>${esc(g.label)} · ${esc(b.series)}: ${esc(fmt(b.value || 0))}</title></rect>`;
    });
    if (i % every === 0) svg += `<g class="axis"><text x="${(L + slot * i + slot / 2).toFixed(1)}" y="${H - 22}" text-anchor="middle">${esc(g.label)}</text></g>`;
  });
  svg += `</svg>`;
  const series = [];
  for (const g of groups) for (const b of g.bars) if (!series.some(s => s.series === b.series)) series.push(b);
  const legend = series.map(s => `<span><i style="background:${s.color}"></i>${esc(s.series)}</span>`).join("");
  return `<div class="chart" data-chart="${esc(opts.id)}"><h2>${esc(opts.title)}</h2>${svg}<div class="legend">${legend}</div></div>`;
}

