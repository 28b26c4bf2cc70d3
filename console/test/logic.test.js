// The console's pure modules (node --test; run by tests/unit/test_console_js.py).
import assert from "node:assert/strict";
import { test } from "node:test";
import { LIST_PARAMS } from "../src/config.js";
import { apiQuery, counts, matches } from "../src/filters.js";
import { safeUrl } from "../src/format.js";
import { EMPTY_FORM, fromManifest, problemsByField, toManifest } from "../src/manifest.js";
import { APP_ID, NODE_H, NODE_W, buildTopology } from "../src/topology.js";

const app = (name, extra = {}) => ({
  metadata: { name },
  spec: { project: "default", source: { repoURL: "https://git.example.com/org/a.git", path: "x" },
    destination: { server: "https://k8s.example:6443", namespace: "web" }, ...extra.spec },
  status: { sync: { status: "Synced" }, health: { status: "Healthy" }, ...extra.status },
});

test("the form becomes an Argo CD Application and back, keeping what the form does not show", () => {
  const form = { ...EMPTY_FORM, name: "guestbook", repoURL: "https://git/x.git", path: "gb", server: "https://k",
    namespace: "gb", syncPolicy: "automated", prune: true, createNamespace: true };
  const base = { metadata: { labels: { team: "a" } }, spec: { ignoreDifferences: [{ kind: "Deployment" }] } };
  const doc = toManifest(form, base);
  assert.equal(doc.apiVersion, "argoproj.io/v1alpha1");
  assert.deepEqual(doc.spec.source, { repoURL: "https://git/x.git", targetRevision: "HEAD", path: "gb" });
  assert.deepEqual(doc.spec.syncPolicy, { automated: { prune: true, selfHeal: false }, syncOptions: ["CreateNamespace=true"] });
  assert.deepEqual(doc.metadata.labels, { team: "a" });
  assert.equal(doc.spec.ignoreDifferences.length, 1);
  assert.deepEqual(fromManifest(doc), { ...form, revision: "HEAD" });
  const helm = toManifest({ ...form, sourceType: "helm", chart: "redis", revision: "1.2.3", destType: "name", destName: "prod" });
  assert.deepEqual(helm.spec.source, { repoURL: "https://git/x.git", targetRevision: "1.2.3", chart: "redis" });
  assert.deepEqual(helm.spec.destination, { namespace: "gb", name: "prod" });
});

test("API problems land on the fields they name", () => {
  const { byField, rest } = problemsByField([
    "spec.source.repoURL: field required", "spec.destination: no cluster registered with server 'x'",
    "metadata.name: invalid", "spec.foo: unknown field"], { destType: "server" });
  assert.deepEqual(Object.keys(byField).sort(), ["name", "repoURL", "server"]);
  assert.deepEqual(rest, ["spec.foo: unknown field"]);
});

test("list filters use the API's parameter names and also filter in the browser", () => {
  const q = apiQuery({ repository: "https://git.example.com/org/a", sync: "Synced" }, 100, "c1");
  assert.deepEqual(q, { [LIST_PARAMS.repository]: "https://git.example.com/org/a", [LIST_PARAMS.sync]: "Synced",
    [LIST_PARAMS.limit]: "100", [LIST_PARAMS.cursor]: "c1" });
  const a = app("web-1");
  assert.ok(matches(a, { repository: "https://git.example.com/org/a/", search: "WEB" }));
  assert.ok(matches(a, { cluster: "prod" }, [{ name: "prod", server: "https://k8s.example:6443/" }]));
  assert.ok(!matches(a, { cluster: "other" }, [{ name: "prod", server: "https://k8s.example:6443" }]));
  assert.ok(!matches(a, { health: "Degraded" }));
  assert.deepEqual(counts([a, app("b", { status: { health: { status: "Degraded" } } })]).health.Degraded, 1);
});

test("only http(s) links", () => {
  assert.equal(safeUrl("javascript:alert(1)"), null);
  assert.equal(safeUrl("https://x.example/a"), "https://x.example/a");
});

test("the topology: app -> managed objects -> children by parentRefs, marks from the status", () => {
  const tree = { nodes: [
    { group: "apps", kind: "Deployment", namespace: "web", name: "d", uid: "u1", health: { status: "Healthy" } },
    { group: "apps", kind: "ReplicaSet", namespace: "web", name: "d-1", uid: "u2", parentRefs: [{ group: "apps", kind: "Deployment", namespace: "web", name: "d", uid: "u1" }] },
    { kind: "Pod", namespace: "web", name: "d-1-a", uid: "u3", parentRefs: [{ group: "apps", kind: "ReplicaSet", namespace: "web", name: "d-1", uid: "u2" }], health: { status: "Degraded" } },
  ] };
  const status = {
    resources: [
      { group: "apps", kind: "Deployment", namespace: "web", name: "d", status: "OutOfSync", health: { status: "Healthy" } },
      { kind: "Service", namespace: "web", name: "s", status: "OutOfSync", health: { status: "Missing" } },
      { group: "batch", kind: "Job", namespace: "web", name: "migrate", hook: true },
    ],
    operationState: { syncResult: { resources: [{ group: "batch", kind: "Job", namespace: "web", name: "migrate", hookPhase: "Running" }] } },
  };
  const g = buildTopology("guestbook", { status: "Degraded" }, tree, status);
  const byName = Object.fromEntries(g.nodes.map((n) => [n.name, n]));
  const edges = g.edges.map((e) => `${e.from}>${e.to}`).sort();
  assert.deepEqual(edges, [`${APP_ID}>/Service/web/s`, `${APP_ID}>batch/Job/web/migrate`, `${APP_ID}>u1`, "u1>u2", "u2>u3"].sort());
  assert.equal(byName.d.sync, "OutOfSync");
  assert.equal(byName.s.health.status, "Missing");
  assert.equal(byName.migrate.hookPhase, "Running");
  assert.ok(byName["d-1-a"].x > byName["d-1"].x && byName["d-1"].x > byName.d.x, "left to right");
});

