import { html } from "../html.js";

const HEALTH_ICON = { Healthy: "♥", Progressing: "◔", Degraded: "✖", Suspended: "❚❚", Missing: "?", Unknown: "?" };
const SYNC_ICON = { Synced: "✔", OutOfSync: "⇄", Unknown: "?" };

export function HealthBadge({ status, message }) {
  const s = status || "Unknown";
  return html`<span class=${`badge health-${s}`} title=${message || s} data-health=${s}>
    <span aria-hidden="true">${HEALTH_ICON[s] || "?"}</span> ${s}</span>`;
}

export function SyncBadge({ status, revision }) {
  const s = status || "Unknown";
  return html`<span class=${`badge sync-${s}`} title=${revision ? `${s} to ${revision}` : s} data-sync=${s}>
    <span aria-hidden="true">${SYNC_ICON[s] || "?"}</span> ${s}</span>`;
}

export function PhaseBadge({ phase }) {
  if (!phase) return null;
  return html`<span class=${`badge phase-${phase}`} data-phase=${phase}>${phase}</span>`;
}
