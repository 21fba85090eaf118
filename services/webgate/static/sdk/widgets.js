// Chorus widgets for any site's pages (docs/sdk.md, "Widgets"): custom elements in Shadow DOM,
// so the site's CSS cannot reach inside, sharing one chorus.js client per page (and, through it,
// one WebSocket per browser):
//
//   <script type="module" src="https://chorus.example/sdk/widgets.js"></script>
//   <chorus-badge token-endpoint="/chorus-token"></chorus-badge>
//   <chorus-toast></chorus-toast>  <chorus-inbox></chorus-inbox>
//
// The first element with `token-endpoint` names the site's URL that answers, for its signed-in
// visitor (cookies are sent), `{"token": "...", "expires_at": MS?}`; 401 or 403 means signed
// out. `chorus-url` (optional) is the WebSocket URL; by default this module's own server.
// Text reaches the DOM only through textContent; styles are constructed sheets, which a site's
// Content-Security-Policy (style-src) does not block.

import { Chorus } from "./chorus.js";

const CHORUS = new URL("..", import.meta.url);
const TOAST_MS = 6000;
const MAX_TOASTS = 3;
const INBOX_PAGE = 30; // messages an inbox shows per group

let client = null;

/** The page's one client, made from the first element that says where tokens come from. */
function chorusFor(el) {
  if (client) return client;
  const source = el.closest("[token-endpoint]") ?? document.querySelector("[token-endpoint]");
  const endpoint = source?.getAttribute("token-endpoint");
  if (!endpoint) throw new Error(`<${el.localName}>: no token-endpoint attribute on it or on another Chorus element`);
  const url = source.getAttribute("chorus-url") ?? `${CHORUS.protocol === "https:" ? "wss" : "ws"}://${CHORUS.host}/ws`;
  client = Chorus.connect({ url, getToken: () => siteToken(endpoint) });
  return client;
}

/** The site's token for its signed-in visitor; null when signed out (a failure throws: retried). */
async function siteToken(endpoint) {
  const res = await fetch(endpoint, { credentials: "include", headers: { Accept: "application/json" } });
  if (res.status === 401 || res.status === 403) return null;
  if (!res.ok) throw new Error(`token endpoint ${endpoint}: ${res.status}`);
  const body = await res.json();
  return { token: body.token, expiresAt: body.expires_at };
}

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  el.append(...children);
  return el;
}

const sheets = new Map();
function sheet(css) {
  if (!sheets.has(css)) {
    const s = new CSSStyleSheet();
    s.replaceSync(css);
    sheets.set(css, s);
  }
  return sheets.get(css);
}

const BASE = `:host{font:14px/1.4 system-ui,sans-serif;color:#1d1c1d}[hidden]{display:none!important}
button{font:inherit;cursor:pointer}`;

const sender = (m) => (m.from && (m.from.display_name || m.from.username)) || "someone";
const groupName = (chorus, id) => chorus.groups().find((g) => g.id === id)?.name ?? id;

/** A widget: its shadow root, its sheet, and the client's events it follows while on the page. */
class ChorusElement extends HTMLElement {
  connectedCallback() {
    if (!this.shadowRoot) {
      this.attachShadow({ mode: "open" }).adoptedStyleSheets = [sheet(BASE), sheet(this.constructor.css)];
      this.build(this.shadowRoot);
    }
    this.chorus = chorusFor(this);
    this.offs = Object.entries(this.events()).map(([name, fn]) => this.chorus.on(name, fn));
    this.update?.();
  }

  disconnectedCallback() {
    for (const off of this.offs ?? []) off();
  }
}

/** `<chorus-badge group?>`: the unread count, of one group or of all; hidden at 0. */
class ChorusBadge extends ChorusElement {
  static css = `span{display:inline-block;min-width:1.4em;padding:0 .45em;border-radius:1em;background:#e01e5a;
color:#fff;font-weight:700;font-size:12px;text-align:center}`;

  build(root) {
    this.count = root.appendChild(h("span", { part: "count", role: "status" }));
  }

  events() {
    const update = () => this.update();
    return { unread: update, ready: update, left: update };
  }

  update() {
    const n = this.chorus.unread(this.getAttribute("group") ?? undefined);
    this.count.textContent = n > 99 ? "99+" : String(n);
    this.count.hidden = n === 0;
    this.count.setAttribute("aria-label", `${n} unread`);
  }
}

/** `<chorus-toast group-url? duration?>`: others' new messages pop up; a click opens the group
 * (the cancelable `chorus-open` event {group} first; then `group-url` with {group} in it). */
class ChorusToast extends ChorusElement {
  static css = `:host{position:fixed;right:16px;bottom:16px;z-index:2147483647;display:flex;flex-direction:column;gap:8px}
button{display:block;width:300px;text-align:left;border:0;border-radius:8px;padding:10px 12px;background:#fff;
box-shadow:0 4px 16px rgba(0,0,0,.2)}b{display:block}span{display:block;color:#555;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}`;

