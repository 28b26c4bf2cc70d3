// Small pure helpers shared by the pages.

/** "3m ago" style age of an ISO time; "" when absent or unparsable. */
export function ago(iso, now = Date.now()) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function shortRev(rev) {
  return rev ? String(rev).slice(0, 8) : "";
}

/** A link target only when it is http(s): data never becomes a javascript: URL. */
export function safeUrl(value) {
  try {
    const url = new URL(String(value));
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/** The repository URL in the comparable form the API uses (no trailing "/" nor ".git"). */
export function normaliseRepo(url) {
  return String(url || "").trim().replace(/\/+$/, "").replace(/\.git$/, "").toLowerCase();
}

export function sourceOf(spec) {
  return (spec && (spec.source || (spec.sources || [])[0])) || {};
}

export function resourceKey(r) {
  return [r.group || "", r.kind || "", r.namespace || "", r.name || ""].join("/");
}
