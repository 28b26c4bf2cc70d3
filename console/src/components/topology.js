// The topology drawn as SVG: each node a keyboard-reachable button with kind, name, health
// colour, an OutOfSync mark and its hook phase. All text goes in as SVG text nodes.
import { html } from "../html.js";
import { NODE_H, NODE_W } from "../topology.js";

const clip = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const HEALTH_ICON = { Healthy: "♥", Progressing: "◔", Degraded: "✖", Suspended: "❚❚", Missing: "?", Unknown: "?" };

function Node({ node, selected, onSelect }) {
  const health = (node.health && node.health.status) || (node.root ? "Unknown" : "");
  const outOfSync = node.sync === "OutOfSync" || node.requiresPruning;
  const label = `${node.kind} ${node.name}${health ? `, ${health}` : ""}${outOfSync ? ", OutOfSync" : ""}${node.hookPhase ? `, hook ${node.hookPhase}` : ""}`;
  const keydown = (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      onSelect(node);
    }
  };
  return html`<g class=${`node${selected ? " selected" : ""}${node.root ? " root" : ""} health-${health || "none"}`}
      transform=${`translate(${node.x},${node.y})`} tabindex="0" role="button" aria-label=${label} aria-pressed=${selected}
      data-kind=${node.kind} data-name=${node.name} data-health=${health} data-sync=${node.sync || ""}
      data-hook-phase=${node.hookPhase || ""} onClick=${() => onSelect(node)} onKeyDown=${keydown}>
    <title>${label}${node.namespace ? ` (namespace ${node.namespace})` : ""}</title>
    <rect class="box" width=${NODE_W} height=${NODE_H} rx="6" />
    <rect class="bar" width="6" height=${NODE_H} rx="3" />
    <text class="kind" x="16" y="19">${clip(node.kind, 22)}${node.hook ? " (hook)" : ""}</text>
    <text class="name" x="16" y="38">${clip(node.name, 30)}</text>
    <text class="meta" x="16" y="52">${health ? `${HEALTH_ICON[health] || "?"} ${health}` : ""}${node.hookPhase ? ` · hook ${node.hookPhase}` : ""}</text>
    ${outOfSync && html`<text class="oos" x=${NODE_W - 10} y="19" text-anchor="end" data-out-of-sync="true">⇄ ${node.requiresPruning ? "prune" : "OutOfSync"}</text>`}
  </g>`;
}

export function Topology({ graph, selectedId, onSelect }) {
  // every edge in one <path> (one DOM node, not one per edge)
  const edges = graph.edges.map((e) => e.points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join("")).join("");
  return html`<div class="topology" role="region" aria-label="Resource topology">
    <svg width=${graph.width} height=${graph.height} viewBox=${`0 0 ${graph.width} ${graph.height}`} role="group">
      <path class="edges" d=${edges} />
      ${graph.nodes.map((n) => html`<${Node} key=${n.id} node=${n} selected=${n.id === selectedId} onSelect=${onSelect} />`)}
    </svg>
  </div>`;
}
