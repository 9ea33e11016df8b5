// The history page: queue length, waits, CPU requested and jobs finished over a range (a
// preset, or one picked with the date pickers), by namespace and level.

import { api } from "./api.js";
import { byNamespace, chart, worstWait } from "./charts.js";
import { choices, datePick, formValues, pick } from "./forms.js";
import { app, ctx, duration, esc, PALETTE, qs, refreshIn, setNav, time } from "./util.js";

const RANGES = { "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400 };

export async function historyPage(seq, params) {
  setNav("history");
  const range = RANGES[params.get("range")] ? params.get("range") : "24h";
  const namespace = params.get("namespace") || "";
  const level = params.get("level") || "";
  // A range picked with the date pickers wins over the preset.
  const now = Date.now();
  const from = params.get("from") || new Date(now - RANGES[range] * 1000).toISOString();
  const to = params.get("to") || new Date(now).toISOString();
  const [hist, ch] = await Promise.all([
    api("/v1/history" + qs({ from, to, namespace, level })),
    choices(),
  ]);
  const cluster = await api("/v1/cluster").catch(() => null);
  if (seq !== ctx.seq) return;
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
    ${pick("namespace", "namespace", ch.namespaces, namespace, "all")}
    ${pick("level", "level", ch.levels, level, "all")}
    ${datePick("from", "from", params.get("from"))}
    ${datePick("to", "to", params.get("to"))}
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
    const f = formValues(ev.target);
    location.hash = "#/history" + qs({ range: f.range, namespace: f.namespace, level: f.level, from: f.from, to: f.to });
  });
  refreshIn(30000);
}

