// The cost page (issue 17): the top wasters (what jobs held against what they used), cost per
// namespace per day, and one job's runs, requested next to used, with its right-sizing
// advice. From `GET /v1/cost`, `/v1/cost/runs` and `/v1/advice` (see docs/cost.md).

import { api } from "./api.js";
import { chart, pairBars } from "./charts.js";
import { choices, datePick, formValues, pick } from "./forms.js";
import { app, ctx, esc, mem, num, PALETTE, qs, refreshIn, setNav, time } from "./util.js";

// How many wasters the table lists, and runs the job charts show.
const TOP = 10;
const RUNS = 30;
const HELD = "#98a2b3";
const USED = "#2f5fd0";
const DAY = 86400000;

function percent(v) { return v == null ? "–" : (100 * v).toFixed(0) + "%"; }

// One bar per UTC day of the window, a stack per namespace.
function costByDay(view) {
  const from = Date.parse(view.from), to = Date.parse(view.to);
  const days = [];
  for (let t = Math.floor(from / DAY) * DAY; t < to; t += DAY) days.push(t);
  const byNs = new Map();
  for (const g of view.groups) {
    const i = days.indexOf(Date.parse(g.key + "T00:00:00Z"));
    if (i < 0) continue;
    const vals = byNs.get(g.namespace) || days.map(() => 0);
    vals[i] += g.cost;
    byNs.set(g.namespace, vals);
  }
  const series = [...byNs.entries()].map(([name, values], i) => ({ name, values, color: PALETTE[i % PALETTE.length] }));
  return chart({ id: "ns-cost", title: `Cost per namespace per day (${view.currency})`, times: days, kind: "bar", series, fmt: num });
}

// One job's runs: core-hours and GiB-hours held next to those used, and its advice.
async function jobPanel(job, range) {
  const cut = job.indexOf("/");
  const namespace = job.slice(0, cut), name = job.slice(cut + 1);
  const [runs, advice] = await Promise.all([
    api("/v1/cost/runs" + qs({ namespace, name, limit: RUNS, ...range })),
    api("/v1/advice" + qs({ by: "job", namespace, name, ...range })),
  ]);
  const label = r => new Date(r.run.ended_at_ms).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const groups = (pickHeld, pickUsed) => runs.map(r => ({
    label: label(r),
    bars: [
      { series: "requested (held)", value: pickHeld(r.efficiency), color: HELD },
      { series: "used", value: r.run.measured ? pickUsed(r.efficiency) : 0, color: USED },
    ],
  }));
  const a = (advice.advice || [])[0];
  const shape = s => s ? `driver ${mem(s.driver_heap_mib)}, executors ${s.executors} × ${mem(s.executor_heap_mib)} / ${s.executor_cores} core(s)` : "–";
  const adviceHtml = !a ? `<p class="muted">No advice: no run of this job in the range.</p>`
    : `<dl class="kv"><dt>Status</dt><dd id="advice-status">${esc(a.status.replace(/_/g, " "))}</dd>
      <dt>Based on</dt><dd>${a.based_on.length} run(s) · confidence ${esc(a.confidence)}</dd>
      <dt>Now</dt><dd>${esc(shape(a.current))}</dd>
      <dt>Advised</dt><dd>${esc(shape(a.recommended))}</dd>
      <dt>Saving a month</dt><dd>${num(a.monthly_saving.cost)} ${esc(advice.currency)} (${num(a.monthly_saving.core_hours)} core-h, ${num(a.monthly_saving.gib_hours)} GiB-h)</dd>
      ${a.warnings.length ? `<dt>Warnings</dt><dd>${a.warnings.map(esc).join("<br>")}</dd>` : ""}</dl>`;
  const rows = runs.slice().reverse().map(r => {
    const e = r.efficiency;
    return `<tr><td><a class="mono" href="#/job/${encodeURIComponent(r.run.job_id)}">${esc(r.run.job_id)}</a> #${r.run.attempt}</td><td>${esc(r.run.outcome)}</td><td>${esc(time(new Date(r.run.ended_at_ms).toISOString()))}</td>
      <td class="num">${num(e.held_core_hours)}</td><td class="num">${r.run.measured ? num(e.used_core_hours) : "–"}</td>
      <td class="num">${num(e.held_gib_hours)}</td><td class="num">${r.run.measured ? num(e.used_gib_hours) : "–"}</td>
      <td class="num">${num(e.cost)}</td><td class="num">${num(e.waste)}</td></tr>`;
  }).join("");
  return `<div class="panel" style="margin-top:16px" id="job-cost" data-job="${esc(job)}"><h2>${esc(job)}: requested against used, per run</h2>
    <div class="grid cols-2">
      <div>${pairBars({ id: "job-cpu", title: "CPU (core-hours)", groups: groups(e => e.held_core_hours, e => e.used_core_hours), fmt: num })}</div>
      <div>${pairBars({ id: "job-mem", title: "Memory (GiB-hours)", groups: groups(e => e.held_gib_hours, e => e.used_gib_hours), fmt: num })}</div>
    </div>
    <h2 style="margin-top:14px">Right-sizing advice</h2><div id="job-advice">${adviceHtml}</div>
    <h2 style="margin-top:14px">Runs</h2>
    <table id="job-runs"><thead><tr><th>Run</th><th>Outcome</th><th>Ended</th><th class="num">Core-h held</th><th class="num">Core-h used</th><th class="num">GiB-h held</th><th class="num">GiB-h used</th><th class="num">Cost</th><th class="num">Waste</th></tr></thead><tbody>
    ${rows || `<tr><td colspan="9" class="muted">No run in the range.</td></tr>`}</tbody></table></div>`;
}

