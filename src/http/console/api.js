// The management API client of the console: the admin token lives in sessionStorage (this tab
// only, gone when it closes) and goes out as `Authorization: Bearer`; there is no cookie, so a
// request another site makes the browser send carries no credential (no CSRF).

const TOKEN_KEY = "hookpipe.admin_token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An answer that was not 2xx: its status and the API's `{"error", "field"}`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
    this.body = body;
  }
}

/**
 * Calls `/api/v1{path}`; resolves with the parsed JSON (null for 204), rejects with ApiError.
 * A 401 signs the tab out (`hookpipe:unauthorized`), except while signing in (`signingIn`).
 */
export async function api(method, path, body, { signingIn = false } = {}) {
  const headers = { Authorization: `Bearer ${token() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = { error: text.slice(0, 200) }; }
  }
  if (response.status === 401 && !signingIn) {
    window.dispatchEvent(new CustomEvent("hookpipe:unauthorized"));
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/** `/listeners/{id}` + more segments, each percent-encoded. */
export function listenerPath(id, ...rest) {
  return ["/listeners", id, ...rest].map((part, i) => (i === 0 ? part : encodeURIComponent(part))).join("/");
}

/** The instance's Prometheus text (`/metrics` takes no token). */
export async function metricsText() {
  const response = await fetch("/metrics", { credentials: "omit", cache: "no-store" });
  if (!response.ok) throw new Error(`metrics: HTTP ${response.status}`);
  return response.text();
}
