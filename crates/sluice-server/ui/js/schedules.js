// Schedules: the list, and a schedule's page with its runs as bars coloured by outcome and its
// next run times in the schedule's own time zone.

import { api, can, post } from "./api.js";
import { runBars } from "./charts.js";
import { SCHEDULE_LABEL } from "./jobs.js";
import { app, badge, ctx, duration, esc, jobLink, notice, qs, refreshIn, setNav, time, timeIn, untilText } from "./util.js";

// How many runs a schedule's page shows (the newest).
const RUNS = 60;

// The action buttons of a schedule (`key`: namespace/name, each part URI-encoded).
function actions(s, key) {
  if (!can(s.namespace, "submitter")) return "";
  return `<div class="actions">
        <button data-action="trigger" data-key="${esc(key)}">Run now</button>
        ${s.suspended ? `<button data-action="resume" data-key="${esc(key)}">Resume</button>` : `<button data-action="suspend" data-key="${esc(key)}">Suspend</button>`}
        <button class="danger" data-action="delete" data-key="${esc(key)}">Delete</button>
      </div>`;
}

// Wires the page's action buttons; after a delete, `gone` (if given) is where to go.
function bindActions(gone) {
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
        if (action === "delete" && gone) { location.hash = gone; return; }
        await ctx.render();
        document.getElementById("action-result").innerHTML = notice(action === "trigger" && r && r.id ? `Started job ${r.id}.` : `Done: ${action}.`);
      } catch (e) { result.innerHTML = notice(e.message, "error"); btn.disabled = false; }
    });
  }
}

export async function schedules(seq) {
  setNav("schedules");
  const list = await api("/v1/schedules");
  if (seq !== ctx.seq) return;
  app.innerHTML = `<h1 id="page-title">Schedules</h1><div id="action-result"></div>
  <div class="panel"><table id="schedules"><thead><tr><th>Namespace</th><th>Name</th><th>Schedule</th><th>Policy</th><th>Level</th><th>Next run</th><th>Last run</th><th>State</th><th></th></tr></thead><tbody>
  ${list.map(s => {
    const key = encodeURIComponent(s.namespace) + "/" + encodeURIComponent(s.name);
    return `<tr data-schedule="${esc(s.namespace + "/" + s.name)}"><td>${esc(s.namespace)}</td><td><a href="#/schedule/${key}" data-schedule-link="${esc(s.namespace + "/" + s.name)}"><b>${esc(s.name)}</b></a></td><td><code>${esc(s.schedule)}</code> <span class="muted">${esc(s.time_zone)}</span></td>
      <td>${esc(s.concurrency_policy)} · missed: ${esc(s.missed_run_policy)}</td><td>${esc(s.level)}</td>
      <td class="next-run">${s.suspended || !s.next_run_at ? "–" : esc(timeIn(s.next_run_at, s.time_zone))}</td>
      <td>${s.last_job_id ? `<a href="#/job/${encodeURIComponent(s.last_job_id)}">${esc(time(s.last_run_at))}</a>` : "–"}${s.last_message ? `<div class="muted">${esc(s.last_message)}</div>` : ""}</td>
      <td>${s.suspended ? badge("suspended", "cancelled") : badge("active", "running")}</td>
      <td>${actions(s, key)}</td></tr>`;
  }).join("") || `<tr><td colspan="9" class="muted">No schedule. Create one with <code>sluice schedule create FILE</code>.</td></tr>`}
  </tbody></table></div>`;
  bindActions();
  refreshIn(10000);
}

// One schedule: its settings, its next runs in its own time zone, its runs as bars.
export async function schedulePage(seq, namespace, name) {
  setNav("schedules");
  const key = encodeURIComponent(namespace) + "/" + encodeURIComponent(name);
  const [s, page] = await Promise.all([
    api(`/v1/schedules/${key}`),
    api("/v1/jobs" + qs({ namespace, label: SCHEDULE_LABEL + "=" + name, limit: RUNS })),
  ]);
  if (seq !== ctx.seq) return;
  const runs = page.jobs.slice().reverse();
  const counts = {};
  for (const r of runs) counts[r.state] = (counts[r.state] || 0) + 1;
  app.innerHTML = `<h1 id="page-title">Schedule ${esc(s.namespace)}/${esc(s.name)} ${s.suspended ? badge("suspended", "cancelled") : badge("active", "running")}</h1>
  <div id="action-result"></div>
  <div class="grid cols-2">
    <div class="panel"><h2>Schedule</h2><dl class="kv">
      <dt>Expression</dt><dd><code>${esc(s.schedule)}</code></dd>
      <dt>Time zone</dt><dd id="schedule-zone">${esc(s.time_zone)}</dd>
      <dt>Policy</dt><dd>${esc(s.concurrency_policy)} · missed runs: ${esc(s.missed_run_policy)}</dd>
      <dt>Level</dt><dd>${esc(s.level)}</dd>
      <dt>Last run</dt><dd>${s.last_job_id ? `<a href="#/job/${encodeURIComponent(s.last_job_id)}">${esc(time(s.last_run_at))}</a>` : "–"}</dd>
      <dt>Last check</dt><dd>${esc(s.last_message || "–")}</dd>
      <dt>Active runs</dt><dd>${s.active_runs.length ? s.active_runs.map(id => `<a class="mono" href="#/job/${encodeURIComponent(id)}">${esc(id)}</a>`).join(" ") : "none"}</dd>
    </dl><div style="margin-top:12px">${actions(s, key)}</div></div>
    <div class="panel"><h2>Next runs (${esc(s.time_zone)})</h2>
      ${s.suspended ? `<p class="muted">Suspended: no run is due.</p>` : ""}
      <ol id="next-runs">${s.next_runs.map(t => `<li data-at="${esc(t)}"><b>${esc(timeIn(t, s.time_zone))}</b> <span class="muted">${esc(untilText(t))}; here ${esc(time(t))}</span></li>`).join("") || `<li class="muted">none</li>`}</ol>
    </div>
  </div>
  <div class="panel" style="margin-top:16px">${runBars({ id: "runs", title: `The last ${runs.length} run(s), by outcome (height: how long each ran)`, runs })}
    <p class="muted" id="run-counts">${Object.entries(counts).map(([k, v]) => `${v} ${esc(k)}`).join(" · ") || "no run yet"}</p></div>
  <div class="panel" style="margin-top:16px"><h2>Runs</h2>
    <table id="schedule-runs"><thead><tr><th>Job</th><th>State</th><th>Created</th><th class="num">Ran for</th><th>Message</th><th>Id</th></tr></thead><tbody>
    ${page.jobs.map(j => {
      const ran = j.started_at ? ((j.finished_at ? Date.parse(j.finished_at) : Date.now()) - Date.parse(j.started_at)) / 1000 : null;
      return `<tr><td>${jobLink(j)}</td><td>${badge(j.state)}</td><td>${esc(time(j.created_at))}</td><td class="num">${ran == null ? "–" : duration(ran)}</td><td>${esc((j.message || "").slice(0, 90))}</td><td class="mono">${esc(j.id)}</td></tr>`;
    }).join("") || `<tr><td colspan="6" class="muted">No run yet.</td></tr>`}
    </tbody></table></div>`;
  bindActions("#/schedules");
  refreshIn(10000);
}
