// The page's keys and its one way to call the server.
//
// Keys live in sessionStorage (this tab only) and leave the page only in the Authorization header
// of requests to this origin. `roost demo` prints a URL with a one-time fragment (#key=...&admin=...):
// fragments never reach the server, and the page removes it from the address bar as soon as it
// has read it, so it stays out of history too.

const STORE = window.sessionStorage;
const API = "roost.apiKey";
const ADMIN = "roost.adminKey";

export const keys = {
  api: STORE.getItem(API) || "",
  admin: STORE.getItem(ADMIN) || "",
};

export function setKeys({ api = keys.api, admin = keys.admin }) {
  keys.api = api.trim();
  keys.admin = admin.trim();
  for (const [name, value] of [[API, keys.api], [ADMIN, keys.admin]]) {
    if (value) STORE.setItem(name, value);
    else STORE.removeItem(name);
  }
  window.dispatchEvent(new CustomEvent("roost:keys"));
}

/** Take keys from a `#key=...&admin=...` fragment, then drop the fragment. Returns the tab named
 * in the fragment, if any (`#key=...&tab=chat`). */
export function readFragment() {
  const hash = window.location.hash.slice(1);
  if (!hash.includes("=")) return null;
  const params = new URLSearchParams(hash);
  if (params.has("key") || params.has("admin")) {
    setKeys({ api: params.get("key") || keys.api, admin: params.get("admin") || keys.admin });
  }
  const tab = params.get("tab");
  window.history.replaceState(null, "", window.location.pathname + window.location.search + (tab ? `#${tab}` : ""));
  return tab;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The JSON answer of `path`, or an ApiError carrying the server's own message. */
export async function api(path, { method = "GET", body, admin = false, signal } = {}) {
  const response = await request(path, { method, body, admin, signal });
  return response.status === 204 ? null : response.json();
}

/** The raw Response (for streams), after the same checks as `api`. */
export async function request(path, { method = "GET", body, admin = false, signal } = {}) {
  const key = admin ? keys.admin : keys.api;
  if (!key) {
    throw new ApiError(401, admin
      ? "This needs the firehose admin key: open Keys (top right)."
      : "This needs an API key: open Keys (top right).");
  }
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server cannot be reached. Is `roost demo` still running?");
  }
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return response;
}

/** Every stage answers errors in JSON; two shapes: {"error": {"message"}} and {"error", "message"}. */
async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body.error && typeof body.error === "object" && body.error.message) return body.error.message;
    if (body.message) return body.message;
    if (typeof body.error === "string") return body.error;
    if (body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`;
}
