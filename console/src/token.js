// The API token lives in the browser only: sessionStorage (this tab) or localStorage
// ("remember"). It never travels in a URL the server sees: /#token=... is a fragment, stored
// and then removed from the address bar.
import { TOKEN_KEY } from "./config.js";

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token, remember) {
  clearToken();
  (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
}

/** Take a #token=... fragment: store it (localStorage) and drop it from the address bar. */
export function takeFragmentToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    setToken(token, true);
    history.replaceState(history.state, "", location.pathname + location.search);
  }
}
