import { useEffect, useRef } from "preact/hooks";
import { html } from "../html.js";
import { ago } from "../format.js";

/** An API error in full: message and every problem line. */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">
    <strong>${error.message}</strong>
    ${error.problems && error.problems.length > 0 && html`<ul>${error.problems.map((p) => html`<li>${p}</li>`)}</ul>`}
  </div>`;
}

export function Time({ iso }) {
  if (!iso) return null;
  return html`<time datetime=${iso} title=${iso}>${ago(iso)}</time>`;
}

/** Conditions with their full messages (a ComparisonError says why the app is Unknown). */
export function Conditions({ conditions, open = false }) {
  const list = conditions || [];
  if (list.length === 0) return null;
  return html`<details class="conditions" open=${open}>
    <summary>${list.length} condition${list.length > 1 ? "s" : ""}: ${[...new Set(list.map((c) => c.type))].join(", ")}</summary>
    <ul>${list.map((c) => html`<li class=${/Error|Warning/.test(c.type) ? "cond-error" : ""}>
      <strong>${c.type}</strong> <${Time} iso=${c.lastTransitionTime} />
      <pre class="message">${c.message}</pre></li>`)}</ul>
  </details>`;
}

/** A modal <dialog> (focus trapped and Escape handled by the browser). */
export function Dialog({ title, onClose, children, wide = false }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const cancel = (e) => { e.preventDefault(); onClose(); };
    d.addEventListener("cancel", cancel);
    return () => d.removeEventListener("cancel", cancel);
  }, []);
  return html`<dialog ref=${ref} class=${wide ? "wide" : ""} aria-label=${title}>
    <header class="dialog-head"><h2>${title}</h2>
      <button type="button" class="icon" aria-label="Close" onClick=${onClose}>✕</button></header>
    ${children}
  </dialog>`;
}
