// The console's shell: token page first when none is stored, then the routes.
import "./styles.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { UNAUTHORIZED_EVENT } from "./api.js";
import { Link, navigate, useLocation } from "./router.js";
import { clearToken, getToken, takeFragmentToken } from "./token.js";
import { TokenPage } from "./pages/token.js";
import { ApplicationsPage } from "./pages/applications.js";
import { ApplicationPage } from "./pages/application.js";
import { RepositoriesPage } from "./pages/repositories.js";
import { ClustersPage } from "./pages/clusters.js";

function Redirect({ to }) {
  useEffect(() => navigate(to, { replace: true }), []);
  return null;
}

function Route({ path, query }) {
  if (path === "/" || path === "") return html`<${Redirect} to="/applications" />`;
  if (path === "/applications" || path === "/applications/") return html`<${ApplicationsPage} query=${query} />`;
  const app = /^\/applications\/([^/]+)\/?$/.exec(path);
  if (app) return html`<${ApplicationPage} name=${decodeURIComponent(app[1])} query=${query} />`;
  if (path === "/repositories") return html`<${RepositoriesPage} />`;
  if (path === "/clusters") return html`<${ClustersPage} />`;
  return html`<main class="page"><h1>Not found</h1><p>No console page at <code>${path}</code>.</p>
    <p><${Link} to="/applications">Applications</${Link}></p></main>`;
}

function App() {
  const [path, query] = useLocation();
  const [token, setTokenState] = useState(getToken());
  const [refused, setRefused] = useState("");
  useEffect(() => {
    const on = (e) => { setRefused(e.detail || ""); setTokenState(""); };
    window.addEventListener(UNAUTHORIZED_EVENT, on);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, on);
  }, []);
  if (!token) {
    return html`<${TokenPage} refused=${refused} onToken=${() => { setRefused(""); setTokenState(getToken()); }} />`;
  }
  const section = path.split("/")[1] || "applications";
  const nav = (to, label) => html`<${Link} to=${to} aria-current=${section === to.slice(1) ? "page" : undefined}>${label}</${Link}>`;
  return html`<div class="shell">
    <header class="top">
      <${Link} to="/applications" class="brand">gitferry</${Link}>
      <nav aria-label="Sections">${nav("/applications", "Applications")}${nav("/repositories", "Repositories")}${nav("/clusters", "Clusters")}</nav>
      <button type="button" class="link" onClick=${() => { clearToken(); setTokenState(""); }}>Sign out</button>
    </header>
    <${Route} path=${path} query=${query} />
  </div>`;
}

takeFragmentToken();
render(html`<${App} />`, document.getElementById("root"));
