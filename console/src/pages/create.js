// The create and edit dialogs: a form, or the same Application manifest as YAML; API problems
// are shown on the fields they name. Edit: the app's manifest (without status) is the base the
// form changes, sent back whole with its resourceVersion by PUT (409 when changed meanwhile).
import { useState } from "preact/hooks";
import YAML from "yaml";
import { html } from "../html.js";
import { api, ApiError } from "../api.js";
import { Dialog, ErrorBox } from "../components/common.js";
import { EMPTY_FORM, fromManifest, problemsByField, toManifest } from "../manifest.js";

/** The manifest an edit starts from: the app as the API gave it, without what only the
 * server writes (status, deletionTimestamp). */
export function editableManifest(app) {
  const meta = { ...(app.metadata || {}) };
  delete meta.deletionTimestamp;
  return { apiVersion: app.apiVersion || "argoproj.io/v1alpha1", kind: app.kind || "Application", metadata: meta,
    spec: JSON.parse(JSON.stringify(app.spec || {})) };
}

export function CreateApplication(props) {
  return html`<${ApplicationForm} ...${props} />`;
}

/** ``app`` given: edit it (PUT); else create (POST) and ``onCreated(name)``. */
export function ApplicationForm({ clusters, repos, app, onClose, onCreated, onSaved }) {
  const editing = Boolean(app);
  const start = editing ? editableManifest(app) : null;
  const [form, setForm] = useState(() => (editing ? fromManifest(start)
    : { ...EMPTY_FORM, server: clusters.length === 1 ? clusters[0].server : "" }));
  const [base, setBase] = useState(() => start || {});
  // the form shows one source: a multi-source app is edited as YAML only
  const yamlOnly = Boolean(editing && Array.isArray(start.spec.sources));
  const [mode, setMode] = useState(yamlOnly ? "yaml" : "form");
  const [yamlText, setYamlText] = useState(() => (yamlOnly ? YAML.stringify(start) : ""));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => {
    const t = e.currentTarget;
    setForm({ ...form, [k]: t.type === "checkbox" ? t.checked : t.value });
  };

  const toYaml = () => {
    setYamlText(YAML.stringify(toManifest(form, base)));
    setMode("yaml");
    setError(null);
  };
  const toForm = () => {
    try {
      const doc = YAML.parse(yamlText) || {};
      if (typeof doc !== "object" || Array.isArray(doc)) throw new Error("the YAML is not a mapping");
      setBase(doc);
      setForm(fromManifest(doc));
      setMode("form");
      setError(null);
    } catch (err) {
      setError(new ApiError(0, `cannot read the YAML: ${err.message}`));
    }
  };

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const [method, path] = editing ? ["PUT", `/applications/${encodeURIComponent(app.metadata.name)}`] : ["POST", "/applications"];
      const answer = mode === "yaml"
        ? await api(method, path, { yaml: yamlText })
        : await api(method, path, { body: toManifest(form, base) });
      if (editing) onSaved(answer);
      else onCreated(answer.metadata.name);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const { byField, rest } = problemsByField(error ? error.problems : [], form);
  const field = (key, label, input) => {
    const errs = mode === "form" ? byField[key] : null;
    return html`<div class=${`field${errs ? " invalid" : ""}`} data-field=${key}>
      <label for=${`f-${key}`}>${label}</label>
      ${input({ id: `f-${key}`, "aria-invalid": errs ? "true" : undefined, "aria-describedby": errs ? `e-${key}` : undefined })}
      ${errs && html`<ul class="field-error" id=${`e-${key}`} role="alert">${errs.map((m) => html`<li>${m}</li>`)}</ul>`}
    </div>`;
  };
  const text = (key, label, attrs = {}) => field(key, label, (a) => html`<input ...${a} ...${attrs} name=${key} value=${form[key]} onInput=${set(key)} />`);
  const shownError = error && (mode === "yaml" ? error : (rest.length || !error.problems.length ? new ApiError(error.status, error.message, rest) : null));

  return html`<${Dialog} title=${editing ? `Edit ${app.metadata.name}` : "New application"} onClose=${onClose} wide>
    <form class="create" onSubmit=${submit} novalidate>
      <div class="tabs" role="group" aria-label="Edit as">
        <button type="button" aria-pressed=${mode === "form"} disabled=${yamlOnly}
          title=${yamlOnly ? "a multi-source app is edited as YAML" : undefined} onClick=${() => mode === "yaml" && toForm()}>Form</button>
        <button type="button" aria-pressed=${mode === "yaml"} onClick=${() => mode === "form" && toYaml()}>Edit as YAML</button>
      </div>
      <${ErrorBox} error=${shownError} />
      ${mode === "yaml" ? html`<label class="yaml">Application manifest (YAML)
          <textarea name="yaml" rows="22" spellcheck="false" value=${yamlText} onInput=${(e) => setYamlText(e.currentTarget.value)} /></label>`
      : html`<fieldset><legend>General</legend>
          ${text("name", "Application name", { required: true, autocomplete: "off", readOnly: editing })}
          ${text("project", "Project")}
          ${field("syncPolicy", "Sync policy", (a) => html`<select ...${a} name="syncPolicy" value=${form.syncPolicy} onChange=${set("syncPolicy")}>
            <option value="none">Manual (none)</option><option value="automated">Automated</option></select>`)}
          ${form.syncPolicy === "automated" && html`<div class="checks">
            <label class="check"><input type="checkbox" name="prune" checked=${form.prune} onChange=${set("prune")} /> Prune resources</label>
            <label class="check"><input type="checkbox" name="selfHeal" checked=${form.selfHeal} onChange=${set("selfHeal")} /> Self heal</label></div>`}
        </fieldset>
        <fieldset><legend>Source</legend>
          <div class="checks" role="radiogroup" aria-label="Source type">
            <label class="check"><input type="radio" name="sourceType" value="git" checked=${form.sourceType === "git"} onChange=${set("sourceType")} /> Git</label>
            <label class="check"><input type="radio" name="sourceType" value="helm" checked=${form.sourceType === "helm"} onChange=${set("sourceType")} /> Helm</label>
          </div>
          ${text("repoURL", form.sourceType === "helm" ? "Helm repository URL" : "Repository URL", { list: "repo-urls", autocomplete: "off" })}
          <datalist id="repo-urls">${repos.map((r) => html`<option value=${r.url} />`)}</datalist>
          ${form.sourceType === "helm" ? html`${text("chart", "Chart")}${text("revision", "Chart version")}`
            : html`${text("revision", "Revision (branch, tag, commit)")}${text("path", "Path")}`}
        </fieldset>
        <fieldset><legend>Destination</legend>
          <div class="checks" role="radiogroup" aria-label="Destination by">
            <label class="check"><input type="radio" name="destType" value="server" checked=${form.destType === "server"} onChange=${set("destType")} /> by URL</label>
            <label class="check"><input type="radio" name="destType" value="name" checked=${form.destType === "name"} onChange=${set("destType")} /> by name</label>
          </div>
          ${form.destType === "name"
            ? field("destName", "Cluster name", (a) => html`<select ...${a} name="destName" value=${form.destName} onChange=${set("destName")}>
                <option value="">choose…</option>${clusters.map((c) => html`<option value=${c.name}>${c.name}</option>`)}</select>`)
            : text("server", "Cluster URL", { list: "cluster-servers", autocomplete: "off" })}
          <datalist id="cluster-servers">${clusters.map((c) => html`<option value=${c.server}>${c.name}</option>`)}</datalist>
          ${text("namespace", "Namespace")}
          <label class="check"><input type="checkbox" name="createNamespace" checked=${form.createNamespace} onChange=${set("createNamespace")} /> Create the namespace (CreateNamespace=true)</label>
        </fieldset>`}
      <div class="actions">
        <button type="submit" class="primary" disabled=${busy}>${editing ? (busy ? "Saving…" : "Save") : busy ? "Creating…" : "Create"}</button>
        <button type="button" onClick=${onClose}>Cancel</button>
      </div>
    </form>
  </${Dialog}>`;
}
