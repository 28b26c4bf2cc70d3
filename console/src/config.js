// Every name the console sends to or reads from the API's application list, in one place
// (the list filters and cursor of GET /api/v1/applications).
export const LIST_PARAMS = Object.freeze({
  project: "project",
  repository: "repo",
  cluster: "cluster",
  namespace: "namespace",
  sync: "sync",
  health: "health",
  search: "search",
  limit: "limit",
  cursor: "cursor",
});
/** The answer's field holding the next page's cursor (absent on the last page). */
export const NEXT_CURSOR = "nextCursor";
/** The fleet's counts per status (GET /application-counts, the list's filters, no paging). */
export const COUNTS_PATH = "/application-counts";
/** Counts read the whole fleet: asked when the filters change and every 30 s, not every list poll. */
export const POLL_COUNTS_MS = 30000;
/** Rows asked per page of the application list. */
export const PAGE_SIZE = 100;
/** Polling: every 2 s while an operation runs, else every 10 s (the list every 10 s). */
export const POLL_ACTIVE_MS = 2000;
export const POLL_IDLE_MS = 10000;
export const TOKEN_KEY = "gitferry-token";

export const SYNC_CODES = ["Synced", "OutOfSync", "Unknown"];
export const HEALTH_CODES = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"];