const overlapping = (nodes) => nodes.some((a, i) => nodes.slice(i + 1).some((b) =>
  Math.abs(a.x - b.x) < NODE_W && Math.abs(a.y - b.y) < NODE_H));

test("a tree is laid out left to right by rank, no two nodes overlapping, inside the drawing", () => {
  const nodes = [];
  for (let i = 0; i < 20; i++) {
    nodes.push({ group: "apps", kind: "Deployment", namespace: "n", name: `d${i}`, uid: `d${i}` });
    nodes.push({ group: "apps", kind: "ReplicaSet", namespace: "n", name: `r${i}`, uid: `r${i}`, parentRefs: [{ uid: `d${i}` }] });
    for (let j = 0; j < 1 + (i % 4); j++) nodes.push({ kind: "Pod", namespace: "n", name: `p${i}-${j}`, uid: `p${i}-${j}`, parentRefs: [{ uid: `r${i}` }] });
  }
  const g = buildTopology("big", {}, { nodes }, { resources: [] });
  const rank = { Application: 0, Deployment: 1, ReplicaSet: 2, Pod: 3 };
  for (const n of g.nodes) {
    assert.equal(n.x, g.nodes.find((m) => m.root).x + rank[n.kind] * (g.nodes.find((m) => m.kind === "Deployment").x - g.nodes.find((m) => m.root).x), n.name);
    assert.ok(n.x >= 0 && n.y >= 0 && n.x + NODE_W <= g.width && n.y + NODE_H <= g.height, n.name);
  }
  assert.ok(!overlapping(g.nodes));
  for (const e of g.edges) { // from the parent's right side to the child's left side
    const from = g.nodes.find((n) => n.id === e.from);
    const to = g.nodes.find((n) => n.id === e.to);
    assert.equal(e.points[0].x, from.x + NODE_W);
    assert.equal(e.points.at(-1).x, to.x);
    assert.equal(e.points.at(-1).y, to.y + NODE_H / 2);
  }
});

test("an object with two owners is still laid out (dagre), with both edges", () => {
  const nodes = [
    { kind: "ConfigMap", namespace: "n", name: "a", uid: "a" },
    { kind: "ConfigMap", namespace: "n", name: "b", uid: "b" },
    { kind: "Pod", namespace: "n", name: "p", uid: "p", parentRefs: [{ uid: "a" }, { uid: "b" }] },
  ];
  const g = buildTopology("two", {}, { nodes }, { resources: [] });
  assert.deepEqual(g.edges.map((e) => `${e.from}>${e.to}`).sort(), [`${APP_ID}>a`, `${APP_ID}>b`, "a>p", "b>p"].sort());
  assert.ok(g.edges.every((e) => e.points.length >= 2));
  assert.ok(!overlapping(g.nodes));
  const x = Object.fromEntries(g.nodes.map((n) => [n.name, n.x]));
  assert.ok(x.p > x.a && x.a > x.two);
});

test("many Pods of one ReplicaSet are one node with their worst health; a few stay apart", () => {
  const rs = { group: "apps", version: "v1", kind: "ReplicaSet", namespace: "web", name: "web-1", uid: "rs",
    parentRefs: [{ group: "apps", kind: "Deployment", namespace: "web", name: "web", uid: "dep" }] };
  const pod = (i, health = "Healthy") => ({ version: "v1", kind: "Pod", namespace: "web", name: `web-1-${i}`, uid: `p${i}`,
    health: { status: health }, parentRefs: [{ group: "apps", kind: "ReplicaSet", namespace: "web", name: "web-1", uid: "rs" }] });
  const dep = { group: "apps", version: "v1", kind: "Deployment", namespace: "web", name: "web", uid: "dep" };
  const status = { resources: [{ group: "apps", version: "v1", kind: "Deployment", namespace: "web", name: "web", status: "Synced" }] };
  const many = [dep, rs, ...Array.from({ length: 9 }, (_, i) => pod(i, i === 4 ? "Degraded" : i === 7 ? "Progressing" : "Healthy"))];
  const graph = buildTopology("web", { status: "Degraded" }, { nodes: many }, status);
  const groups = graph.nodes.filter((n) => n.members);
  assert.equal(groups.length, 1);
  assert.equal(groups[0].name, "9 Pods");
  assert.equal(groups[0].health.status, "Degraded");
  assert.deepEqual(groups[0].healthCounts, { Healthy: 7, Degraded: 1, Progressing: 1 });
  assert.equal(graph.nodes.filter((n) => n.kind === "Pod").length, 1);
  assert.equal(graph.edges.length, 3); // app -> Deployment -> ReplicaSet -> the group
  const few = buildTopology("web", { status: "Healthy" }, { nodes: [dep, rs, pod(0), pod(1), pod(2)] }, status);
  assert.equal(few.nodes.filter((n) => n.kind === "Pod").length, 3);
  assert.equal(few.nodes.filter((n) => n.members).length, 0);
});
