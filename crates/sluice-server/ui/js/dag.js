// A workflow run's DAG drawn as SVG by hand: one box per step, laid out left to right by
// dependency layer (a step with no dependency is in layer 0, any other one layer after its
// deepest dependency), an arrow for each `dependsOn`, each box coloured by its step's state and
// linked to its job's page, with the legend of the colours.

import { esc } from "./util.js";

// The states a step is drawn in, in the legend's order.
export const STEP_STATES = ["waiting", "queued", "running", "succeeded", "failed", "skipped", "cancelled"];

// Each state's fill and text colour.
export const STEP_STYLE = {
  waiting: { fill: "#d0d5dd", text: "#1d2330" },
  queued: { fill: "#6b5bd6", text: "#ffffff" },
  running: { fill: "#2f5fd0", text: "#ffffff" },
  succeeded: { fill: "#1f8a4c", text: "#ffffff" },
  failed: { fill: "#c23b3b", text: "#ffffff" },
  skipped: { fill: "#f2d29b", text: "#6b430b" },
  cancelled: { fill: "#7d8796", text: "#ffffff" },
};

// What the legend says each state means.
const MEANING = {
  waiting: "its dependencies have not allowed it yet",
  queued: "its job waits in the queue for room",
  running: "its job was admitted, is starting or runs",
  succeeded: "its job succeeded",
  failed: "its job failed (retries used up)",
  skipped: "an upstream result means it will not run",
  cancelled: "the run was cancelled",
};

// The state a step of `GET /v1/workflow-runs/{id}` is drawn in: its status, and for an active
// step its job's state (queued, or running once admitted).
export function stepState(s) {
  if (s.status !== "active") return STEP_STYLE[s.status] ? s.status : "waiting";
  if (s.jobState === "queued") return "queued";
  if (["admitted", "submitted", "running"].includes(s.jobState)) return "running";
  return STEP_STYLE[s.jobState] ? s.jobState : "running";
}

// Each step's layer (by name). A dependency on an unknown step is ignored and a cycle (refused
// at submit) is cut where it is met, so that a damaged definition still draws.
export function layers(steps) {
  const byName = new Map(steps.map(s => [s.name, s]));
  const layer = new Map();
  const visiting = new Set();
  const of = name => {
    if (layer.has(name)) return layer.get(name);
    if (visiting.has(name)) return 0;
    visiting.add(name);
    const deps = (byName.get(name).dependsOn || []).filter(d => byName.has(d));
    const l = deps.length ? 1 + Math.max(...deps.map(of)) : 0;
    visiting.delete(name);
    layer.set(name, l);
    return l;
  };
  for (const s of steps) of(s.name);
  return layer;
}

// The columns of steps: one per layer; a column after the first is ordered by the mean row of
// each step's dependencies (fewer crossings), ties in document order.
function columns(steps) {
  const layer = layers(steps);
  const cols = [];
  for (const s of steps) {
    const l = layer.get(s.name);
    while (cols.length <= l) cols.push([]);
    cols[l].push(s);
  }
  const row = new Map();
  cols.forEach((col, l) => {
    if (l > 0) {
      const key = s => {
        const rows = (s.dependsOn || []).filter(d => row.has(d)).map(d => row.get(d));
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : 0;
      };
      const keyed = col.map((s, i) => ({ s, i, k: key(s) }));
      keyed.sort((a, b) => a.k - b.k || a.i - b.i);
      cols[l] = keyed.map(x => x.s);
    }
    cols[l].forEach((s, i) => row.set(s.name, i));
  });
  return cols;
}

const BOX_W = 172, BOX_H = 50, GAP_X = 72, GAP_Y = 22, PAD = 14;

function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }

// The SVG of the run's steps (`steps` as `GET /v1/workflow-runs/{id}` answers them).
export function dagSvg(steps) {
  const cols = columns(steps);
  const rows = Math.max(1, ...cols.map(c => c.length));
  const W = PAD * 2 + cols.length * BOX_W + Math.max(0, cols.length - 1) * GAP_X;
  const H = PAD * 2 + rows * BOX_H + (rows - 1) * GAP_Y;
  const at = new Map();
  cols.forEach((col, l) => {
    // Each column centred on the tallest one.
    const top = PAD + ((rows - col.length) * (BOX_H + GAP_Y)) / 2;
    col.forEach((s, i) => at.set(s.name, { x: PAD + l * (BOX_W + GAP_X), y: top + i * (BOX_H + GAP_Y) }));
  });
  let svg = `<svg id="dag" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="the run's steps and their dependencies">
  <defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#98a2b3"/></marker></defs>`;
  for (const s of steps) {
    const to = at.get(s.name);
    for (const d of s.dependsOn || []) {
      const from = at.get(d);
      if (!from) continue;
      const x1 = from.x + BOX_W, y1 = from.y + BOX_H / 2, x2 = to.x, y2 = to.y + BOX_H / 2;
      const bend = Math.max(GAP_X / 2, (x2 - x1) / 3);
      svg += `<path class="edge" data-from="${esc(d)}" data-to="${esc(s.name)}" d="M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}" marker-end="url(#dag-arrow)"/>`;
    }
  }
  for (const s of steps) {
    const { x, y } = at.get(s.name);
    const state = stepState(s);
    const style = STEP_STYLE[state];
    const tip = `${s.name}: ${state}${s.jobId ? " (job " + s.jobId + ")" : ""}${s.message ? "\n" + s.message : ""}`;
    const box = `<g class="step" data-step="${esc(s.name)}" data-state="${esc(state)}" data-job-id="${esc(s.jobId || "")}">
      <title>${esc(tip)}</title>
      <rect class="step-box" x="${x}" y="${y}" width="${BOX_W}" height="${BOX_H}" rx="7" fill="${style.fill}"/>
      <text x="${x + 10}" y="${y + 21}" fill="${style.text}" class="step-name">${esc(clip(s.name, 22))}</text>
      <text x="${x + 10}" y="${y + 39}" fill="${style.text}" class="step-state">${esc(state)}${s.jobAttempt > 1 ? " · attempt " + s.jobAttempt : ""}${s.previousJobs && s.previousJobs.length ? " · rerun" : ""}</text></g>`;
    svg += s.jobId ? `<a class="step-link" data-step="${esc(s.name)}" href="#/job/${encodeURIComponent(s.jobId)}">${box}</a>` : box;
  }
  return svg + `</svg>`;
}

// The legend: every state's colour and what it means.
export function dagLegend() {
  return `<div class="legend" id="dag-legend">${STEP_STATES.map(s =>
    `<span data-legend="${s}" title="${esc(MEANING[s])}"><i style="background:${STEP_STYLE[s].fill}" data-fill="${STEP_STYLE[s].fill}"></i>${s}</span>`).join("")}</div>`;
}
