// A job's page: what it is, why it waits, its timeline (with the time between steps), its log
// (followed: the last lines first, then only what was added) and its spec.

import { api, can, post } from "./api.js";
import { app, ago, badge, cores, ctx, duration, esc, mem, notice, qs, refreshIn, setNav, time, untilText } from "./util.js";

// How many lines of a log the page shows (its end).
export const LOG_LINES = 500;
// The most the page asks for at once while following a log; a log that grew more than this
// since the last look is read from its end again.
const CHUNK = 1 << 20;

// The log the page follows: its job and attempt, the lines kept, and where to read on.
let log = { key: null, text: "", offset: 0, complete: false, cut: false };

function keepEnd(text) {
  const lines = text.split("\n");
  // A final newline leaves an empty last element: it is not a line.
  const n = lines.length - (lines[lines.length - 1] === "" ? 1 : 0);
  if (n <= LOG_LINES) return { text, cut: false };
  return { text: lines.slice(n - LOG_LINES).join("\n"), cut: true };
}

// The end of the log of `attempt`: the last LOG_LINES lines on first sight
// (`GET .../logs?tail=N`), then only the bytes written since (`?offset=`).
async function followLog(id, attempt) {
  const key = id + "#" + attempt;
  const base = `/v1/jobs/${encodeURIComponent(id)}/logs`;
  if (log.key !== key) {
    const l = await api(base + qs({ tail: LOG_LINES, attempt }));
    const kept = keepEnd(l.data);
    log = { key, text: kept.text, offset: l.next_offset, complete: l.complete, cut: kept.cut || l.next_offset > new TextEncoder().encode(l.data).length };
  } else if (!log.complete) {
    const l = await api(base + qs({ offset: log.offset, max_bytes: CHUNK, attempt }));
    const kept = keepEnd(log.text + l.data);
    log.text = kept.text;
    log.cut = log.cut || kept.cut;
    log.complete = l.complete;
    // Far behind: read the end afresh next time rather than every byte in between.
    if (l.next_offset - log.offset >= CHUNK) log.key = null;
    log.offset = l.next_offset;
  }
  return log;
}

// What the time between two timeline rows was: "waited 3.4 s" in the queue, and so on.
const GAP_WORDS = { queued: "waited", admitted: "starting for", submitted: "submitted for", running: "ran" };
function gapText(prev, e) {
  const s = (Date.parse(e.at) - Date.parse(prev.at)) / 1000;
  return (GAP_WORDS[e.from || prev.to] || "after") + " " + duration(s);
}

export async function jobPage(seq, id, params) {
  setNav("jobs");
  const j = await api(`/v1/jobs/${encodeURIComponent(id)}`);
  // The log of the attempt asked for in the address (#/job/ID?attempt=N), else the current one.
  const asked = parseInt(params.get("attempt") || "", 10);
  const logAttempt = asked >= 1 && asked <= j.attempt ? asked : j.attempt;
  const log = await followLog(id, logAttempt).catch(e => ({ text: "(log unavailable: " + e.message + ")", complete: true, cut: false }));
  if (seq !== ctx.seq) return;
  const o = j.orchestration || null;
  const inDlq = o && o.dead_lettered_at;
  const terminal = ["succeeded", "failed", "cancelled"].includes(j.state);
  const wait = j.wait;
  const events = j.timeline || [];
  const attempts = events.filter(e => e.to === "admitted").length;
  // The workflow run a step's job belongs to (the label the run puts on it).
  const wfRun = (j.labels || {})["sluice.io/workflow-run"];
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
      ${wfRun ? `<dt>Workflow run</dt><dd><a class="mono" id="job-workflow-run" href="#/workflow-run/${encodeURIComponent(wfRun)}">${esc(wfRun)}</a> (step ${esc((j.labels || {})["sluice.io/workflow-step"] || "?")})</dd>` : ""}
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
    <table id="timeline"><thead><tr><th>At</th><th>From</th><th>To</th><th class="num">After</th><th>What happened</th></tr></thead><tbody>
    ${events.map((e, i) => `<tr><td>${esc(time(e.at))}</td><td>${e.from ? badge(e.from) : ""}</td><td>${badge(e.to)}</td><td class="num gap">${i ? esc(gapText(events[i - 1], e)) : "–"}</td><td>${esc(e.message)}</td></tr>`).join("")}
    </tbody></table></div>
  <div class="panel" style="margin-top:16px"><h2>Log of attempt ${logAttempt} ${log.complete ? "" : "(still running: new lines are added as they come)"}</h2>
    ${log.cut ? `<p class="muted" id="log-cut">The last ${LOG_LINES} lines; <code>sluice logs ${esc(id)}</code> prints the whole log.</p>` : ""}
    ${j.attempt > 1 ? `<p id="log-attempts">Attempts: ${Array.from({ length: j.attempt }, (_, i) => i + 1).map(a => a === logAttempt ? `<b>${a}</b>` : `<a href="#/job/${encodeURIComponent(id)}?attempt=${a}">${a}</a>`).join(" · ")}</p>` : ""}
    <pre class="log" id="log">${esc(log.text) || '<span class="muted">(no output)</span>'}</pre></div>
  <div class="panel" style="margin-top:16px"><h2>Spec</h2><pre id="spec">${esc(JSON.stringify(j.spec, null, 2))}</pre></div>`;
  const result = document.getElementById("action-result");
  const act = (btn, fn) => btn && btn.addEventListener("click", async () => {
    btn.disabled = true;
    try { await fn(); ctx.render(); } catch (e) { result.innerHTML = notice(e.message, "error"); btn.disabled = false; }
  });
  act(document.getElementById("cancel-job"), () => post(`/v1/jobs/${encodeURIComponent(id)}/cancel`));
  act(document.getElementById("requeue-job"), () => post("/v1/dlq/requeue" + qs({ id })));
  if (!terminal) refreshIn(3000);
}

