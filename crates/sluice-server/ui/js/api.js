// The API client and the token: asked for once per browser tab, kept in sessionStorage (gone
// when the tab closes), sent as a bearer token with every API call. The server checks every
// call; the roles below only hide the buttons a token may not use.

import { app, ctx, esc, notice } from "./util.js";

const TOKEN_KEY = "sluice.token";
const ROLES = ["viewer", "submitter", "operator", "admin"];
let me = null;
// Answers kept for the signed-in caller (pick-list choices), dropped when the caller changes.
const kept = new Map();

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

export class AuthError extends Error {}

export async function api(path, opts) {
  opts = Object.assign({}, opts || {});
  opts.headers = Object.assign({}, opts.headers || {});
  if (token()) opts.headers["Authorization"] = "Bearer " + token();
  const res = await fetch(path, opts);
  let body = null;
  const text = await res.text();
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (!res.ok) {
    const msg = body && body.error ? body.error : (res.status + " " + res.statusText);
    if (res.status === 401) throw new AuthError(msg);
    throw new Error(msg);
  }
  return body;
}

export function post(path) { return api(path, { method: "POST" }); }

// A GET answer kept for `maxAgeMs` (for this caller only).
export async function cached(path, maxAgeMs) {
  const hit = kept.get(path);
  if (hit && Date.now() - hit.at < maxAgeMs) return hit.body;
  const body = await api(path);
  kept.set(path, { at: Date.now(), body });
  return body;
}

// The caller's role in a namespace: the highest of its bindings there and on "*".
function roleIn(ns) {
  if (!me) return -1;
  let best = -1;
  for (const b of me.bindings) {
    const [bns, role] = b.split("=");
    if (bns === "*" || bns === ns) best = Math.max(best, ROLES.indexOf(role));
  }
  return best;
}

export function can(ns, role) { return roleIn(ns) >= ROLES.indexOf(role); }

export async function whoami() {
  if (!me) me = await api("/v1/whoami");
  const who = document.getElementById("who");
  if (who) {
    who.innerHTML = me.auth_enabled
      ? `${esc(me.subject)} <a href="#" id="sign-out">sign out</a>`
      : "authentication off";
    const out = document.getElementById("sign-out");
    if (out) out.addEventListener("click", ev => { ev.preventDefault(); signOut(); });
  }
  return me;
}

function forget() {
  me = null;
  kept.clear();
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  forget();
  ctx.render();
}

export function loginPage(message) {
  clearTimeout(ctx.refreshTimer);
  forget();
  const who = document.getElementById("who");
  if (who) who.textContent = "";
  app.innerHTML = `<h1 id="page-title">Sign in</h1>
  ${message ? notice(message, "error") : ""}
  <div class="panel"><form id="login" class="filters">
    <label>API token<input id="token-input" name="token" type="password" autocomplete="off" placeholder="sluice_..." size="72"></label>
    <button class="primary" type="submit">Sign in</button></form>
    <p class="muted">The server's admin token is in <code>admin.token</code> in its data directory;
    <code>sluice token create --namespace NS --role viewer</code> makes one for a namespace.
    The token stays in this tab only.</p></div>`;
  document.getElementById("login").addEventListener("submit", ev => {
    ev.preventDefault();
    const t = (new FormData(ev.target).get("token") || "").trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    ctx.render();
  });
  document.body.dataset.loaded = "login";
}
