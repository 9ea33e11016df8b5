// Workflows: the list of workflow runs (filters: namespace, workflow and state from
// pick-lists), newest first, and a run's page with its DAG (dag.js), its steps and the Cancel
// and Rerun buttons (`POST /v1/workflow-runs/{id}/cancel`, `.../rerun`), shown to a caller
// with the submitter role in the run's namespace when the action makes sense.

import { api, can, post } from "./api.js";
import { dagLegend, dagSvg, stepState } from "./dag.js";
import { choices, formValues, pick } from "./forms.js";
import { app, badge, ctx, duration, esc, notice, qs, refreshIn, setNav, time } from "./util.js";

// The states of a run (`RunState`).
export const RUN_STATES = ["running", "succeeded", "failed", "cancelled"];
// The label a workflow run puts on its steps' jobs.
export const RUN_LABEL = "sluice.io/workflow-run";

const RUN_FILTERS = ["namespace", "workflow", "state", "limit"];

function runHref(id) { return "#/workflow-run/" + encodeURIComponent(id); }

export function runLink(id) { return `<a href="${runHref(id)}" data-run-id="${esc(id)}" class="mono">${esc(id)}</a>`; }

// How long a run took (or has taken so far), in seconds.
function runSeconds(r) {
  return ((r.finishedAt ? Date.parse(r.finishedAt) : Date.now()) - Date.parse(r.createdAt)) / 1000;
}

// "2 succeeded · 1 failed · 1 skipped", by the states the DAG draws.
function stepCounts(steps) {
  const n = {};
  for (const s of steps) { const k = stepState(s); n[k] = (n[k] || 0) + 1; }
  return Object.entries(n).map(([k, v]) => `${v} ${k}`).join(" · ");
}

export async function workflowRuns(seq, params) {
  setNav("workflows");
  const f = {};
  for (const k of RUN_FILTERS) if (params.get(k)) f[k] = params.get(k);
  const limit = Math.min(1000, Math.max(1, parseInt(f.limit || "100", 10) || 100));
  // A workflow (`namespace/name`) is its namespace, which wins over the namespace filter.
  const q = { namespace: f.namespace, state: f.state, limit };
  if (f.workflow) {
    const i = f.workflow.indexOf("/");
    q.namespace = f.workflow.slice(0, i);
    q.workflow = f.workflow.slice(i + 1);
  }
  const [runs, ch, wfs] = await Promise.all([api("/v1/workflow-runs" + qs(q)), choices(), api("/v1/workflows")]);
  if (seq !== ctx.seq) return;
  const namespaces = [...new Set(ch.namespaces.concat(wfs.map(w => w.namespace)))].sort();
  const workflows = wfs.map(w => w.namespace + "/" + w.name);
  app.innerHTML = `<h1 id="page-title">Workflow runs</h1>
  <form class="filters" id="run-filters">
    ${pick("namespace", "namespace", namespaces, f.namespace)}
    ${pick("workflow", "workflow", workflows, f.workflow)}
    ${pick("state", "state", RUN_STATES, f.state)}
    ${f.limit ? `<input type="hidden" name="limit" value="${esc(f.limit)}">` : ""}
    <button class="primary" type="submit">Filter</button>
    <button type="button" id="clear-filters">Clear</button>
    <span class="muted">${runs.length} run(s)${runs.length === limit ? ", the newest " + limit : ""}</span>
  </form>
  <div class="panel">
  <table id="workflow-runs"><thead><tr><th>Namespace</th><th>Workflow</th><th>Run</th><th>State</th><th class="num">Attempt</th><th>Trigger</th><th>Started</th><th class="num">Duration</th><th>Steps</th><th>Message</th></tr></thead><tbody>
  ${runs.map(r => `<tr data-run="${esc(r.id)}"><td>${esc(r.namespace)}</td><td><b>${esc(r.workflow)}</b></td><td>${runLink(r.id)}</td>
    <td>${badge(r.state)}${r.cancelRequested && r.state === "running" ? " " + badge("cancelling", "cancelled") : ""}</td><td class="num">${r.attempt}</td><td>${esc(r.trigger)}</td>
    <td>${esc(time(r.createdAt))}</td><td class="num">${esc(duration(runSeconds(r)))}</td><td class="step-counts">${esc(stepCounts(r.steps))}</td>
    <td>${esc((r.message || "").slice(0, 90))}</td></tr>`).join("")
    || `<tr><td colspan="10" class="muted">No workflow run matches. Start one with <code>sluice workflow run FILE</code>.</td></tr>`}
  </tbody></table></div>`;
  document.getElementById("run-filters").addEventListener("submit", ev => {
    ev.preventDefault();
    const v = formValues(ev.target);
    const p = {};
    for (const k of RUN_FILTERS) p[k] = v[k] || "";
    location.hash = "#/workflows" + qs(p);
  });
  document.getElementById("clear-filters").addEventListener("click", () => { location.hash = "#/workflows"; });
  if (runs.some(r => r.state === "running")) refreshIn(5000);
}

