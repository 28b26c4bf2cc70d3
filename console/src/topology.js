// The resource topology of an app, left to right: the app -> its managed objects (status.resources)
// -> their live descendants by parentRefs (GET .../resource-tree, Argo CD's ApplicationTree),
// laid out by d3-hierarchy's tidy tree when every object has one parent (the usual forest of
// ownerReferences), else by dagre. Pure: data in, positioned nodes and edges out.
import { Graph, layout } from "@dagrejs/dagre";
import { stratify, tree as tidyTree } from "d3-hierarchy";
import { resourceKey } from "./format.js";

export const NODE_W = 240;
export const NODE_H = 58;
export const APP_ID = "app";

/**
 * @returns {{nodes: Array<object>, edges: Array<{from: string, to: string, points: Array<{x:number,y:number}>}>, width: number, height: number}}
 */
export function buildTopology(appName, appHealth, tree, status) {
  const resources = (status && status.resources) || [];
  const results = ((status && status.operationState && status.operationState.syncResult) || {}).resources || [];
  const stateByKey = new Map(resources.map((r) => [resourceKey(r), r]));
  const resultByKey = new Map(results.map((r) => [resourceKey(r), r]));
  const nodes = new Map();
  const byKey = new Map();
  const byUid = new Map();
  const add = (id, node) => {
    nodes.set(id, node);
    byKey.set(node.key, id);
    if (node.uid) byUid.set(node.uid, id);
  };
  add(APP_ID, { id: APP_ID, key: `argoproj.io/Application//${appName}`, kind: "Application", name: appName, namespace: "",
    health: appHealth || {}, root: true });

  for (const n of (tree && tree.nodes) || []) {
    const key = resourceKey(n);
    const state = stateByKey.get(key);
    const result = resultByKey.get(key);
    const id = n.uid || key;
    if (nodes.has(id)) continue;
    add(id, { id, key, group: n.group || "", version: n.version || "", kind: n.kind, name: n.name, namespace: n.namespace || "",
      uid: n.uid || "", health: n.health || (state && state.health) || null, sync: state ? state.status : null,
      requiresPruning: Boolean(state && state.requiresPruning), hook: Boolean(state && state.hook),
      hookPhase: result && result.hookPhase, syncWave: state ? state.syncWave : undefined, managed: Boolean(state),
      parentRefs: n.parentRefs || [], info: n.info || [], images: n.images || [], createdAt: n.createdAt });
  }
  // Managed objects the tree lacks (Missing ones, hooks, a tree not written yet).
  for (const r of resources) {
    const key = resourceKey(r);
    if (byKey.has(key)) continue;
    const result = resultByKey.get(key);
    add(key, { id: key, key, group: r.group || "", version: r.version || "", kind: r.kind, name: r.name, namespace: r.namespace || "",
      health: r.health || null, sync: r.status, requiresPruning: Boolean(r.requiresPruning), hook: Boolean(r.hook),
      hookPhase: result && result.hookPhase, syncWave: r.syncWave, managed: true, parentRefs: [], info: [], images: [] });
  }

  let edges = [];
  for (const node of nodes.values()) {
    if (node.root) continue;
    const parents = node.managed ? [] : node.parentRefs
      .map((p) => (p.uid && byUid.get(p.uid)) || byKey.get(resourceKey(p)))
      .filter((p) => p && p !== node.id);
    if (parents.length === 0) edges.push({ from: APP_ID, to: node.id });
    for (const p of parents) edges.push({ from: p, to: node.id });
  }
  edges = groupSiblings(nodes, edges);

  const t0 = performance.now();
  const layout_ = layoutOf([...nodes.keys()], edges);
  performance.measure("topology-layout", { start: t0 }); // read by tests/bench/test_console_bench.py
  const placed = [...nodes.values()].map((n) => {
    const p = layout_.positions.get(n.id);
    return { ...n, x: p.x - NODE_W / 2, y: p.y - NODE_H / 2 };
  });
  const lines = edges.map((e) => ({ ...e, points: layout_.points.get(`${e.from}>${e.to}`) || [] }));
  return { nodes: placed, edges: lines, width: layout_.width, height: layout_.height };
}

/** Siblings shown one by one up to this many; more of one kind under one parent are one node. */
export const GROUP_AT = 6;
// Argo CD's order of health, worst first: a group shows its worst member.
const WORST_FIRST = ["Degraded", "Missing", "Progressing", "Suspended", "Unknown", "Healthy"];

/**
 * Replace, in place, every run of more than GROUP_AT unmanaged leaf nodes of one kind under one
 * parent (the Pods of a ReplicaSet with many replicas) by one node listing them (``members``)
 * with the worst health among them and the count per health; returns the edges to draw.
 */
