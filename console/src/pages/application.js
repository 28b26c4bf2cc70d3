// /applications/<name>: summary, conditions, topology with node details and diff, the
// operation (per-resource results by wave), history with rollback, and the sync / refresh /
// delete actions. Polls every 2 s while an operation runs.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import YAML from "yaml";
import { html } from "../html.js";
import { api, encode } from "../api.js";
import { POLL_ACTIVE_MS, POLL_IDLE_MS } from "../config.js";
import { resourceKey, safeUrl, shortRev, sourceOf } from "../format.js";
import { Link, navigate } from "../router.js";
import { HealthBadge, PhaseBadge, SyncBadge } from "../components/badges.js";
import { Conditions, Dialog, ErrorBox, Time } from "../components/common.js";
import { Topology } from "../components/topology.js";
import { buildTopology } from "../topology.js";
import { ApplicationForm } from "./create.js";

const ACTIVE_PHASES = new Set(["Running", "Terminating"]);

function isActive(status) {
  const op = (status && status.operationState) || {};
  const health = ((status && status.health) || {}).status;
  return ACTIVE_PHASES.has(op.phase) || health === "Progressing" || Boolean(status && (status.syncRequested || status.refreshRequested));
}

function DiffText({ text }) {
  if (!text) return html`<p class="muted">No difference.</p>`;
  return html`<pre class="diff">${text.split("\n").map((line) => html`<span class=${line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : ""}>${`${line}\n`}</span>`)}</pre>`;
}

function Manifest({ row, which }) {
  if (!(which in row)) {
    return html`<p class="muted">${row.status === "Synced" ? "Synced: the live object matches the desired one." : "Not compared again (too many objects or too much text)."}</p>`;
  }
  if (row[which] === null) return html`<p class="muted">${which === "live" ? "Not in the cluster." : "Not in Git (to prune)."}</p>`;
  return html`<pre class="manifest" data-manifest=${which}>${YAML.stringify(row[which])}</pre>`;
}

