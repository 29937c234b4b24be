// The API, with the key the person typed once: kept in sessionStorage (gone when the tab closes)
// and sent as `Authorization: Bearer <key>` on every call. The console holds no other credential.

const KEY = "journey-console-key";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  /** The server has no such route (an older server, or one without the feature). */
  get missingRoute() {
    return (this.status === 404 || this.status === 405) && this.problem.detail === "Not Found";
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function keepKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return {title: response.statusText};
  }
}

/** GET (or `method`) `path` with `query`, a JSON `body`; the answer's JSON, or an ApiError. */
export async function api(path, {method = "GET", query, body, key = apiKey()} = {}) {
  const headers = {Accept: "application/json", Authorization: `Bearer ${key}`};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url(path, query), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
  });
  if (response.status === 401) {
    forgetKey();
    window.dispatchEvent(new CustomEvent("console:unauthorized"));
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response.status === 204 ? null : response.json();
}

export function quoted(id) {
  return encodeURIComponent(id);
}