export async function costPage(seq, params) {
  setNav("cost");
  const namespace = params.get("namespace") || "";
  const range = { from: params.get("from") || "", to: params.get("to") || "" };
  const [byJob, byDay, ch] = await Promise.all([
    api("/v1/cost" + qs({ by: "job", namespace, ...range })),
    api("/v1/cost" + qs({ by: "day", namespace, ...range })),
    choices(),
  ]);
  const money = v => num(v) + " " + byJob.currency;
  const wasters = byJob.groups.slice().sort((a, b) => b.waste - a.waste);
  const jobKeys = byJob.groups.map(g => g.namespace + "/" + g.key);
  // The job asked for in the address, else the top waster.
  const job = params.get("job") || (wasters[0] ? wasters[0].namespace + "/" + wasters[0].key : "");
  const jobHtml = job ? await jobPanel(job, range) : "";
  if (seq !== ctx.seq) return;
  const total = byJob.groups.reduce((a, g) => ({ cost: a.cost + g.cost, waste: a.waste + g.waste }), { cost: 0, waste: 0 });
  app.innerHTML = `<h1 id="page-title">Cost</h1>
  <form class="filters" id="cost-filters">
    ${pick("namespace", "namespace", ch.namespaces, namespace, "all")}
    ${datePick("from", "from", range.from)}
    ${datePick("to", "to", range.to)}
    ${pick("job", "job", jobKeys, params.get("job") || "", "top waster")}
    <button class="primary" type="submit">Show</button>
    <span class="muted">${esc(time(byJob.from))} – ${esc(time(byJob.to))} · cost ${esc(money(total.cost))}, of it idle ${esc(money(total.waste))}</span>
  </form>
  <div class="grid">
    <div class="panel"><h2>Top wasters: held and not used</h2>
      <table id="wasters"><thead><tr><th>Job</th><th>Namespace</th><th class="num">Runs</th><th class="num">Core-h held / used</th><th class="num">CPU use</th><th class="num">GiB-h held / used</th><th class="num">Memory use</th><th class="num">Cost</th><th class="num">Waste</th></tr></thead><tbody>
      ${wasters.slice(0, TOP).map(g => {
        const key = g.namespace + "/" + g.key;
        return `<tr data-job="${esc(key)}"><td><a href="#/cost${qs({ namespace, ...range, job: key })}">${esc(g.key)}</a></td><td>${esc(g.namespace)}</td>
        <td class="num">${g.measured_runs} / ${g.runs}</td><td class="num">${num(g.held_core_hours)} / ${num(g.used_core_hours)}</td><td class="num">${percent(g.cpu_utilisation)}</td>
        <td class="num">${num(g.held_gib_hours)} / ${num(g.used_gib_hours)}</td><td class="num">${percent(g.memory_utilisation)}</td>
        <td class="num">${esc(money(g.cost))}</td><td class="num waste">${esc(money(g.waste))}</td></tr>`;
      }).join("") || `<tr><td colspan="9" class="muted">No run ended in this range.</td></tr>`}
      </tbody></table>
      <p class="muted">Held: what sluice reserved for the run, for as long as it ran; used: what it measured. See docs/cost.md.</p></div>
    <div class="panel">${costByDay(byDay)}</div>
  </div>
  ${jobHtml}`;
  document.getElementById("cost-filters").addEventListener("submit", ev => {
    ev.preventDefault();
    const f = formValues(ev.target);
    location.hash = "#/cost" + qs({ namespace: f.namespace, from: f.from, to: f.to, job: f.job });
  });
  refreshIn(60000);
}