function NodeDetails({ node, name, onClose }) {
  const [view, setView] = useState("diff");
  const [diff, setDiff] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setDiff(null);
    setError(null);
    if (node.root || !node.managed) return;
    api("GET", `/applications/${encode(name)}/diff`).then(setDiff, setError);
  }, [node.id, node.sync, node.requiresPruning]);
  const row = diff && diff.items.find((i) => resourceKey(i) === node.key);
  const h = node.health || {};
  return html`<aside class="node-details card" aria-label=${`${node.kind} ${node.name}`}>
    <header class="dialog-head"><h2>${node.kind} <span class="mono">${node.name}</span></h2>
      <button type="button" class="icon" aria-label="Close details" onClick=${onClose}>✕</button></header>
    <dl class="facts">
      ${node.namespace && html`<dt>Namespace</dt><dd>${node.namespace}</dd>`}
      ${(node.group || node.version) && html`<dt>API</dt><dd>${[node.group, node.version].filter(Boolean).join("/")}</dd>`}
      <dt>Health</dt><dd><${HealthBadge} status=${h.status} message=${h.message} />${h.message && html`<pre class="message">${h.message}</pre>`}</dd>
      ${node.sync && html`<dt>Sync</dt><dd><${SyncBadge} status=${node.sync} />${node.requiresPruning && " (requires pruning)"}</dd>`}
      ${node.syncWave !== undefined && html`<dt>Sync wave</dt><dd>${node.syncWave}</dd>`}
      ${node.hookPhase && html`<dt>Hook phase</dt><dd>${node.hookPhase}</dd>`}
      ${(node.info || []).map((i) => html`<dt>${i.name}</dt><dd>${i.value}</dd>`)}
      ${(node.images || []).length > 0 && html`<dt>Images</dt><dd>${node.images.map((i) => html`<code class="block">${i}</code>`)}</dd>`}
      ${node.createdAt && html`<dt>Created</dt><dd><${Time} iso=${node.createdAt} /></dd>`}
      ${node.uid && html`<dt>UID</dt><dd class="mono">${node.uid}</dd>`}
    </dl>
    ${node.managed && html`<section><h3>Diff (live → desired)</h3>
      <${ErrorBox} error=${error} />
      ${!diff && !error && html`<p class="muted" aria-busy="true">Comparing…</p>`}
      ${row && html`<p><${SyncBadge} status=${row.status} />${row.message && html` <span class="message">${row.message}</span>`}</p>
        <div class="tabs" role="group" aria-label="Show">${["diff", "live", "desired"].map((v) => html`<button type="button"
          aria-pressed=${view === v} onClick=${() => setView(v)}>${v === "diff" ? "Diff" : v === "live" ? "Live manifest" : "Desired manifest"}</button>`)}</div>
        ${view === "diff" && html`<${DiffText} text=${row.diff} />`}
        ${view !== "diff" && html`<${Manifest} row=${row} which=${view === "live" ? "live" : "target"} />`}`}
      ${diff && !row && html`<p class="muted">Not in the last comparison.</p>`}
      ${diff && diff.truncated && html`<p class="muted">The diff was cut (too many objects or too much text).</p>`}
      <p class="muted small">Secret values are masked by the API.</p></section>`}
    ${node.members && html`<section><h3>${node.members.length} ${node.kind}s</h3>
      <p>${Object.entries(node.healthCounts).map(([h, n]) => html`<span class="count">${n} <${HealthBadge} status=${h} /></span> `)}</p>
      <ul class="members" aria-label=${`${node.kind}s`}>${node.members.map((m) => html`<li data-member=${m.name}>
        <span class="mono">${m.name}</span> <${HealthBadge} status=${(m.health || {}).status} message=${(m.health || {}).message} /></li>`)}</ul></section>`}
    ${!node.managed && !node.root && html`<p class="muted small">Created by its parent's controller: not in Git, no diff.</p>`}
  </aside>`;
}

function Operation({ status }) {
  const op = status.operationState;
  if (!op) return null;
  const waves = new Map((status.resources || []).map((r) => [resourceKey(r), r.syncWave ?? 0]));
  const results = ((op.syncResult || {}).resources || []).map((r) => ({ ...r, wave: waves.get(resourceKey(r)) ?? 0 }));
  results.sort((a, b) => a.wave - b.wave || String(a.kind).localeCompare(b.kind) || String(a.name).localeCompare(b.name));
  const initiator = op.initiatedBy || {};
  return html`<section class="card operation" aria-label="Last operation">
    <h2>Operation <${PhaseBadge} phase=${op.phase} /></h2>
    ${op.message && html`<pre class="message">${op.message}</pre>`}
    <p class="muted">${op.syncResult && op.syncResult.revision && html`revision <code>${shortRev(op.syncResult.revision)}</code> · `}
      started <${Time} iso=${op.startedAt} />${op.finishedAt && html` · finished <${Time} iso=${op.finishedAt} />`}
      ${(initiator.username || initiator.automated) && ` · by ${initiator.automated ? "automated sync" : initiator.username}`}</p>
    ${results.length > 0 && html`<div class="table-wrap"><table class="results">
      <thead><tr><th>Wave</th><th>Kind</th><th>Name</th><th>Phase</th><th>Result</th><th>Message</th></tr></thead>
      <tbody>${results.map((r) => html`<tr data-result=${`${r.kind}/${r.name}`}>
        <td>${r.hookType ? `hook ${r.hookType}` : r.wave}</td><td>${r.kind}</td><td class="mono">${r.namespace ? `${r.namespace}/` : ""}${r.name}</td>
        <td>${r.hookPhase || r.syncPhase || ""}</td><td class=${`result-${r.status}`}>${r.status || ""}</td><td class="message">${r.message || ""}</td></tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

function History({ name, items, automated, onRolledBack }) {
  const [error, setError] = useState(null);
  const rollback = async (entry) => {
    if (!window.confirm(`Roll back ${name} to history ${entry.id} (${shortRev(entry.revision)})?`)) return;
    setError(null);
    try {
      await api("POST", `/applications/${encode(name)}/rollback/${encode(String(entry.id))}`);
      onRolledBack();
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="card history" aria-label="History">
    <h2>History</h2>
    <${ErrorBox} error=${error} />
    ${automated && html`<p class="muted small">Rollback is for manual apps only (as in Argo CD): this app syncs automatically.</p>`}
    ${(items || []).length === 0 ? html`<p class="muted">No sync recorded yet.</p>` : html`<div class="table-wrap"><table>
      <thead><tr><th>ID</th><th>Revision</th><th>Deployed</th><th>By</th><th></th></tr></thead>
      <tbody>${[...items].reverse().map((h) => html`<tr data-history=${h.id}>
        <td>${h.id}</td><td><code title=${h.revision}>${shortRev(h.revision)}</code> <span class="muted">${(h.source || {}).path || (h.source || {}).chart || ""}</span></td>
        <td><${Time} iso=${h.deployedAt} /></td><td>${(h.initiatedBy || {}).automated ? "automated" : (h.initiatedBy || {}).username || ""}</td>
        <td><button type="button" disabled=${automated} onClick=${() => rollback(h)} aria-label=${`Rollback to ${h.id}`}>Rollback</button></td></tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

function SyncDialog({ app, onClose, onDone }) {
  const resources = ((app.status || {}).resources || []).filter((r) => !r.hook);
  const [revision, setRevision] = useState(sourceOf(app.spec).targetRevision || "");
  const [prune, setPrune] = useState(false);
  const [dryRun, setDryRun] = useState(false);
  const [picked, setPicked] = useState(() => new Set());
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const toggle = (key) => {
    const next = new Set(picked);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    setPicked(next);
  };
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body = { revision: revision || undefined, prune, dryRun };
    if (picked.size) {
      body.resources = resources.filter((r) => picked.has(resourceKey(r)))
        .map((r) => ({ group: r.group || "", kind: r.kind, namespace: r.namespace || "", name: r.name }));
    }
    try {
      await api("POST", `/applications/${encode(app.metadata.name)}/sync`, { body });
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${`Sync ${app.metadata.name}`} onClose=${onClose}>
    <form onSubmit=${submit} class="sync-form">
      <${ErrorBox} error=${error} />
      <label>Revision <input name="revision" value=${revision} onInput=${(e) => setRevision(e.currentTarget.value)} /></label>
      <label class="check"><input type="checkbox" name="prune" checked=${prune} onChange=${(e) => setPrune(e.currentTarget.checked)} /> Prune</label>
      <label class="check"><input type="checkbox" name="dryRun" checked=${dryRun} onChange=${(e) => setDryRun(e.currentTarget.checked)} /> Dry run</label>
      <fieldset class="resources"><legend>Resources (none checked: all)</legend>
        ${resources.map((r) => html`<label class="check"><input type="checkbox" checked=${picked.has(resourceKey(r))} onChange=${() => toggle(resourceKey(r))} />
          ${r.kind} <span class="mono">${r.namespace ? `${r.namespace}/` : ""}${r.name}</span> <${SyncBadge} status=${r.status} /></label>`)}
      </fieldset>
      <div class="actions"><button type="submit" class="primary" disabled=${busy}>${dryRun ? "Dry run" : "Synchronize"}</button>
        <button type="button" onClick=${onClose}>Cancel</button></div>
    </form>
  </${Dialog}>`;
}

function DeleteDialog({ name, onClose }) {
  const [cascade, setCascade] = useState(true);
  const [typed, setTyped] = useState("");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      await api("DELETE", `/applications/${encode(name)}`, { query: { cascade: String(cascade) } });
      navigate("/applications");
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Dialog} title=${`Delete ${name}`} onClose=${onClose}>
    <form onSubmit=${submit}>
      <${ErrorBox} error=${error} />
      <label class="check"><input type="checkbox" name="cascade" checked=${cascade} onChange=${(e) => setCascade(e.currentTarget.checked)} />
        Cascade: delete the app's objects from the cluster first</label>
      <label>Type the application name to confirm <input name="confirm" value=${typed} autocomplete="off" onInput=${(e) => setTyped(e.currentTarget.value)} /></label>
      <div class="actions"><button type="submit" class="danger" disabled=${typed !== name}>Delete</button>
        <button type="button" onClick=${onClose}>Cancel</button></div>
    </form>
  </${Dialog}>`;
}

function EditDialog({ app, onClose, onSaved }) {
  const [lists, setLists] = useState(null);
  useEffect(() => {
    const items = (p) => api("GET", p).then((d) => d.items || [], () => []);
    Promise.all([items("/clusters"), items("/repositories")]).then(([clusters, repos]) => setLists({ clusters, repos }));
  }, []);
  if (!lists) return null;
  return html`<${ApplicationForm} app=${app} clusters=${lists.clusters} repos=${lists.repos} onClose=${onClose} onSaved=${onSaved} />`;
}

export function ApplicationPage({ name }) {
  const [app, setApp] = useState(null);
  const [tree, setTree] = useState(null);
  const [history, setHistory] = useState([]);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState("");
  const [selected, setSelected] = useState(null);
  const [dialog, setDialog] = useState(null);
  const phase = useRef("");

  const load = async () => {
    try {
      const [a, t] = await Promise.all([api("GET", `/applications/${encode(name)}`), api("GET", `/applications/${encode(name)}/resource-tree`)]);
      setApp(a);
      setTree(t);
      setError(null);
      const now = `${((a.status || {}).operationState || {}).phase || ""}/${((a.status || {}).operationState || {}).finishedAt || ""}`;
      if (now !== phase.current) {
        phase.current = now;
        api("GET", `/applications/${encode(name)}/history`).then((h) => setHistory(h.items || []), () => {});
      }
      return a;
    } catch (err) {
      setError(err);
      return null;
    }
  };

  useEffect(() => {
    let stop = false;
    let timer;
    const loop = async () => {
      const a = document.hidden ? app : await load();
      if (!stop) timer = setTimeout(loop, isActive(a && a.status) ? POLL_ACTIVE_MS : POLL_IDLE_MS);
    };
    loop();
    return () => { stop = true; clearTimeout(timer); };
  }, [name]);

  const kick = (message) => { setNotice(message); setTimeout(load, 300); };
  const graph = useMemo(() => (app ? buildTopology(name, (app.status || {}).health, tree, app.status) : null), [app, tree]);
  const selectedNode = graph && selected ? graph.nodes.find((n) => n.id === selected) : null;

  if (error && !app) {
    return html`<main class="page"><p><${Link} to="/applications">← Applications</${Link}></p><${ErrorBox} error=${error} /></main>`;
  }
  if (!app) return html`<main class="page"><p class="muted" aria-busy="true">Loading ${name}…</p></main>`;
  const st = app.status || {};
  const spec = app.spec || {};
  const src = sourceOf(spec);
  const dest = spec.destination || {};
  const repoLink = safeUrl(src.repoURL);
  const automated = Boolean(spec.syncPolicy && spec.syncPolicy.automated);
  const opPhase = (st.operationState || {}).phase;
  const terminate = async () => {
    if (!window.confirm(`Terminate the running operation of ${name}?`)) return;
    try {
      const answer = await api("DELETE", `/applications/${encode(name)}/operation`);
      kick(answer.phase === "Terminating" ? "Terminating: the running apply stops at its next wave." : "Operation terminated.");
    } catch (err) {
      setError(err);
    }
  };
  const refresh = async (hard) => {
    try {
      await api("POST", `/applications/${encode(name)}/refresh`, { query: hard ? { hard: "true" } : undefined });
      kick(hard ? "Hard refresh requested." : "Refresh requested.");
    } catch (err) {
      setError(err);
    }
  };
  return html`<main class="page app-page" data-app=${name}>
    <p class="crumbs"><${Link} to="/applications">Applications</${Link}> / <span>${name}</span></p>
    <div class="page-head">
      <h1>${name}</h1>
      <div class="app-status"><${HealthBadge} status=${(st.health || {}).status} message=${(st.health || {}).message} />
        <${SyncBadge} status=${(st.sync || {}).status} revision=${(st.sync || {}).revision} /></div>
      <div class="toolbar" role="toolbar" aria-label="Actions">
        <button type="button" class="primary" onClick=${() => setDialog("sync")}>Sync</button>
        <button type="button" onClick=${() => refresh(false)}>Refresh</button>
        <button type="button" onClick=${() => refresh(true)}>Hard refresh</button>
        ${opPhase === "Running" && html`<button type="button" class="danger" onClick=${terminate}>Terminate</button>`}
        <button type="button" onClick=${() => setDialog("edit")}>Edit</button>
        <button type="button" class="danger" onClick=${() => setDialog("delete")}>Delete</button>
      </div>
    </div>
    ${notice && html`<p class="notice" role="status">${notice}</p>`}
    <${ErrorBox} error=${error} />
    <section class="summary card" aria-label="Summary">
      <dl class="facts">
        <dt>Project</dt><dd>${spec.project || "default"}</dd>
        ${st.ownerApp && html`<dt>Rendered by</dt><dd><${Link} to=${`/applications/${encode(st.ownerApp)}`}>${st.ownerApp}</${Link}> (app of apps: change it in Git there)</dd>`}
        <dt>Repository</dt><dd>${repoLink ? html`<a href=${repoLink} rel="noopener noreferrer" target="_blank">${src.repoURL}</a>` : src.repoURL}</dd>
        <dt>${src.chart ? "Chart" : "Path"}</dt><dd><code>${src.chart ? `${src.chart} ${src.targetRevision || ""}` : src.path || "."}</code></dd>
        ${!src.chart && html`<dt>Target revision</dt><dd><code>${src.targetRevision || "HEAD"}</code></dd>`}
        <dt>Synced to</dt><dd><code title=${(st.sync || {}).revision || ""}>${shortRev((st.sync || {}).revision) || "—"}</code></dd>
        <dt>Destination</dt><dd>${dest.name || dest.server} / ${dest.namespace || ""}</dd>
        <dt>Sync policy</dt><dd>${automated ? `automated${spec.syncPolicy.automated.prune ? ", prune" : ""}${spec.syncPolicy.automated.selfHeal ? ", self heal" : ""}` : "manual"}</dd>
        ${Object.keys(app.metadata.labels || {}).length > 0 && html`<dt>Labels</dt><dd>${Object.entries(app.metadata.labels).map(([k, v]) => html`<code class="label">${k}=${v}</code> `)}</dd>`}
        <dt>Compared</dt><dd><${Time} iso=${st.reconciledAt} /></dd>
      </dl>
      ${(st.health || {}).message && html`<pre class="message">${st.health.message}</pre>`}
    </section>
    <${Conditions} conditions=${st.conditions} open=${true} />
    <section class="topology-wrap" aria-label="Topology">
      <h2>Resources ${tree && tree.truncated && html`<span class="muted small">(tree truncated)</span>`}</h2>
      <div class=${`topology-layout${selectedNode ? " with-details" : ""}`}>
        <${Topology} graph=${graph} selectedId=${selected} onSelect=${(n) => setSelected(n.id === selected ? null : n.id)} />
        ${selectedNode && html`<${NodeDetails} node=${selectedNode} name=${name} onClose=${() => setSelected(null)} />`}
      </div>
    </section>
    <${Operation} status=${st} />
    <${History} name=${name} items=${history} automated=${automated} onRolledBack=${() => kick("Rollback queued.")} />
    ${dialog === "sync" && html`<${SyncDialog} app=${app} onClose=${() => setDialog(null)} onDone=${() => { setDialog(null); kick("Sync queued."); }} />`}
    ${dialog === "delete" && html`<${DeleteDialog} name=${name} onClose=${() => setDialog(null)} />`}
    ${dialog === "edit" && html`<${EditDialog} app=${app} onClose=${() => setDialog(null)}
      onSaved=${() => { setDialog(null); kick("Saved."); }} />`}
  </main>`;
}


