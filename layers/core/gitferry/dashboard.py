"""The web dashboard: one static page that reads the management API from the browser."""

DASHBOARD_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gitferry</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd}
.Synced,.Healthy{color:#18794e}.OutOfSync,.Progressing{color:#b45309}.Degraded,.Missing,.Unknown{color:#b91c1c}
code{font-size:.85em}
</style></head>
<body><h1>gitferry</h1>
<form id="login" hidden><label>API token <input id="token" type="password" autocomplete="off"></label>
<button>Show applications</button></form>
<table><thead><tr><th>Application</th><th>Sync</th><th>Health</th><th>Revision</th><th>Repository</th>
<th>Destination</th><th>Last operation</th></tr></thead><tbody id="apps"><tr><td colspan="7">loading</td></tr></tbody></table>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
// The token never travels in a URL the server sees: a #token=... fragment is stored, then dropped.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) { localStorage.setItem("gitferry-token", fragment.get("token")); history.replaceState(null, "", location.pathname); }
const login = document.getElementById("login");
login.addEventListener("submit", e => { e.preventDefault(); localStorage.setItem("gitferry-token", document.getElementById("token").value); login.hidden = true; load(); });
function ask(message) { login.hidden = false; document.getElementById("apps").innerHTML = `<tr><td colspan="7">${esc(message)}</td></tr>`; }
async function load() {
  const token = localStorage.getItem("gitferry-token");
  if (!token) return ask("enter the API token (Secrets Manager: gitferry/api-token)");
  const base = location.pathname.replace(/\\/$/, "");
  const res = await fetch(base + "/api/v1/applications", {headers: {Authorization: "Bearer " + token}});
  if (res.status === 401) { localStorage.removeItem("gitferry-token"); return ask("the API token was refused"); }
  const data = await res.json();
  document.getElementById("apps").innerHTML = data.items.map(a => {
    const st = a.status || {}, sync = (st.sync || {}).status, health = (st.health || {}).status;
    const op = st.operationState || {};
    const src = a.spec.source || (a.spec.sources || [])[0] || {};
    const more = (a.spec.sources || []).length > 1 ? ` +${a.spec.sources.length - 1}` : "";
    return `<tr><td>${esc(a.metadata.name)}</td><td class="${esc(sync)}">${esc(sync)}</td>
      <td class="${esc(health)}">${esc(health)}</td><td><code>${esc(((st.sync || {}).revision || "").slice(0, 8))}</code></td>
      <td>${esc(src.repoURL)} <code>${esc(src.path || src.chart)}</code>${esc(more)}</td>
      <td>${esc(a.spec.destination.server || a.spec.destination.name)} / ${esc(a.spec.destination.namespace)}</td>
      <td>${esc(op.phase)} ${esc(op.message)}</td></tr>`;
  }).join("") || '<tr><td colspan="7">no applications</td></tr>';
}
load(); setInterval(() => { if (login.hidden) load(); }, 5000);
</script></body></html>
"""
