// The create form <-> an Argo CD Application manifest, and API problems -> form fields.

export const EMPTY_FORM = {
  name: "", project: "default", syncPolicy: "none", prune: false, selfHeal: false,
  sourceType: "git", repoURL: "", revision: "HEAD", path: "", chart: "",
  destType: "server", server: "", destName: "", namespace: "", createNamespace: false,
};

/** Form field -> the manifest path the API names in its problems. */
export const FIELD_PATHS = {
  name: "metadata.name",
  project: "spec.project",
  syncPolicy: "spec.syncPolicy",
  repoURL: "spec.source.repoURL",
  revision: "spec.source.targetRevision",
  path: "spec.source.path",
  chart: "spec.source.chart",
  server: "spec.destination.server",
  destName: "spec.destination.name",
  namespace: "spec.destination.namespace",
};

const clone = (v) => JSON.parse(JSON.stringify(v ?? {}));

/** The manifest of ``form``, on top of ``base`` (fields the form does not show are kept). */
export function toManifest(form, base = {}) {
  const doc = clone(base);
  doc.apiVersion = "argoproj.io/v1alpha1";
  doc.kind = "Application";
  doc.metadata = { ...(doc.metadata || {}), name: form.name };
  const spec = (doc.spec = doc.spec || {});
  spec.project = form.project || "default";
  const source = { ...(spec.source || {}), repoURL: form.repoURL, targetRevision: form.revision || (form.sourceType === "helm" ? "" : "HEAD") };
  if (form.sourceType === "helm") {
    source.chart = form.chart;
    delete source.path;
  } else {
    source.path = form.path || ".";
    delete source.chart;
  }
  spec.source = source;
  const dest = { namespace: form.namespace || undefined };
  if (form.destType === "name") dest.name = form.destName;
  else dest.server = form.server;
  spec.destination = JSON.parse(JSON.stringify(dest));
  const policy = { ...(spec.syncPolicy || {}) };
  if (form.syncPolicy === "automated") policy.automated = { ...(policy.automated || {}), prune: form.prune, selfHeal: form.selfHeal };
  else delete policy.automated;
  const options = (policy.syncOptions || []).filter((o) => o !== "CreateNamespace=true");
  if (form.createNamespace) options.push("CreateNamespace=true");
  if (options.length) policy.syncOptions = options;
  else delete policy.syncOptions;
  if (Object.keys(policy).length) spec.syncPolicy = policy;
  else delete spec.syncPolicy;
  return doc;
}

/** The form fields of a manifest (what the form cannot show stays in the manifest). */
export function fromManifest(doc) {
  const spec = (doc && doc.spec) || {};
  const src = spec.source || {};
  const dest = spec.destination || {};
  const policy = spec.syncPolicy || {};
  return {
    ...EMPTY_FORM,
    name: String((doc && doc.metadata && doc.metadata.name) || ""),
    project: String(spec.project || "default"),
    syncPolicy: policy.automated ? "automated" : "none",
    prune: Boolean(policy.automated && policy.automated.prune),
    selfHeal: Boolean(policy.automated && policy.automated.selfHeal),
    sourceType: src.chart ? "helm" : "git",
    repoURL: String(src.repoURL || ""),
    revision: String(src.targetRevision ?? ""),
    path: String(src.path || ""),
    chart: String(src.chart || ""),
    destType: dest.name && !dest.server ? "name" : "server",
    server: String(dest.server || ""),
    destName: String(dest.name || ""),
    namespace: String(dest.namespace || ""),
    createNamespace: (policy.syncOptions || []).includes("CreateNamespace=true"),
  };
}

/** {field: [messages]} and the problems no field shows, from the API's "path: message" lines. */
export function problemsByField(problems, form) {
  const byField = {};
  const rest = [];
  const entries = Object.entries(FIELD_PATHS).sort((a, b) => b[1].length - a[1].length);
  for (const line of problems || []) {
    const [path] = String(line).split(":", 1);
    let field = entries.find(([, p]) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`))?.[0];
    if (!field && path === "spec.destination") field = form.destType === "name" ? "destName" : "server";
    if (!field && path === "spec.source") field = "repoURL";
    if (field) (byField[field] = byField[field] || []).push(line);
    else rest.push(line);
  }
  return { byField, rest };
}