// The buttons a caller may use on run `r` now.
function actions(r) {
  if (!can(r.namespace, "submitter")) return "";
  const cancel = r.state === "running" && !r.cancelRequested;
  const rerun = r.state === "failed" || r.state === "cancelled";
  return `${cancel ? `<button class="danger" id="cancel-run">Cancel</button>` : ""}
    ${rerun ? `<button class="primary" id="rerun-run">Rerun from the failed steps</button>` : ""}`;
}

export async function workflowRunPage(seq, id) {
  setNav("workflows");
  const r = await api("/v1/workflow-runs/" + encodeURIComponent(id));
  if (seq !== ctx.seq) return;
  const params = Object.entries(r.parameters || {});
  const wfFilter = "#/workflows" + qs({ workflow: r.namespace + "/" + r.workflow });
  app.innerHTML = `<h1 id="page-title">Workflow ${esc(r.namespace)}/${esc(r.workflow)} ${badge(r.state)}${r.cancelRequested && r.state === "running" ? " " + badge("cancelling", "cancelled") : ""}</h1>
  <div id="action-result"></div>
  <div class="panel"><h2>Graph</h2>
    <div class="dag">${dagSvg(r.steps)}</div>${dagLegend()}
    <p class="muted">A box links to its step's job.</p></div>
  <div class="panel" style="margin-top:16px"><h2>Run</h2><dl class="kv">
      <dt>Id</dt><dd class="mono" id="run-id">${esc(r.id)}</dd>
      <dt>Workflow</dt><dd><a href="${wfFilter}" id="workflow-runs-link">${esc(r.namespace)}/${esc(r.workflow)}</a> (its runs)</dd>
      <dt>Attempt</dt><dd id="run-attempt">${r.attempt}</dd>
      <dt>Trigger</dt><dd>${esc(r.trigger)}</dd>
      <dt>Logical date</dt><dd>${esc(r.logicalDate)}</dd>
      <dt>Parameters</dt><dd>${params.map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(" ") || "–"}</dd>
      <dt>Started</dt><dd>${esc(time(r.createdAt))}</dd>
      <dt>Finished</dt><dd>${esc(time(r.finishedAt)) || "–"}</dd>
      <dt>Duration</dt><dd>${esc(duration(runSeconds(r)))}</dd>
      <dt>Message</dt><dd id="run-message">${esc(r.message || "–")}</dd>
    </dl>
    <div class="actions" style="margin-top:12px">${actions(r)}</div></div>
  <div class="panel" style="margin-top:16px"><h2>Steps</h2>
    <table id="run-steps"><thead><tr><th>Step</th><th>State</th><th>After</th><th>Trigger</th><th>Job</th><th class="num">Attempt</th><th>Earlier jobs</th><th>Message</th></tr></thead><tbody>
    ${r.steps.map(s => `<tr data-step="${esc(s.name)}"><td><b>${esc(s.name)}</b></td><td>${badge(stepState(s))}</td>
      <td>${esc((s.dependsOn || []).join(", ") || "–")}</td><td>${esc(s.trigger)}</td>
      <td>${s.jobId ? `<a class="mono" href="#/job/${encodeURIComponent(s.jobId)}">${esc(s.jobId)}</a>` : "–"}</td>
      <td class="num">${s.jobAttempt == null ? "–" : s.jobAttempt}</td>
      <td>${(s.previousJobs || []).map(j => `<a class="mono" href="#/job/${encodeURIComponent(j)}">${esc(j)}</a>`).join(" ") || "–"}</td>
      <td>${esc(s.message || "")}</td></tr>`).join("")}
    </tbody></table></div>`;
  const result = document.getElementById("action-result");
  const act = (btn, path, done) => btn && btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      const after = await post(path);
      await ctx.render();
      document.getElementById("action-result").innerHTML = notice(done(after));
    } catch (e) { result.innerHTML = notice(e.message, "error"); btn.disabled = false; }
  });
  const base = "/v1/workflow-runs/" + encodeURIComponent(r.id);
  act(document.getElementById("cancel-run"), base + "/cancel", () => "Cancelling: its queued and running steps are being cancelled.");
  act(document.getElementById("rerun-run"), base + "/rerun", a => `Rerun: attempt ${a.attempt}${a.message ? " (" + a.message + ")" : ""}.`);
  if (r.state === "running") refreshIn(3000);
}
