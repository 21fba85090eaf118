// Small DOM and formatting helpers shared by the rendering modules. User text reaches the DOM
// only through textContent; styles only through the CSSOM (the page's CSP forbids inline ones).

export const APP_NAME = "Chorus";
const TOAST_MS = 10000;
const MAX_TOASTS = 4;

export const $ = (selector) => document.querySelector(selector);

/** Create an element. `props` may hold className, text, dataset, attrs and vars (CSS custom
 * properties, set through the CSSOM). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  if (props.className) el.className = props.className;
  if (props.text !== undefined) el.textContent = props.text;
  for (const [k, v] of Object.entries(props.dataset ?? {})) el.dataset[k] = v;
  for (const [k, v] of Object.entries(props.attrs ?? {})) el.setAttribute(k, v);
  for (const [k, v] of Object.entries(props.vars ?? {})) el.style.setProperty(k, v);
  el.append(...children);
  return el;
}

const pad2 = (n) => String(n).padStart(2, "0");

export function formatTime(ms) {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

export function sameDay(a, b) {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

export function formatDay(ms) {
  const d = new Date(ms);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (sameDay(d, today)) return "Today";
  if (sameDay(d, yesterday)) return "Yesterday";
  const opts = { weekday: "long", month: "long", day: "numeric" };
  if (d.getFullYear() !== today.getFullYear()) opts.year = "numeric";
  return d.toLocaleDateString(undefined, opts);
}

export const displayName = (user) => (user && (user.display_name || user.username)) || "";

/** "@username", which tells apart two people with the same display name. */
export const handle = (user) => (user && user.username ? `@${user.username}` : "");

export function hueOf(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

export function toast(message) {
  const box = $("#toasts");
  while (box.children.length >= MAX_TOASTS) box.firstElementChild.remove();
  const close = h("button", { className: "toast-close", text: "✕", attrs: { type: "button", "aria-label": "Dismiss" } });
  const el = h("div", { className: "toast", attrs: { role: "status" } },
    h("span", { className: "toast-text", text: message }), close);
  const timer = setTimeout(() => el.remove(), TOAST_MS);
  close.addEventListener("click", () => { clearTimeout(timer); el.remove(); });
  box.append(el);
}

export const pageVisible = () => document.visibilityState !== "hidden";
