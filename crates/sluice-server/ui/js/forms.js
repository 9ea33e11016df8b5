// Filter forms: pick-lists filled from the API (`GET /v1/choices`: levels from the
// configuration, states, the caller's namespaces and schedules) and date-range pickers
// (<input type="datetime-local"> in the browser's time zone, sent to the API as RFC 3339 UTC).

import { cached } from "./api.js";
import { esc, fromLocalInput, toLocalInput } from "./util.js";

// The pick-lists' choices, kept for 30 s.
export function choices() { return cached("/v1/choices", 30000); }

// A <select> named `name`: "any" (empty) first, then `values` (strings, or {value, text}).
// A current value that is not among them (an address typed by hand) is kept as a choice.
export function pick(name, label, values, current, anyText) {
  const opts = values.map(v => (typeof v === "string" ? { value: v, text: v } : v));
  if (current && !opts.some(o => o.value === current)) opts.push({ value: current, text: current });
  return `<label>${esc(label)}<select name="${esc(name)}" data-pick="${esc(name)}">
    <option value="">${esc(anyText || "any")}</option>
    ${opts.map(o => `<option value="${esc(o.value)}" ${o.value === current ? "selected" : ""}>${esc(o.text)}</option>`).join("")}
  </select></label>`;
}

// The schedules as pick-list values `namespace/name`.
export function scheduleValues(schedules) {
  return schedules.map(s => ({ value: s.namespace + "/" + s.name, text: s.namespace + "/" + s.name }));
}

// A date-and-time picker for the RFC 3339 instant `iso`, shown in local time to the second.
export function datePick(name, label, iso) {
  return `<label>${esc(label)}<input type="datetime-local" step="1" name="${esc(name)}" data-date="${esc(name)}" value="${esc(toLocalInput(iso))}"></label>`;
}

// The form's fields by name, trimmed; date pickers converted to RFC 3339 in UTC.
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    const v = (el.value || "").trim();
    out[el.name] = el.type === "datetime-local" ? fromLocalInput(v) : v;
  }
  return out;
}
