// Every call to the management API: base path, bearer token, JSON, errors as ApiError.
import { BASE } from "./router.js";
import { clearToken, getToken } from "./token.js";

export class ApiError extends Error {
  constructor(status, message, problems = []) {
    super(message);
    this.status = status;
    this.problems = Array.isArray(problems) ? problems.map(String) : [];
  }
}

/** Fired when the API refuses the token (the app then shows the token page). */
export const UNAUTHORIZED_EVENT = "gitferry:unauthorized";

export async function api(method, path, { body, query, yaml } = {}) {
  const token = getToken();
  if (!token) {
    window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail: "" }));
    throw new ApiError(401, "no API token");
  }
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString() : "";
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  let payload;
  if (yaml !== undefined) {
    headers["Content-Type"] = "application/yaml";
    payload = yaml;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`${BASE}/api/v1${path}${qs ? `?${qs}` : ""}`, { method, headers, body: payload });
  } catch (err) {
    throw new ApiError(0, `the API is unreachable (${err.message})`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.status === 401) {
    clearToken();
    window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT, { detail: (data && data.message) || "the API token was refused" }));
  }
  if (!res.ok) {
    const message = (data && data.message) || `${method} ${path}: HTTP ${res.status}`;
    throw new ApiError(res.status, message, data && data.problems);
  }
  return data;
}

export const encode = encodeURIComponent;
