// Shared helpers of the web UI: escaping, formatting, the address (hash) and the page's
// refresh timer. Plain JavaScript, no dependencies.

export const app = document.getElementById("app");

// The page being drawn: `seq` tells a stale render (the user moved on) from the current one;
// `render` is the router's render, set by main.js.
export const ctx = { refreshTimer: null, seq: 0, render: null };

// Draws the page again in `ms` milliseconds.
export function refreshIn(ms) {
  clearTimeout(ctx.refreshTimer);
  ctx.refreshTimer = setTimeout(() => ctx.render(), ms);
}

export function esc(v) {
  return String(v == null ? "" : v)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}

export function route() {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, query] = h.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}

export function duration(s) {
  if (s == null || isNaN(s)) return "–";
  s = Math.max(0, s);
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.round((s % 86400) / 3600) + " h";
}

export function ago(iso) {
  if (!iso) return "";
  return duration((Date.now() - Date.parse(iso)) / 1000) + " ago";
}

// "in 25 min 0 s" (or "now") until an ISO time.
export function untilText(iso) {
  const s = (Date.parse(iso) - Date.now()) / 1000;
  return s <= 1 ? "now" : "in " + duration(s);
}

export function time(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// An instant shown in the IANA time zone `tz`: "2026-12-03 09:00 (Asia/Tokyo, GMT+9)".
export function timeIn(iso, tz) {
  const d = new Date(iso);
  let parts;
  try {
    parts = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", weekday: "short", timeZoneName: "short" }).formatToParts(d);
  } catch (_) {
    return time(iso) + " (" + tz + ")";
  }
  const p = Object.fromEntries(parts.map(x => [x.type, x.value]));
  return `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} (${tz}, ${p.timeZoneName})`;
}

// The value of an <input type="datetime-local"> (the browser's local time) for an RFC 3339
// instant, to the second.
export function toLocalInput(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (isNaN(t)) return "";
  const d = new Date(t);
  const two = n => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

// An <input type="datetime-local">'s value (local time) as RFC 3339 in UTC ("...Z"), or "".
export function fromLocalInput(v) {
  if (!v) return "";
  // A date-time without an offset is local time (ECMAScript's Date.parse).
  const t = new Date(v);
  if (isNaN(t.getTime())) return "";
  return t.toISOString().replace(/\.000Z$/, "Z");
}

export function cores(milli) { return (milli / 1000).toFixed(milli % 1000 ? 1 : 0); }
export function mem(mib) { return mib >= 1024 ? (mib / 1024).toFixed(1) + " GiB" : mib + " MiB"; }
export function pct(a, b) { return b > 0 ? Math.min(100, (100 * a) / b) : 0; }
// A small or large number with three significant digits ("0.00123", "12.3", "4560").
export function num(v) {
  if (v == null || isNaN(v)) return "–";
  if (v === 0) return "0";
  return Math.abs(v) >= 1000 ? v.toFixed(0) : String(+v.toPrecision(3));
}
export function badge(state, extra) { return `<span class="badge ${esc(extra || state)}">${esc(state)}</span>`; }
export function jobLink(j) { return `<a href="#/job/${encodeURIComponent(j.id)}" data-job-id="${esc(j.id)}">${esc(j.name)}</a>`; }

export function setNav(name) {
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === name);
}

export function notice(msg, kind) { return `<div class="notice ${kind || ""}">${esc(msg)}</div>`; }

export const PALETTE = ["#2f5fd0", "#1f8a4c", "#c23b3b", "#b7791f", "#6b5bd6", "#0f8a8a", "#a33ea1", "#5b6b82",
  "#d46a1f", "#3a9d3a"];

// The colour of a job's state (bars of a schedule's runs).
export const STATE_COLOR = { succeeded: "#1f8a4c", failed: "#c23b3b", cancelled: "#98a2b3", running: "#2f5fd0",
  submitted: "#b7791f", admitted: "#b7791f", queued: "#6b5bd6" };
