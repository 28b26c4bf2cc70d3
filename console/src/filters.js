// The application list's filters: to API query parameters (names in config.js) and, as a
// fallback for a server that ignores them, the same filters applied in the browser.
import { HEALTH_CODES, LIST_PARAMS, SYNC_CODES } from "./config.js";
import { normaliseRepo, sourceOf } from "./format.js";

export const FILTER_KEYS = ["project", "repository", "cluster", "namespace", "sync", "health", "search"];

/** Filters from the page's own query string (?project=..&sync=..): shareable links. */
export function filtersFromQuery(query) {
  const out = {};
  for (const k of FILTER_KEYS) {
    const v = query.get(k);
    if (v) out[k] = v;
  }
  return out;
}

export function filtersToQuery(filters) {
  const q = new URLSearchParams();
  for (const k of FILTER_KEYS) if (filters[k]) q.set(k, filters[k]);
  return q;
}

/** The API's parameters for one page of the list. */
export function apiQuery(filters, limit, cursor) {
  const q = {};
  for (const k of FILTER_KEYS) if (filters[k]) q[LIST_PARAMS[k]] = filters[k];
  if (limit === undefined) return q; // GET /application-counts: the filters only
  q[LIST_PARAMS.limit] = String(limit);
  if (cursor) q[LIST_PARAMS.cursor] = cursor;
  return q;
}

function clusterMatches(dest, wanted, clusters) {
  const w = wanted.replace(/\/+$/, "");
  const same = clusters.filter((c) => c.name === w || (c.server || "").replace(/\/+$/, "") === w);
  const names = new Set([w, ...same.map((c) => c.name)]);
  const servers = new Set([w, ...same.map((c) => (c.server || "").replace(/\/+$/, ""))]);
  return names.has(dest.name) || servers.has((dest.server || "").replace(/\/+$/, ""));
}

export function matches(app, filters, clusters = []) {
  const spec = app.spec || {};
  const status = app.status || {};
  const dest = spec.destination || {};
  const name = (app.metadata && app.metadata.name) || "";
  if (filters.search && !name.toLowerCase().includes(filters.search.toLowerCase())) return false;
  if (filters.project && (spec.project || "default") !== filters.project) return false;
  if (filters.namespace && dest.namespace !== filters.namespace) return false;
  if (filters.repository) {
    const urls = [sourceOf(spec), ...(spec.sources || [])].map((s) => normaliseRepo(s.repoURL)).filter(Boolean);
    if (!urls.includes(normaliseRepo(filters.repository))) return false;
  }
  if (filters.cluster && !clusterMatches(dest, filters.cluster, clusters)) return false;
  if (filters.sync && ((status.sync || {}).status || "Unknown") !== filters.sync) return false;
  if (filters.health && ((status.health || {}).status || "Unknown") !== filters.health) return false;
  return true;
}

/** Apps per sync and per health status. */
export function counts(apps) {
  const sync = Object.fromEntries(SYNC_CODES.map((c) => [c, 0]));
  const health = Object.fromEntries(HEALTH_CODES.map((c) => [c, 0]));
  for (const a of apps) {
    const st = a.status || {};
    const s = (st.sync || {}).status || "Unknown";
    const h = (st.health || {}).status || "Unknown";
    sync[s] = (sync[s] || 0) + 1;
    health[h] = (health[h] || 0) + 1;
  }
  return { sync, health };
}