function groupSiblings(nodes, edges) {
  const hasChildren = new Set(edges.map((e) => e.from));
  const parentsOf = new Map();
  for (const e of edges) parentsOf.set(e.to, [...(parentsOf.get(e.to) || []), e.from]);
  const runs = new Map();
  for (const [id, parents] of parentsOf) {
    const node = nodes.get(id);
    if (node.managed || hasChildren.has(id) || parents.length !== 1) continue;
    const runKey = `${parents[0]}\u0000${node.group}/${node.kind}`;
    runs.set(runKey, [...(runs.get(runKey) || []), id]);
  }
  const grouped = new Map(); // member id -> group id
  for (const [runKey, ids] of runs) {
    if (ids.length <= GROUP_AT) continue;
    const parent = runKey.split("\u0000")[0];
    const members = ids.map((id) => nodes.get(id)).sort((a, b) => a.name.localeCompare(b.name));
    const first = members[0];
    const counts = {};
    for (const m of members) {
      const h = (m.health && m.health.status) || "Unknown";
      counts[h] = (counts[h] || 0) + 1;
    }
    const worst = WORST_FIRST.find((h) => counts[h]) || "Unknown";
    const id = `group:${parent}:${first.group}/${first.kind}`;
    nodes.set(id, { id, key: id, group: first.group, version: first.version, kind: first.kind,
      name: `${members.length} ${first.kind}s`, namespace: first.namespace, uid: "", health: { status: worst },
      sync: null, managed: false, parentRefs: [], info: [], images: [], members, healthCounts: counts });
    for (const m of members) {
      nodes.delete(m.id);
      grouped.set(m.id, id);
    }
  }
  if (grouped.size === 0) return edges;
  const seen = new Set();
  const out = [];
  for (const e of edges) {
    const to = grouped.get(e.to) || e.to;
    const key = `${e.from}>${to}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ from: e.from, to });
    }
  }
  return out;
}

const NODE_SEP = 14;
const RANK_SEP = 56;

// The last layout, reused while the graph's shape is the same (a poll every 2 s changes health
// and sync marks, rarely the objects): dagre is the costly part at hundreds of nodes.
let cached = { key: "", value: null };

/** Left to right, positions of node centres and edge polylines. */
function layoutOf(ids, edges) {
  const key = `${ids.join("\u0000")}\u0001${edges.map((e) => `${e.from}>${e.to}`).join("\u0000")}`;
  if (cached.key === key) return cached.value;
  const value = treeLayout(ids, edges) || dagreLayout(ids, edges);
  cached = { key, value };
  return value;
}

/** One parent per object (a tree under the app): d3-hierarchy's tidy tree (Reingold-Tilford,
 * linear time: a few ms at 500 nodes where dagre's layered layout takes hundreds), edges as
 * elbows from the parent's right side to the child's left side. null when it is not a tree. */
function treeLayout(ids, edges) {
  const parent = new Map();
  for (const e of edges) {
    if (parent.has(e.to)) return null; // several parents: dagre
    parent.set(e.to, e.from);
  }
  if (ids.length !== parent.size + 1) return null;
  let root;
  try {
    root = stratify().id((id) => id).parentId((id) => parent.get(id))(ids);
  } catch {
    return null; // a cycle, or no single root
  }
  tidyTree().nodeSize([NODE_H + NODE_SEP, NODE_W + RANK_SEP]).separation(() => 1)(root);
  let minX = Infinity;
  let maxX = -Infinity;
  let maxY = 0;
  root.each((n) => {
    minX = Math.min(minX, n.x);
    maxX = Math.max(maxX, n.x);
    maxY = Math.max(maxY, n.y);
  });
  const margin = 12;
  const positions = new Map();
  // d3's x runs across the ranks (breadth), y along them (depth): swapped for left to right
  root.each((n) => positions.set(n.id, { x: n.y + NODE_W / 2 + margin, y: n.x - minX + NODE_H / 2 + margin }));
  const points = new Map();
  for (const e of edges) {
    const a = positions.get(e.from);
    const b = positions.get(e.to);
    const x1 = a.x + NODE_W / 2;
    const x2 = b.x - NODE_W / 2;
    const mid = (x1 + x2) / 2;
    points.set(`${e.from}>${e.to}`, [{ x: x1, y: a.y }, { x: mid, y: a.y }, { x: mid, y: b.y }, { x: x2, y: b.y }]);
  }
  return { positions, points, width: maxY + NODE_W + 2 * margin, height: maxX - minX + NODE_H + 2 * margin };
}

/** dagre, left to right, for graphs that are not trees (an object with several owners). The
 * "longest-path" ranker: the graph is nearly a forest, where it gives the same ranks as
 * network simplex, several times faster at 500 nodes. */
function dagreLayout(ids, edges) {
  const g = new Graph();
  g.setGraph({ rankdir: "LR", nodesep: NODE_SEP, ranksep: RANK_SEP, marginx: 12, marginy: 12, ranker: "longest-path" });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of ids) g.setNode(id, { width: NODE_W, height: NODE_H });
  for (const e of edges) g.setEdge(e.from, e.to);
  layout(g);
  const positions = new Map(ids.map((id) => [id, g.node(id)]));
  const points = new Map(edges.map((e) => [`${e.from}>${e.to}`, (g.edge(e.from, e.to) || {}).points || []]));
  const graph = g.graph();
  return { positions, points, width: graph.width || NODE_W, height: graph.height || NODE_H };
}
