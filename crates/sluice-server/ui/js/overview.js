// The overview: capacity and allocation, the waiting jobs (position, reason, expected start),
// the queues, the running jobs and the last six hours.

import { api } from "./api.js";
import { byNamespace, chart } from "./charts.js";
import { app, cores, ctx, duration, esc, ago, jobLink, badge, mem, pct, qs, refreshIn, setNav, time, untilText } from "./util.js";

// The most waiting jobs the overview lists.
const WAITING_MAX = 200;

// Waiting jobs in queue order: by namespace, then position (jobs the last scheduling cycle has
// not yet placed last).
function waitingTable(jobs, queuedTotal) {
  const pos = j => (j.wait ? j.wait.position : Number.MAX_SAFE_INTEGER);
  const rows = jobs.slice().sort((a, b) => a.namespace.localeCompare(b.namespace) || pos(a) - pos(b)
    || Date.parse(a.enqueued_at) - Date.parse(b.enqueued_at));
  const more = queuedTotal > rows.length ? ` (the first ${rows.length} of ${queuedTotal})` : "";
  return `<div class="panel" style="margin-top:16px"><h2>Waiting jobs${esc(more)}</h2>
    <table id="waiting"><thead><tr><th class="num">Position</th><th>Namespace</th><th>Level</th><th>Job</th><th>Why it waits</th><th>Expected start</th><th class="num">Waited</th></tr></thead><tbody>
    ${rows.map(j => {
      const w = j.wait;
      const eta = w && w.estimated_start;
      return `<tr class="link" data-href="#/job/${encodeURIComponent(j.id)}" data-job-id="${esc(j.id)}">
        <td class="num pos">${w ? `${w.position} <span class="muted">(${w.level_position} in ${esc(j.level)})</span>` : "–"}</td>
        <td>${esc(j.namespace)}</td><td>${esc(j.level)}</td><td>${jobLink(j)}</td>
        <td class="reason-cell">${w ? `<b>${esc(w.reason_kind)}</b>: ${esc(w.reason)}` : `<span class="muted">waiting for the next scheduling cycle</span>`}</td>
        <td class="eta" title="${eta ? esc(time(eta)) : ""}">${eta ? esc(untilText(eta)) : "–"}</td>
        <td class="num">${duration((Date.now() - Date.parse(j.enqueued_at)) / 1000)}</td></tr>`;
    }).join("") || `<tr><td colspan="7" class="muted">No job is waiting.</td></tr>`}
    </tbody></table></div>`;
}

export async function overview(seq) {
  setNav("overview");
  const [cluster, queues, running, queued, hist] = await Promise.all([
    api("/v1/cluster"),
    api("/v1/queues"),
    api("/v1/jobs" + qs({ state: "admitted,submitted,running", limit: 200 })),
    api("/v1/jobs" + qs({ state: "queued", limit: WAITING_MAX })),
    api("/v1/history" + qs({ from: new Date(Date.now() - 6 * 3600000).toISOString(), step: "5m" })),
  ]);
  if (seq !== ctx.seq) return;
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
  ${waitingTable(queued.jobs, queuedTotal)}
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
  for (const tr of app.querySelectorAll("#waiting tr[data-href]")) {
    tr.addEventListener("click", ev => { if (!ev.target.closest("a")) location.hash = tr.dataset.href; });
  }
  refreshIn(5000);
}

