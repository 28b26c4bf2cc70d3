// /clusters: list, add from a kubeconfig (pasted or a file; never shown back), delete.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html.js";
import { api } from "../api.js";
import { ErrorBox } from "../components/common.js";

export function ClustersPage() {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [form, setForm] = useState({ name: "", namespace: "", kubeconfig: "" });
  const [formError, setFormError] = useState(null);
  const load = () => api("GET", "/clusters").then((d) => { setItems(d.items || []); setError(null); }, setError);
  useEffect(() => { load(); }, []);
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const readFile = async (e) => {
    const file = e.currentTarget.files[0];
    if (file) setForm({ ...form, kubeconfig: await file.text() });
  };
  const add = async (e) => {
    e.preventDefault();
    setFormError(null);
    const body = { name: form.name.trim(), kubeconfig: form.kubeconfig };
    if (form.namespace.trim()) body.namespace = form.namespace.trim();
    try {
      await api("POST", "/clusters", { body });
      setForm({ name: "", namespace: "", kubeconfig: "" });
      load();
    } catch (err) {
      setFormError(err);
    }
  };
  const remove = async (c) => {
    if (!window.confirm(`Forget cluster ${c.name}?`)) return;
    try {
      await api("DELETE", `/clusters/${encodeURIComponent(c.name)}`);
      load();
    } catch (err) {
      setError(err);
    }
  };
  return html`<main class="page" id="clusters">
    <h1>Clusters</h1>
    <${ErrorBox} error=${error} />
    ${items === null && !error && html`<p class="muted" aria-busy="true">Loading…</p>`}
    ${items && items.length === 0 && html`<p class="empty">No cluster registered.</p>`}
    ${items && items.length > 0 && html`<div class="table-wrap"><table>
      <thead><tr><th>Name</th><th>Server</th><th>Namespace</th><th>Version</th><th></th></tr></thead>
      <tbody>${items.map((c) => html`<tr data-cluster=${c.name}><td>${c.name}</td><td class="mono">${c.server}</td><td>${c.namespace || ""}</td>
        <td>${c.serverVersion || ""}</td>
        <td><button type="button" class="danger" onClick=${() => remove(c)} aria-label=${`Delete cluster ${c.name}`}>Delete</button></td></tr>`)}</tbody>
    </table></div>`}
    <form class="card add-form" onSubmit=${add} aria-labelledby="add-cluster">
      <h2 id="add-cluster">Add a cluster</h2>
      <${ErrorBox} error=${formError} />
      <label>Name <input name="name" required value=${form.name} onInput=${set("name")} /></label>
      <label>Default namespace (optional) <input name="namespace" value=${form.namespace} onInput=${set("namespace")} /></label>
      <label>Kubeconfig file <input type="file" name="file" onChange=${readFile} /></label>
      <label>or paste it <textarea name="kubeconfig" rows="6" spellcheck="false" value=${form.kubeconfig} onInput=${set("kubeconfig")} /></label>
      <button type="submit" class="primary">Add cluster</button>
    </form>
  </main>`;
}
