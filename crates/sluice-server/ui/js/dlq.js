// Dead letters: jobs that used up their attempts, filtered by namespace, level and schedule,
// requeued or purged by an operator.

import { api, can, post } from "./api.js";
import { choices, formValues, pick, scheduleValues } from "./forms.js";
import { ago, app, ctx, esc, jobLink, notice, qs, refreshIn, setNav } from "./util.js";

export async function dlq(seq, params) {
  setNav("dlq");
  const namespace = params.get("namespace") || "";
  const level = params.get("level") || "";
  const schedule = params.get("schedule") || "";
  // A schedule (`namespace/name`) is its namespace, which wins over the namespace filter.
  const cut = schedule.indexOf("/");
  const q = cut > 0 ? { namespace: schedule.slice(0, cut), schedule: schedule.slice(cut + 1) } : { namespace };
  const [list, ch] = await Promise.all([api("/v1/dlq" + qs({ ...q, level, limit: 500 })), choices()]);
  if (seq !== ctx.seq) return;
  app.innerHTML = `<h1 id="page-title">Dead letters</h1><div id="action-result"></div>
  <form class="filters" id="dlq-filters">
    ${pick("namespace", "namespace", ch.namespaces, namespace, "all")}
    ${pick("level", "level", ch.levels, level, "all")}
    ${pick("schedule", "schedule", scheduleValues(ch.schedules), schedule, "all")}
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
    const f = formValues(ev.target);
    location.hash = "#/dlq" + qs({ namespace: f.namespace, level: f.level, schedule: f.schedule });
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
        await ctx.render();
        document.getElementById("action-result").innerHTML = notice(action === "purge" ? `Purged ${id}.` : `Requeued ${id}.`);
      } catch (e) { result.innerHTML = notice(e.message, "error"); btn.disabled = false; }
    });
  }
  refreshIn(10000);
}

// ---------------------------------------------------------------------------------------------
