import { useState } from "preact/hooks";
import { html } from "../html.js";
import { setToken } from "../token.js";

export function TokenPage({ refused, onToken }) {
  const [value, setValue] = useState("");
  const [remember, setRemember] = useState(true);
  const submit = (e) => {
    e.preventDefault();
    if (!value.trim()) return;
    setToken(value.trim(), remember);
    onToken();
  };
  return html`<main class="page token-page">
    <h1>gitferry</h1>
    <form onSubmit=${submit} class="card" aria-labelledby="token-title">
      <h2 id="token-title">API token</h2>
      ${refused && html`<p class="error" role="alert">${refused}</p>`}
      <p>The console calls the management API with your bearer token (Secrets Manager
        <code>gitferry/api-token</code>; <code>make up</code> prints one). It stays in this browser.</p>
      <label>Token <input name="token" type="password" autocomplete="off" required value=${value}
        onInput=${(e) => setValue(e.currentTarget.value)} /></label>
      <label class="check"><input type="checkbox" checked=${remember} onChange=${(e) => setRemember(e.currentTarget.checked)} />
        Remember on this device (otherwise only for this tab)</label>
      <button type="submit" class="primary">Sign in</button>
    </form>
  </main>`;
}
