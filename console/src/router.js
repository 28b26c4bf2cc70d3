// History-API routing under the base path the server tells (the API Gateway stage, e.g. /Prod).
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";

const meta = document.querySelector('meta[name="gitferry-base"]');
const raw = meta ? meta.getAttribute("content") || "" : "";
/** "" or "/Stage": never a placeholder left by a page not served by the api function. */
export const BASE = /^(\/[A-Za-z0-9._~-]+)*$/.test(raw) ? raw : "";

export function currentPath() {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname;
  return path || "/";
}

export function href(path) {
  return BASE + path;
}

export function navigate(path, { replace = false } = {}) {
  const url = href(path);
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.dispatchEvent(new Event("gitferry:navigate"));
}

/** The location as [path, URLSearchParams], re-rendering on every navigation. */
export function useLocation() {
  const read = () => [currentPath(), new URLSearchParams(location.search)];
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const on = () => setLoc(read());
    window.addEventListener("popstate", on);
    window.addEventListener("gitferry:navigate", on);
    return () => {
      window.removeEventListener("popstate", on);
      window.removeEventListener("gitferry:navigate", on);
    };
  }, []);
  return loc;
}

/** An in-app link: a real <a href> (middle click, copy link) that routes without a reload. */
export function Link({ to, children, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return html`<a href=${href(to)} onClick=${onClick} ...${rest}>${children}</a>`;
}
