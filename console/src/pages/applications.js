// /applications: every app with health, sync, revision, last operation and conditions;
// filters and name search (in the URL), counts per status, cursor pagination.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { html } from "../html.js";
import { api } from "../api.js";
import { COUNTS_PATH, HEALTH_CODES, NEXT_CURSOR, PAGE_SIZE, POLL_COUNTS_MS, POLL_IDLE_MS, SYNC_CODES } from "../config.js";
import { apiQuery, counts, filtersFromQuery, filtersToQuery, matches } from "../filters.js";
import { shortRev, sourceOf } from "../format.js";
import { Link, navigate } from "../router.js";
import { HealthBadge, PhaseBadge, SyncBadge } from "../components/badges.js";
import { Conditions, ErrorBox, Time } from "../components/common.js";
import { CreateApplication } from "./create.js";

function AppRow({ app }) {
  const name = app.metadata.name;
  const spec = app.spec || {};
  const st = app.status || {};
  const src = sourceOf(spec);
  const dest = spec.destination || {};
  const op = st.operationState || {};
  const deleting = app.metadata.deletionTimestamp;
  return html`<li class="app-row" data-app=${name}>
    <div class="app-main">
      <${Link} to=${`/applications/${encodeURIComponent(name)}`} class="app-name">${name}</${Link}>
      <span class="muted">${spec.project || "default"}</span>
      ${deleting && html`<span class="badge phase-Terminating">Deleting</span>`}
      ${st.ownerApp && html`<span class="owner muted" data-owner=${st.ownerApp}>from <${Link} to=${`/applications/${encodeURIComponent(st.ownerApp)}`}>${st.ownerApp}</${Link}></span>`}
    </div>
    <div class="app-status">
      <${HealthBadge} status=${(st.health || {}).status} message=${(st.health || {}).message} />
      <${SyncBadge} status=${(st.sync || {}).status} revision=${(st.sync || {}).revision} />
    </div>
    <div class="app-source">
      <span class="repo" title=${src.repoURL}>${src.repoURL}</span>
      <code>${src.chart ? `${src.chart} ${src.targetRevision || ""}` : `${src.path || "."} @ ${src.targetRevision || "HEAD"}`}</code>
      <code class="rev" title=${(st.sync || {}).revision || ""}>${shortRev((st.sync || {}).revision)}</code>
    </div>
    <div class="app-dest"><span title=${dest.server || dest.name}>${dest.name || dest.server}</span> / ${dest.namespace || ""}</div>
    <div class="app-op">
      <${PhaseBadge} phase=${op.phase} /> <${Time} iso=${op.finishedAt || op.startedAt} />
      ${op.message && html`<span class="op-message" title=${op.message}>${op.message}</span>`}
    </div>
    ${(st.conditions || []).length > 0 && html`<div class="app-conditions"><${Conditions} conditions=${st.conditions} /></div>`}
  </li>`;
}

/** Counts per status: the fleet's (GET /application-counts, every app the filters match) when
 * the API gave them, else those of the loaded rows ("+ (more to load)" when more exist). */
function Counts({ apps, more, fleet }) {
  const c = fleet || counts(apps);
  const total = fleet ? fleet.total : apps.length;
  const item = (kind, code, n) => n > 0 && html`<li class=${`count ${kind}-${code}`} data-count=${code}><strong>${n}</strong> ${code}</li>`;
  return html`<section class="counts" aria-label="Counts per status" data-scope=${fleet ? "fleet" : "loaded"}>
    ${total > 0 && html`<ul aria-label="Sync counts"><li class="muted">Sync:</li>${SYNC_CODES.map((s) => item("sync", s, c.sync[s]))}</ul>
    <ul aria-label="Health counts"><li class="muted">Health:</li>${HEALTH_CODES.map((s) => item("health", s, c.health[s]))}</ul>`}
    <span class="muted" data-total=${total}>${total}${!fleet && more ? "+ (more to load)" : ""} application${total === 1 ? "" : "s"}${fleet && apps.length < total ? ` (${apps.length} loaded)` : ""}</span>
  </section>`;
}

function Filters({ filters, setFilter, options }) {
  const text = (key, label, list) => html`<label>${label}
    <input name=${key} list=${list ? `opts-${key}` : undefined} value=${filters[key] || ""} autocomplete="off"
      onChange=${(e) => setFilter(key, e.currentTarget.value.trim())} />
    ${list && html`<datalist id=${`opts-${key}`}>${list.map((v) => html`<option value=${v} />`)}</datalist>`}</label>`;
  const select = (key, label, codes) => html`<label>${label}
    <select name=${key} value=${filters[key] || ""} onChange=${(e) => setFilter(key, e.currentTarget.value)}>
      <option value="">any</option>${codes.map((c) => html`<option value=${c}>${c}</option>`)}</select></label>`;
  return html`<form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
    <label class="search">Name <input type="search" name="search" value=${filters.search || ""} placeholder="search applications"
      onInput=${(e) => setFilter("search", e.currentTarget.value)} /></label>
    ${text("project", "Project", options.project)}
    ${text("repository", "Repository", options.repository)}
    ${text("cluster", "Cluster", options.cluster)}
    ${text("namespace", "Namespace", options.namespace)}
    ${select("sync", "Sync", SYNC_CODES)}
    ${select("health", "Health", HEALTH_CODES)}
    ${Object.keys(filters).length > 0 && html`<button type="button" class="link" onClick=${() => setFilter(null)}>Clear filters</button>`}
  </form>`;
}

