// sluice web UI: a small single-page app over sluice's HTTP API, as ES modules served by the
// server (crates/sluice-server/src/ui.rs). Plain JavaScript, no dependencies, nothing loaded
// from elsewhere. This module is the router: the address's hash names the page.

import { AuthError, loginPage, token, whoami } from "./api.js";
import { costPage } from "./cost.js";
import { dlq } from "./dlq.js";
import { historyPage } from "./history.js";
import { jobPage } from "./job.js";
import { jobs } from "./jobs.js";
import { overview } from "./overview.js";
import { schedulePage, schedules } from "./schedules.js";
import { app, ctx, notice, route } from "./util.js";
import { workflowRunPage, workflowRuns } from "./workflows.js";

const statusEl = document.getElementById("status");

function showError(e) {
  app.innerHTML = `<h1>Something went wrong</h1>${notice(e.message || String(e), "error")}`;
}

async function render() {
  clearTimeout(ctx.refreshTimer);
  const seq = ++ctx.seq;
  const { parts, params } = route();
  try {
    await whoami();
    if (seq !== ctx.seq) return;
    if (parts.length === 0) await overview(seq);
    else if (parts[0] === "jobs") await jobs(seq, params);
    else if (parts[0] === "job" && parts[1]) await jobPage(seq, decodeURIComponent(parts[1]), params);
    else if (parts[0] === "history") await historyPage(seq, params);
    else if (parts[0] === "schedules") await schedules(seq);
    else if (parts[0] === "schedule" && parts[1] && parts[2]) await schedulePage(seq, decodeURIComponent(parts[1]), decodeURIComponent(parts[2]));
    else if (parts[0] === "workflows") await workflowRuns(seq, params);
    else if (parts[0] === "workflow-run" && parts[1]) await workflowRunPage(seq, decodeURIComponent(parts[1]));
    else if (parts[0] === "dlq") await dlq(seq, params);
    else if (parts[0] === "cost") await costPage(seq, params);
    else app.innerHTML = `<h1>Not found</h1>${notice("No page " + location.hash)}`;
    if (seq !== ctx.seq) return;
    statusEl.textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = location.hash || "#/";
  } catch (e) {
    if (e instanceof AuthError) {
      if (seq === ctx.seq) loginPage(token() ? e.message : "");
      return;
    }
    if (seq === ctx.seq) showError(e);
    statusEl.textContent = "error";
    document.body.dataset.loaded = "error";
  }
}

ctx.render = render;
window.addEventListener("hashchange", render);
render();