  build(root) {
    this.list = root.appendChild(h("div", { role: "log", "aria-live": "polite" }));
  }

  events() {
    return { message: (m) => this.pop(m) };
  }

  pop(m) {
    if (!m.system && m.from?.id === this.chorus.user?.id) return;
    while (this.list.children.length >= MAX_TOASTS) this.list.firstChild.remove();
    const toast = h("button", { part: "toast", type: "button", "data-group": m.group },
      h("b", { text: `${sender(m)} in ${groupName(this.chorus, m.group)}` }), h("span", { text: m.text }));
    toast.addEventListener("click", () => {
      toast.remove();
      const go = this.dispatchEvent(new CustomEvent("chorus-open", { detail: { group: m.group }, bubbles: true, cancelable: true }));
      const template = this.getAttribute("group-url") ?? `${CHORUS}#group={group}`;
      if (go) location.assign(template.replace("{group}", encodeURIComponent(m.group)));
    });
    this.list.append(toast);
    setTimeout(() => toast.remove(), Number(this.getAttribute("duration")) || TOAST_MS);
  }
}

/** `<chorus-inbox>`: the visitor's groups, the chosen one's latest messages, and a composer. */
class ChorusInbox extends ChorusElement {
  static css = `:host{display:block;width:320px;border:1px solid #ddd;border-radius:8px;background:#fff;overflow:hidden}
nav{display:flex;flex-wrap:wrap;gap:4px;padding:8px;border-bottom:1px solid #eee}nav button{border:1px solid #ddd;
border-radius:12px;background:#f8f8f8;padding:2px 10px}nav button[aria-pressed=true]{background:#1164a3;color:#fff}
ol{list-style:none;margin:0;padding:8px;height:240px;overflow-y:auto}li{margin-bottom:6px}li b{margin-right:6px}
form{display:flex;gap:4px;padding:8px;border-top:1px solid #eee}input{flex:1;font:inherit;padding:4px 6px}
p{margin:0;padding:4px 8px;color:#b00}`;

  build(root) {
    this.nav = h("nav", { part: "groups" });
    this.list = h("ol", { part: "messages", role: "log" });
    this.input = h("input", { "aria-label": "Message", placeholder: "Message" });
    this.error = h("p", { role: "alert" });
    this.error.hidden = true;
    const form = h("form", { part: "composer" }, this.input, h("button", { type: "submit", text: "Send" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.post();
    });
    root.append(this.nav, this.list, this.error, form);
    this.shown = new Set(); // seqs on screen for the selected group
  }

  events() {
    const groups = () => this.update();
    return { ready: groups, joined: groups, left: groups, unread: groups, message: (m) => this.add(m, true) };
  }

  update() {
    const groups = this.chorus.groups();
    if (!groups.some((g) => g.id === this.group)) this.select(groups[0]?.id ?? null);
    this.nav.replaceChildren(...groups.map((g) => {
      const b = h("button", { type: "button", "data-group": g.id, "aria-pressed": String(g.id === this.group),
        text: g.unread && g.id !== this.group ? `${g.name} (${g.unread})` : g.name });
      b.addEventListener("click", () => this.select(g.id));
      return b;
    }));
  }

  async select(id) {
    if (id === this.group) return;
    this.group = id;
    this.shown.clear();
    this.list.replaceChildren();
    this.update();
    if (!id) return;
    try {
      const { messages } = await this.chorus.history(id, { limit: INBOX_PAGE });
      if (this.group !== id) return;
      for (const m of [...messages].reverse()) this.add({ group: id, ...m }, false);
      if (messages.length) this.chorus.markRead(id, messages[0].seq); // newest first: read up to it
    } catch (err) {
      this.say(`Could not load messages: ${err.message}`);
    }
  }

  add(m, live) {
    if (m.group !== this.group || this.shown.has(m.seq)) return;
    this.shown.add(m.seq);
    const li = h("li", { "data-seq": String(m.seq) }, h("b", { text: m.system ? `${sender(m)} (bot)` : sender(m) }),
      h("span", { text: m.text }));
    const later = [...this.list.children].find((el) => Number(el.dataset.seq) > m.seq);
    this.list.insertBefore(li, later ?? null);
    this.list.scrollTop = this.list.scrollHeight;
    if (live) this.chorus.markRead(m.group, m.seq);
  }

  async post() {
    const text = this.input.value.trim();
    if (!text || !this.group) return;
    this.input.value = "";
    this.say("");
    try {
      await this.chorus.send(this.group, text);
    } catch (err) {
      this.input.value ||= text;
      this.say(`Not sent: ${err.message}`);
    }
  }

  say(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }
}

for (const [name, cls] of [["chorus-badge", ChorusBadge], ["chorus-toast", ChorusToast], ["chorus-inbox", ChorusInbox]]) {
  if (!customElements.get(name)) customElements.define(name, cls);
}
