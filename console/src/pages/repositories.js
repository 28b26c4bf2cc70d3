// /repositories: list, add (credentials go to the API, never shown back), delete.
import { useEffect, useState } from "preact/hooks";
import { html } from "../html.js";
import { api } from "../api.js";
import { ErrorBox } from "../components/common.js";

export function RepositoriesPage() {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [form, setForm] = useState({ url: "", name: "", username: "", secret: "", kind: "token" });
  const [formError, setFormError] = useState(null);
  const load = () => api("GET", "/repositories").then((d) => { setItems(d.items || []); setError(null); }, setError);
  useEffect(() => { load(); }, []);
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const add = async (e) => {
    e.preventDefault();
    setFormError(null);
    const body = { url: form.url.trim() };
    if (form.name.trim()) body.name = form.name.trim();
    if (form.username.trim()) body.username = form.username.trim();
    if (form.secret) body[form.kind] = form.secret;
    try {
      await api("POST", "/repositories", { body });
      setForm({ url: "", name: "", username: "", secret: "", kind: form.kind });
      load();
    } catch (err) {
      setFormError(err);
    }
  };
  const remove = async (repo) => {
    if (!window.confirm(`Forget repository ${repo.url}?`)) return;
    try {
      await api("DELETE", "/repositories", { query: { url: repo.url } });
      load();
    } catch (err) {
      setError(err);
    }
  };
  return html`<main class="page" id="repositories">
    <h1>Repositories</h1>
    <${ErrorBox} error=${error} />
    ${items === null && !error && html`<p class="muted" aria-busy="true">Loading…</p>`}
    ${items && items.length === 0 && html`<p class="empty">No repository registered (public ones need none).</p>`}
    ${items && items.length > 0 && html`<div class="table-wrap"><table>
      <thead><tr><th>URL</th><th>Name</th><th>User</th><th>Credentials</th><th></th></tr></thead>
      <tbody>${items.map((r) => html`<tr data-repo=${r.url}><td class="mono">${r.url}</td><td>${r.name || ""}</td><td>${r.username || ""}</td>
        <td>${r.hasCredentials ? "stored" : "none"}</td>
        <td><button type="button" class="danger" onClick=${() => remove(r)} aria-label=${`Delete repository ${r.url}`}>Delete</button></td></tr>`)}</tbody>
    </table></div>`}
    <form class="card add-form" onSubmit=${add} aria-labelledby="add-repo">
      <h2 id="add-repo">Add a repository</h2>
      <${ErrorBox} error=${formError} />
      <label>URL <input name="url" required value=${form.url} onInput=${set("url")} placeholder="https://git.example.com/org/apps.git" /></label>
      <label>Name (optional) <input name="name" value=${form.name} onInput=${set("name")} /></label>
      <label>Username <input name="username" value=${form.username} onInput=${set("username")} autocomplete="off" /></label>
      <label>Credential <select name="kind" value=${form.kind} onChange=${set("kind")}><option value="token">token</option><option value="password">password</option></select></label>
      <label>Secret <input name="secret" type="password" value=${form.secret} onInput=${set("secret")} autocomplete="new-password" /></label>
      <button type="submit" class="primary">Add repository</button>
    </form>
  </main>`;
}
