// The jobs list: filters (namespace, state and schedule from pick-lists, created-at range from
// date pickers), newest first, in pages.

import { api } from "./api.js";
import { choices, datePick, formValues, pick, scheduleValues } from "./forms.js";
import { app, badge, ctx, duration, esc, jobLink, qs, setNav, time, untilText } from "./util.js";

// The label a schedule puts on its runs.
export const SCHEDULE_LABEL = "sluice.io/schedule";

const JOB_FILTERS = ["namespace", "state", "schedule", "name", "label", "since", "until"];

// The API query of the page's filters: a schedule (`namespace/name`) is its namespace (which
// wins over the namespace filter) and its runs' label.
function apiFilters(filters) {
  const q = { ...filters };
  delete q.schedule;
  if (filters.schedule) {
    const i = filters.schedule.indexOf("/");
    const ns = filters.schedule.slice(0, i), name = filters.schedule.slice(i + 1);
    q.namespace = ns;
    q.label = [q.label, SCHEDULE_LABEL + "=" + name].filter(Boolean).join(",");
  }
  return q;
}

export async function jobs(seq, params) {
  setNav("jobs");
  const filters = {};
  for (const k of JOB_FILTERS) if (params.get(k)) filters[k] = params.get(k);
  const cursor = params.get("cursor") || "";
  const prev = params.get("prev") || "";
  const limit = Math.min(1000, Math.max(1, parseInt(params.get("limit") || "50", 10) || 50));
  if (params.get("limit")) filters.limit = String(limit);
  const [page, ch] = await Promise.all([
    api("/v1/jobs" + qs({ ...apiFilters(filters), limit, cursor })),
    choices(),
  ]);
  if (seq !== ctx.seq) return;
  const input = (k, ph) => `<label>${k}<input name="${k}" value="${esc(filters[k] || "")}" placeholder="${esc(ph)}"></label>`;
  // The cursors of earlier pages travel in `prev` (comma-separated), so Back works.
  const prevList = prev ? prev.split(",") : [];
  const nextHref = page.next_cursor ? "#/jobs" + qs({ ...filters, cursor: page.next_cursor, prev: prevList.concat([cursor || "-"]).join(",") }) : null;
  const backCursor = prevList.length ? prevList[prevList.length - 1] : null;
  const backHref = prevList.length ? "#/jobs" + qs({ ...filters, cursor: backCursor === "-" ? "" : backCursor, prev: prevList.slice(0, -1).join(",") }) : null;
  app.innerHTML = `<h1 id="page-title">Jobs</h1>
  <form class="filters" id="job-filters">
    ${pick("namespace", "namespace", ch.namespaces, filters.namespace)}
    ${pick("state", "state", ch.states, filters.state)}
    ${pick("schedule", "schedule", scheduleValues(ch.schedules), filters.schedule)}
    ${input("name", "exact name")}
    ${input("label", "key=value,…")}
    ${datePick("since", "created from", filters.since)}
    ${datePick("until", "created before", filters.until)}
    ${filters.limit ? `<input type="hidden" name="limit" value="${esc(filters.limit)}">` : ""}
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
    const f = formValues(ev.target);
    const p = {};
    for (const k of JOB_FILTERS.concat(["limit"])) p[k] = f[k] || "";
    location.hash = "#/jobs" + qs(p);
  });
  document.getElementById("clear-filters").addEventListener("click", () => { location.hash = "#/jobs"; });
}