export function ApplicationsPage({ query }) {
  const filters = useMemo(() => filtersFromQuery(query), [query.toString()]);
  const creating = query.get("new") !== null;
  const [items, setItems] = useState(null);
  const [cursor, setCursor] = useState(null);
  const [shown, setShown] = useState(PAGE_SIZE);
  const [error, setError] = useState(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [clusters, setClusters] = useState([]);
  const [repos, setRepos] = useState([]);
  const generation = useRef(0);
  const key = JSON.stringify(filters);

  const setFilter = (k, v) => {
    const next = k === null ? {} : { ...filters, [k]: v };
    if (k !== null && !v) delete next[k];
    const q = filtersToQuery(next).toString();
    navigate(`/applications${q ? `?${q}` : ""}`, { replace: true });
  };

  const inflight = useRef(false);
  const firstPage = async (merge) => {
    const mine = generation.current;
    if (merge && inflight.current) return; // a slow answer: no second request behind it
    inflight.current = true;
    try {
      const data = await api("GET", "/applications", { query: apiQuery(filters, PAGE_SIZE) });
      if (mine !== generation.current) return;
      const fresh = data.items || [];
      setError(null);
      if (merge) {
        // a poll: fresh rows replace the loaded ones of the same name, later pages stay
        setItems((old) => {
          const byName = new Map(fresh.map((a) => [a.metadata.name, a]));
          const rest = (old || []).filter((a) => !byName.has(a.metadata.name) && a.metadata.name > (fresh.at(-1)?.metadata.name ?? ""));
          return [...fresh, ...rest];
        });
      } else {
        setItems(fresh);
        setCursor(data[NEXT_CURSOR] || null);
        setShown(PAGE_SIZE);
      }
    } catch (err) {
      if (mine === generation.current) setError(err);
    } finally {
      inflight.current = false;
    }
  };

  useEffect(() => {
    generation.current += 1;
    setItems(null);
    firstPage(false);
    const timer = setInterval(() => { if (!document.hidden) firstPage(true); }, POLL_IDLE_MS);
    return () => clearInterval(timer);
  }, [key]);

  // the fleet's counts, apart from the page (they read every app): asked once the first page
  // is in, so they never hold the first rows up
  const [fleet, setFleet] = useState(null);
  const firstIn = items !== null;
  useEffect(() => {
    if (!firstIn) return undefined;
    let stale = false;
    const read = () => api("GET", COUNTS_PATH, { query: apiQuery(filters) })
      .then((c) => { if (!stale) setFleet(c); }, () => { if (!stale) setFleet(null); });
    setFleet(null);
    read();
    const timer = setInterval(() => { if (!document.hidden) read(); }, POLL_COUNTS_MS);
    return () => { stale = true; clearInterval(timer); };
  }, [key, firstIn]);

  useEffect(() => {
    api("GET", "/clusters").then((d) => setClusters(d.items || []), () => {});
    api("GET", "/repositories").then((d) => setRepos(d.items || []), () => {});
  }, []);

  // The server filters and pages; the same filters run here too, so a server that ignores
  // them (or an older one answering every app at once) still shows the right rows.
  const visible = useMemo(() => (items || []).filter((a) => matches(a, filters, clusters)), [items, key, clusters]);
  const options = useMemo(() => {
    const all = items || [];
    const uniq = (xs) => [...new Set(xs.filter(Boolean))].sort();
    return {
      project: uniq(all.map((a) => a.spec.project || "default")),
      repository: uniq([...repos.map((r) => r.url), ...all.map((a) => sourceOf(a.spec).repoURL)]),
      cluster: uniq(clusters.map((c) => c.name)),
      namespace: uniq(all.map((a) => (a.spec.destination || {}).namespace)),
    };
  }, [items, clusters, repos]);

  const loadMore = async () => {
    if (shown < visible.length) return setShown(shown + PAGE_SIZE);
    if (!cursor) return;
    setLoadingMore(true);
    const mine = generation.current;
    try {
      const data = await api("GET", "/applications", { query: apiQuery(filters, PAGE_SIZE, cursor) });
      if (mine !== generation.current) return;
      setItems((old) => [...(old || []), ...(data.items || [])]);
      setCursor(data[NEXT_CURSOR] || null);
      setShown(shown + PAGE_SIZE);
    } catch (err) {
      setError(err);
    } finally {
      setLoadingMore(false);
    }
  };

  const more = cursor !== null || shown < visible.length;
  const closeCreate = () => navigate(`/applications${filtersToQuery(filters).toString() ? `?${filtersToQuery(filters)}` : ""}`, { replace: true });
  return html`<main class="page" id="applications">
    <div class="page-head">
      <h1>Applications</h1>
      <button type="button" class="primary" onClick=${() => navigate("/applications?new=1")}>+ New app</button>
    </div>
    <${Filters} filters=${filters} setFilter=${setFilter} options=${options} />
    <${ErrorBox} error=${error} />
    ${items === null && !error && html`<p class="muted" aria-busy="true">Loading applications…</p>`}
    ${items !== null && html`<${Counts} apps=${visible} more=${cursor !== null} fleet=${fleet} />`}
    ${items !== null && visible.length === 0 && html`<p class="empty">${Object.keys(filters).length ? "No application matches these filters." : "No applications yet."}</p>`}
    <ul class="app-list" aria-label="Applications">${visible.slice(0, shown).map((a) => html`<${AppRow} key=${a.metadata.name} app=${a} />`)}</ul>
    ${more && html`<button type="button" class="more" disabled=${loadingMore} onClick=${loadMore}>${loadingMore ? "Loading…" : "Load more"}</button>`}
    ${creating && html`<${CreateApplication} clusters=${clusters} repos=${repos} onClose=${closeCreate}
      onCreated=${(name) => navigate(`/applications/${encodeURIComponent(name)}`)} />`}
  </main>`;
}
