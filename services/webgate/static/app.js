// Chorus web page. Speaks the HTTP API and the WebSocket of docs/protocol.md.
//
// Layout of this file:
//   1. constants and the single `state` object
//   2. small DOM and formatting helpers
//   3. the HTTP API client
//   4. state changes (pure-ish: they only touch `state`)
//   5. rendering (reads `state`, writes the DOM; user text only via textContent)
//   6. the WebSocket: connect, frames, reconnect with backoff, heartbeat
//   7. user actions (auth, send, join, leave, create) and event wiring
//   8. boot

// ---------------------------------------------------------------- 1. state

const TOKEN_KEY = "chorus.token";
const APP_NAME = "Chorus";
const MAX_TEXT_CHARS = 4000;          // the server's default max_text_chars
const COUNT_SHOW_FROM = 3500;         // show the character counter from here on
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const PING_EVERY_MS = 25000;          // application-level liveness check
const PONG_TIMEOUT_MS = 10000;
const GROUPING_WINDOW_MS = 5 * 60 * 1000;
const MAX_MESSAGES_PER_GROUP = 2000;  // memory cap; older messages are dropped (history reloads them)
const TOAST_MS = 10000;
const MAX_TOASTS = 4;
const HISTORY_PAGE = 50;              // messages per history request
const LOAD_OLDER_WITHIN_PX = 300;     // load older messages when scrolled this close to the top
const READ_DEBOUNCE_MS = 300;         // `read` markers are sent at most this often per group
const MEMBERS_REFRESH_MS = 15000;     // the members panel refreshes this often while open
const RESUME_TIMEOUT_MS = 20000;      // stop showing "Catching up…" if `resumed` never comes

const state = {
  token: null,
  session: 0,                 // bumps on logout: answers of older requests are ignored
  user: null,                 // {id, username, display_name}
  groups: new Map(),          // id -> {id, name, unread, lastSeq}; the sidebar (from `ready`/`joined`/`left`)
                              //   lastSeq: the newest seq the server's `unread` already counts (undefined: unknown)
  selected: null,             // selected group id
  messages: new Map(),        // group id -> box (see groupBox): the messages held for a group
  highSeq: new Map(),         // group id -> seq up to which every message is held: sent in `resume`
  readSent: new Map(),        // group id -> highest seq sent in a `read` frame
  readTimers: new Map(),      // group id -> debounce timer of the next `read`
  members: { open: false, group: null, list: [], loaded: false, error: "", timer: null, gen: 0 },
  pending: new Map(),         // ref -> {ref, group, text, ts, status: "pending"|"failed", error}
  drafts: new Map(),          // group id -> unsent composer text
  nextRef: 1,
  selectOnJoin: new Set(),    // group ids to select when their `joined` frame arrives
  authMode: "login",          // "login" | "register"
  browse: { open: false, entries: [], loaded: false, error: "", busy: new Set() },
  conn: {
    ws: null,
    gen: 0,                   // bumps on every new socket; stale events are ignored
    ready: false,
    catchingUp: false,        // between our `resume` and the server's `resumed`
    resumeTimer: null,
    state: "offline",         // "connected" | "connecting" | "offline"
    attempt: 0,               // reconnect attempts since the last `ready`
    retryAt: 0,
    retryTimer: null,
    tickTimer: null,
    pingTimer: null,
    pongTimer: null,
  },
};

// ---------------------------------------------------------------- 2. helpers

const $ = (selector) => document.querySelector(selector);

/** Create an element. `props` may hold className, text, dataset, attrs, style vars. */
function h(tag, props = {}, ...children) {
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

function formatTime(ms) {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

function formatDay(ms) {
  const d = new Date(ms);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (sameDay(d, today)) return "Today";
  if (sameDay(d, yesterday)) return "Yesterday";
  const opts = { weekday: "long", month: "long", day: "numeric" };
  if (d.getFullYear() !== today.getFullYear()) opts.year = "numeric";
  return d.toLocaleDateString(undefined, opts);
}

function sameDay(a, b) {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

/** Characters as the server counts them (code points, not UTF-16 units). */
const charCount = (text) => [...text].length;

const displayName = (user) => (user && (user.display_name || user.username)) || "";

function hueOf(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

function storageGet(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}

function storageSet(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch { /* storage unavailable: the session lasts as long as the page */ }
}

// ---------------------------------------------------------------- 3. HTTP API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** One API call. Throws ApiError with the server's `message` (or a readable fallback). */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection and try again.");
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const err = data && data.error;
    let message = (err && err.message) || `Request failed (${res.status}).`;
    const retryAfter = res.headers.get("Retry-After");
    if (res.status === 429 && retryAfter) message += ` Try again in ${retryAfter}s.`;
    throw new ApiError(res.status, (err && err.code) || `http_${res.status}`, message);
  }
  return data;
}

/** An API call that needs the session: a 401 sends the user back to the login form. */
async function authed(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (err) {
    if (err.status === 401 && state.token) sessionExpired();
    throw err;
  }
}

// ---------------------------------------------------------------- 4. state changes

function saveToken(token) {
  state.token = token;
  storageSet(TOKEN_KEY, token);
}

function resetSession() {
  state.session++;
  state.token = null;
  state.user = null;
  state.groups.clear();
  state.selected = null;
  state.messages.clear();
  state.highSeq.clear();
  state.readSent.clear();
  for (const entry of state.readTimers.values()) clearTimeout(entry.timer);
  state.readTimers.clear();
  state.pending.clear();
  state.drafts.clear();
  state.selectOnJoin.clear();
  state.browse = { open: false, entries: [], loaded: false, error: "", busy: new Set() };
  closeMembersState();
}

const seqOrUndefined = (v) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * Replace the group list (from `ready` or /api/me). `unread` and `last_seq` come from the
 * server when it sends them; otherwise the page keeps its own counts.
 */
function setGroups(groups) {
  const old = state.groups;
  state.groups = new Map();
  for (const g of groups) {
    if (!g || typeof g.id !== "string") continue;
    const prev = old.get(g.id);
    const unread = seqOrUndefined(g.unread);
    state.groups.set(g.id, {
      id: g.id,
      name: typeof g.name === "string" ? g.name : g.id,
      unread: unread ?? prev?.unread ?? 0,
      lastSeq: unread !== undefined ? seqOrUndefined(g.last_seq) : prev?.lastSeq,
    });
  }
  for (const id of [...state.messages.keys()]) if (!state.groups.has(id)) forgetGroupMessages(id);
  if (state.selected && !state.groups.has(state.selected)) state.selected = null;
}

function addGroup(g) {
  const existing = state.groups.get(g.id);
  if (existing) existing.name = g.name;
  else state.groups.set(g.id, { id: g.id, name: g.name, unread: 0, lastSeq: undefined });
}

function removeGroup(id) {
  state.groups.delete(id);
  forgetGroupMessages(id);
  state.drafts.delete(id);
  state.selectOnJoin.delete(id);
  state.readSent.delete(id);
  clearTimeout(state.readTimers.get(id)?.timer);
  state.readTimers.delete(id);
  for (const [ref, p] of state.pending) if (p.group === id) state.pending.delete(ref);
  if (state.selected === id) state.selected = null;
}

/** Drop what is held for a group (it is reloaded from history when shown again). */
function forgetGroupMessages(id) {
  state.messages.delete(id);
  state.highSeq.delete(id);
}

/**
 * The messages held for a group:
 *   list     messages sorted by seq; seqs: the Set of their seqs
 *   loaded   the latest history page has been merged in (false: load it when shown)
 *   loading  a request for the latest page is in flight
 *   more     older messages exist on the server (null: unknown until loaded)
 *   older    a request for older messages is in flight
 *   error    the last history request failed (shown in the empty state)
 */
function groupBox(groupId) {
  let box = state.messages.get(groupId);
  if (!box) {
    box = { list: [], seqs: new Set(), loaded: false, loading: false, more: null, older: false, error: "" };
    state.messages.set(groupId, box);
  }
  return box;
}

/** A message (frame or history entry) in the page's shape, or null if malformed. */
function normalizeMessage(raw, groupId) {
  if (!raw || typeof raw !== "object") return null;
  const group = typeof raw.group === "string" ? raw.group : groupId;
  if (typeof group !== "string" || typeof raw.seq !== "number") return null;
  return {
    group,
    seq: raw.seq,
    ts: typeof raw.ts === "number" ? raw.ts : Date.now(),
    from: raw.from || null,
    text: typeof raw.text === "string" ? raw.text : "",
  };
}

/**
 * Track, per group, the seq up to which the page holds every message: that is what
 * `resume` and `read` send. A message past a hole (say the broker died after storing
 * a message but before sending it) makes the page fetch the hole from history, so a
 * later resume never skips it. A group first seen live starts from that message.
 */
function noteSeq(groupId, seq) {
  const box = groupBox(groupId);
  let high = state.highSeq.get(groupId);
  if (high === undefined) high = box.loaded ? 0 : seq - 1;
  if (seq === high + 1) {
    high = seq;
    while (box.seqs.has(high + 1)) high += 1;
  } else if (seq > high + 1) {
    fillGap(groupId, high);
  }
  state.highSeq.set(groupId, high);
}

const gapFills = new Set(); // group ids with a hole being fetched

async function fillGap(groupId, after) {
  if (gapFills.has(groupId)) return;
  gapFills.add(groupId);
  const session = state.session;
  try {
    const query = after > 0 ? `after=${after}&limit=${HISTORY_PAGE}` : `limit=${HISTORY_PAGE}`;
    const data = await authed("GET", messagesPath(groupId, query));
    if (session !== state.session || !state.messages.has(groupId)) return;
    const page = (Array.isArray(data?.messages) ? data.messages : [])
      .map((m) => normalizeMessage(m, groupId)).filter((m) => m && m.group === groupId)
      .sort((a, b) => a.seq - b.seq);
    for (const msg of page) storeMessage(msg, { live: false });
    if (groupId === state.selected) renderMessages();
  } catch (err) {
    // Left the group or offline: the next resume or history load covers it.
  } finally {
    gapFills.delete(groupId);
  }
}

/**
 * Insert a sequenced message; false if (group, seq) is already held. Keeps the list sorted.
 * Live messages past the memory cap push the oldest out (they stay loadable from history).
 */
function storeMessage(msg, { live = true } = {}) {
  const box = groupBox(msg.group);
  noteSeq(msg.group, msg.seq);
  if (box.seqs.has(msg.seq)) return false;
  const list = box.list;
  if (!live && list.length >= MAX_MESSAGES_PER_GROUP && msg.seq < list[0].seq) return false;
  box.seqs.add(msg.seq);
  let i = list.length;
  while (i > 0 && list[i - 1].seq > msg.seq) i--;
  list.splice(i, 0, msg);
  if (live && list.length > MAX_MESSAGES_PER_GROUP) {
    const dropped = list.splice(0, list.length - MAX_MESSAGES_PER_GROUP);
    for (const m of dropped) box.seqs.delete(m.seq);
    box.more = true;
  }
  return true;
}

function hasMessage(groupId, seq) {
  const box = state.messages.get(groupId);
  return !!box && (box.seqs.has(seq) || (box.list.length > 0 && seq < box.list[0].seq));
}

const oldestSeq = (box) => (box.list.length ? box.list[0].seq : null);

const isOwn = (msg) => !!state.user && msg.from && msg.from.id === state.user.id;

function pendingFor(groupId) {
  return [...state.pending.values()].filter((p) => p.group === groupId);
}

/** Pending sends cannot be acked on a new connection: mark them failed. */
function failPendingSends(reason) {
  let changed = false;
  for (const p of state.pending.values()) {
    if (p.status === "pending") {
      p.status = "failed";
      p.error = reason;
      p.lost = true; // it may have been posted all the same: a replayed copy removes it
      changed = true;
    }
  }
  return changed;
}

const totalUnread = () => [...state.groups.values()].reduce((n, g) => n + g.unread, 0);

const sortedGroups = () =>
  [...state.groups.values()].sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }));

// ---------------------------------------------------------------- 5. rendering

const ui = {
  forceScroll: false,      // next message render scrolls to the bottom regardless
  renderQueued: false,
  renderedGroup: null,     // the group the message list shows (scroll anchoring within one group)
};

function showScreen(screen) {
  $("#splash").hidden = screen !== "splash";
  $("#auth").hidden = screen !== "auth";
  $("#app").hidden = screen !== "app";
}

function renderAuth() {
  const register = state.authMode === "register";
  $("#auth-title").textContent = register ? "Create your account" : "Log in";
  $("#auth-submit").textContent = register ? "Create account" : "Log in";
  $("#auth-display-name-field").hidden = !register;
  $("#auth-hint").hidden = !register;
  $("#auth-toggle-prompt").textContent = register ? "Already have an account?" : "New to Chorus?";
  $("#auth-toggle").textContent = register ? "Log in" : "Create an account";
  $("#auth-password").setAttribute("autocomplete", register ? "new-password" : "current-password");
}

function setAuthError(message) {
  $("#auth-error").textContent = message || "";
}

function setAuthBusy(busy) {
  $("#auth-submit").disabled = busy;
  $("#auth-toggle").disabled = busy;
}

function renderMe() {
  const name = displayName(state.user);
  $("#me").textContent = name;
  $("#me-username").textContent = state.user ? `@${state.user.username}` : "";
  $("#me-avatar").textContent = name ? [...name][0] : "";
}

function renderConn() {
  const el = $("#conn-status");
  const { conn } = state;
  el.dataset.state = conn.state;
  let text = "Offline";
  if (conn.state === "connected") text = "Connected";
  else if (conn.state === "connecting") {
    text = conn.retryTimer
      ? `Reconnecting in ${Math.max(1, Math.ceil((conn.retryAt - Date.now()) / 1000))}s…`
      : "Connecting…";
  } else if (typeof navigator !== "undefined" && navigator.onLine === false) {
    text = "Offline — waiting for network";
  }
  $("#conn-text").textContent = text;
  renderCatchingUp();
}

function renderCatchingUp() {
  const on = state.conn.state === "connected" && state.conn.catchingUp;
  $("#catching-up").hidden = !on;
  $("#conn-status").classList.toggle("catching-up", on);
}

function renderSidebar() {
  const ul = $("#group-list");
  const existing = new Map([...ul.children].map((li) => [li.dataset.groupId, li]));
  sortedGroups().forEach((group, i) => {
    let li = existing.get(group.id);
    existing.delete(group.id);
    if (!li) li = createGroupItem(group.id);
    updateGroupItem(li, group);
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] ?? null);
  });
  for (const li of existing.values()) li.remove();
  $("#group-list-empty").hidden = state.groups.size > 0;
}

function createGroupItem(id) {
  const li = h("li", { className: "group", dataset: { groupId: id } });
  const button = h("button", { className: "group-button", attrs: { type: "button" } },
    h("span", { className: "group-name" }),
    h("span", { className: "badge" }));
  li.append(button);
  return li;
}

function updateGroupItem(li, group) {
  const selected = group.id === state.selected;
  li.classList.toggle("selected", selected);
  li.classList.toggle("unread", group.unread > 0);
  const button = li.querySelector(".group-button");
  if (selected) button.setAttribute("aria-current", "page");
  else button.removeAttribute("aria-current");
  li.querySelector(".group-name").textContent = group.name;
  const badge = li.querySelector(".badge");
  badge.textContent = String(group.unread);
  badge.hidden = group.unread === 0;
  badge.setAttribute("aria-label", `${group.unread} unread`);
}

function renderHeader() {
  const group = state.selected && state.groups.get(state.selected);
  const title = $("#group-title");
  title.textContent = group ? group.name : "No group selected";
  title.classList.toggle("placeholder", !group);
  $("#leave-group").hidden = !group;
  $("#members-toggle").hidden = !group;
}

function renderTitle() {
  const n = totalUnread();
  document.title = n > 0 ? `(${n}) ${APP_NAME}` : APP_NAME;
}

function canSend() {
  return !!state.selected && state.groups.has(state.selected) && state.conn.state === "connected";
}

function renderComposer() {
  const textarea = $("#composer-text");
  const group = state.selected && state.groups.get(state.selected);
  const enabled = canSend();
  textarea.disabled = !enabled;
  if (!group) textarea.placeholder = "Select a group to start chatting";
  else if (!enabled) textarea.placeholder = "Waiting for the connection…";
  else textarea.placeholder = `Message #${group.name}`;

  const count = charCount(textarea.value);
  const over = count > MAX_TEXT_CHARS;
  $("#composer-send").disabled = !enabled || over;
  const counter = $("#composer-count");
  counter.hidden = count < COUNT_SHOW_FROM;
  counter.classList.toggle("over", over);
  counter.textContent = over
    ? `${count - MAX_TEXT_CHARS} characters over the ${MAX_TEXT_CHARS} limit`
    : `${count} / ${MAX_TEXT_CHARS}`;
}

function autosizeComposer() {
  const textarea = $("#composer-text");
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
}

/** Batch message renders: a burst of frames costs one render. */
function scheduleMessagesRender() {
  if (ui.renderQueued) return;
  ui.renderQueued = true;
  const run = () => {
    if (!ui.renderQueued) return;
    ui.renderQueued = false;
    renderMessages();
  };
  requestAnimationFrame(run);
  setTimeout(run, 50); // rAF does not run in background tabs
}

function isAtBottom(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
}

/** The first message at least partly visible, and its distance from the scroller's top. */
function scrollAnchor(scroller) {
  const top = scroller.getBoundingClientRect().top;
  for (const li of $("#messages").children) {
    if (li.dataset.seq === undefined) continue;
    const rect = li.getBoundingClientRect();
    if (rect.bottom > top) return { seq: li.dataset.seq, offset: rect.top - top };
  }
  return null;
}

function renderMessages() {
  ui.renderQueued = false;
  const scroller = $("#messages-scroller");
  const group = state.selected && state.groups.get(state.selected);
  // The same group as the last render: keep what the reader looks at in place (older
  // messages may be added above it, newer ones below). Another group: start at the bottom.
  const sameGroup = ui.renderedGroup === (group ? group.id : null);
  const stick = ui.forceScroll || !sameGroup || isAtBottom(scroller);
  const anchor = stick ? null : scrollAnchor(scroller);
  const keepTop = scroller.scrollTop;
  ui.forceScroll = false;
  ui.renderedGroup = group ? group.id : null;

  const box = group ? state.messages.get(group.id) : null;
  const items = group ? [...(box?.list ?? []), ...pendingFor(group.id)] : [];

  const fragment = document.createDocumentFragment();
  let prev = null;
  for (const msg of items) {
    if (!prev || !sameDay(prev.ts, msg.ts)) {
      fragment.append(h("li", { className: "day-divider", text: formatDay(msg.ts), attrs: { role: "separator" } }));
      prev = null;
    }
    fragment.append(messageElement(msg, continuesFrom(prev, msg)));
    prev = msg;
  }
  $("#messages").replaceChildren(fragment);
  renderHistoryEdge(group, box);
  renderEmptyState(group, items.length, box);

  if (stick) {
    scroller.scrollTop = scroller.scrollHeight;
  } else {
    const el = anchor && $("#messages").querySelector(`li[data-seq="${anchor.seq}"]`);
    if (el) {
      const top = scroller.getBoundingClientRect().top;
      scroller.scrollTop += el.getBoundingClientRect().top - top - anchor.offset;
    } else {
      scroller.scrollTop = keepTop;
    }
  }
  if (group) maybeLoadOlder();
}

/** The top of the message list: a loader while older messages load, or where history begins. */
function renderHistoryEdge(group, box) {
  $("#history-loader").hidden = !(group && box && box.older);
  const start = $("#history-start");
  const atStart = !!group && !!box && box.loaded && box.more === false && box.list.length > 0;
  start.hidden = !atStart;
  start.textContent = atStart ? `This is the beginning of #${group.name}.` : "";
}

function continuesFrom(prev, msg) {
  return !!prev && !!prev.from && !!msg.from && prev.from.id === msg.from.id
    && msg.ts - prev.ts < GROUPING_WINDOW_MS && prev.status !== "failed";
}

function renderEmptyState(group, count, box) {
  const empty = $("#empty-state");
  empty.hidden = !!group && count > 0;
  const [title, body] = empty.children;
  if (group) {
    title.textContent = `#${group.name}`;
    if (box && box.error) body.textContent = box.error;
    else if (!box || !box.loaded) body.textContent = "Loading messages…";
    else body.textContent = "No messages here yet. Say hello!";
  } else {
    title.textContent = `Welcome to ${APP_NAME}`;
    body.textContent = state.groups.size
      ? "Pick a group on the left to read and send messages."
      : "You are not in any group yet. Browse the directory to join one, or create your own.";
  }
}

/** One message (sequenced, pending or failed). All user text goes through textContent. */
function messageElement(msg, continued) {
  const li = h("li", { className: "message" });
  if (msg.seq !== undefined) li.dataset.seq = String(msg.seq);
  if (msg.ref) li.dataset.ref = msg.ref;
  li.classList.toggle("own", isOwn(msg));
  li.classList.toggle("continued", continued);
  li.classList.toggle("pending", msg.status === "pending");
  li.classList.toggle("failed", msg.status === "failed");

  const name = displayName(msg.from) || "unknown";
  const avatar = h("span", {
    className: "message-avatar",
    text: [...name][0] ?? "?",
    attrs: { "aria-hidden": "true" },
    vars: { "--hue": String(hueOf(msg.from?.id ?? name)) },
  });
  const time = h("time", {
    className: "message-time",
    text: formatTime(msg.ts),
    attrs: { datetime: new Date(msg.ts).toISOString(), title: new Date(msg.ts).toLocaleString() },
  });
  const meta = h("div", { className: "message-meta" },
    h("span", { className: "message-from", text: name, attrs: msg.from?.username ? { title: `@${msg.from.username}` } : {} }),
    time);
  li.append(avatar, meta, h("div", { className: "message-text", text: msg.text }));

  if (msg.status === "failed") {
    li.append(h("div", { className: "message-error", attrs: { role: "alert" } },
      h("span", { text: `Not sent: ${msg.error || "unknown error"}` }),
      h("button", { className: "btn-link", text: "Retry", dataset: { action: "retry", ref: msg.ref }, attrs: { type: "button" } }),
      h("button", { className: "btn-link", text: "Discard", dataset: { action: "discard", ref: msg.ref }, attrs: { type: "button" } })));
  }
  return li;
}

function renderDirectory() {
  const { browse } = state;
  const status = $("#directory-status");
  if (browse.error) status.textContent = browse.error;
  else if (!browse.loaded) status.textContent = "Loading…";
  else if (!browse.entries.length) status.textContent = "No groups yet. Create the first one!";
  else status.textContent = "";

  $("#directory").replaceChildren(...browse.entries.map(directoryEntry));
}

function directoryEntry(entry) {
  const count = Number(entry.member_count) || 0;
  const li = h("li", { className: "directory-entry", dataset: { groupId: entry.id } },
    h("div", { className: "directory-info" },
      h("span", { className: "directory-name", text: entry.name }),
      h("span", { className: "directory-count", text: `${count} ${count === 1 ? "member" : "members"}` })));
  if (entry.joined) {
    li.append(h("span", { className: "joined", text: "Joined" }));
  } else {
    const busy = state.browse.busy.has(entry.id);
    const button = h("button", {
      className: "btn btn-primary btn-small join",
      text: busy ? "Joining…" : "Join",
      dataset: { groupId: entry.id },
      attrs: { type: "button", "aria-label": `Join ${entry.name}` },
    });
    button.disabled = busy;
    li.append(button);
  }
  return li;
}

function renderBrowse() {
  $("#browse-panel").hidden = !state.browse.open;
  $("#app").classList.toggle("browsing", state.browse.open);
  $("#browse-groups").setAttribute("aria-expanded", String(state.browse.open));
  if (state.browse.open) renderDirectory();
}

function renderApp() {
  renderMe();
  renderConn();
  renderSidebar();
  renderHeader();
  renderComposer();
  renderMessages();
  renderTitle();
  renderBrowse();
  renderMembers();
}

function toast(message) {
  const box = $("#toasts");
  while (box.children.length >= MAX_TOASTS) box.firstElementChild.remove();
  const close = h("button", { className: "toast-close", text: "✕", attrs: { type: "button", "aria-label": "Dismiss" } });
  const el = h("div", { className: "toast", attrs: { role: "status" } },
    h("span", { className: "toast-text", text: message }), close);
  const timer = setTimeout(() => el.remove(), TOAST_MS);
  close.addEventListener("click", () => { clearTimeout(timer); el.remove(); });
  box.append(el);
}

// ---------------------------------------------------------------- 6. WebSocket

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}

function setConnState(next) {
  state.conn.state = next;
  renderConn();
  renderComposer();
}

function connect() {
  const { conn } = state;
  clearRetry();
  stopHeartbeat();
  const gen = ++conn.gen;
  conn.ready = false;
  setConnState("connecting");

  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch {
    scheduleReconnect();
    return;
  }
  conn.ws = ws;
  ws.addEventListener("open", () => {
    if (gen === conn.gen) sendFrame({ op: "auth", token: state.token });
  });
  ws.addEventListener("message", (event) => {
    if (gen === conn.gen) handleFrame(event.data);
  });
  ws.addEventListener("close", (event) => {
    if (gen === conn.gen) socketClosed(event.code, event.reason);
  });
  // "error" is always followed by "close": nothing to do there.
}

/** Close the socket on purpose (logout, dead connection) and ignore its later events. */
function dropSocket(code = 1000, reason = "") {
  const { conn } = state;
  conn.gen++;
  stopHeartbeat();
  endCatchingUp();
  if (conn.ws) {
    try { conn.ws.close(code, reason); } catch { /* already closing */ }
  }
  conn.ws = null;
  conn.ready = false;
}

function disconnect() {
  dropSocket(1000, "logout");
  clearRetry();
  state.conn.attempt = 0;
  setConnState("offline");
}

function sendFrame(frame) {
  const ws = state.conn.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

function socketClosed(code, reason) {
  const { conn } = state;
  conn.ws = null;
  conn.ready = false;
  stopHeartbeat();
  endCatchingUp();
  if (failPendingSends("the connection was lost before the server confirmed it")) scheduleMessagesRender();
  if (code === 4001) {
    sessionExpired(reason);
    return;
  }
  scheduleReconnect();
}

function backoffDelay(attempt) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  const jittered = base * (0.8 + Math.random() * 0.4); // ±20 %
  return Math.min(BACKOFF_MAX_MS, Math.round(jittered));
}

function scheduleReconnect() {
  const { conn } = state;
  clearRetry();
  if (!state.token) return;
  if (navigator.onLine === false) { // wait for the "online" event
    setConnState("offline");
    return;
  }
  const delay = backoffDelay(conn.attempt);
  conn.attempt++;
  conn.retryAt = Date.now() + delay;
  conn.retryTimer = setTimeout(connect, delay);
  conn.tickTimer = setInterval(renderConn, 250);
  setConnState("connecting");
}

function clearRetry() {
  const { conn } = state;
  clearTimeout(conn.retryTimer);
  clearInterval(conn.tickTimer);
  conn.retryTimer = null;
  conn.tickTimer = null;
}

function startHeartbeat() {
  stopHeartbeat();
  state.conn.pingTimer = setInterval(() => {
    checkAlive();
  }, PING_EVERY_MS);
}

function stopHeartbeat() {
  clearInterval(state.conn.pingTimer);
  clearTimeout(state.conn.pongTimer);
  state.conn.pingTimer = null;
  state.conn.pongTimer = null;
}

/** Ping now; without an answer (any frame) within PONG_TIMEOUT_MS the socket counts as dead. */
function checkAlive() {
  if (sendFrame({ op: "ping" }) && !state.conn.pongTimer) {
    state.conn.pongTimer = setTimeout(connectionDead, PONG_TIMEOUT_MS);
  }
}

/** Any frame proves the connection alive. */
function sawLife() {
  clearTimeout(state.conn.pongTimer);
  state.conn.pongTimer = null;
}

function connectionDead() {
  dropSocket(4000, "no pong");
  socketClosed(1006, "no pong");
}

function handleFrame(data) {
  let frame;
  try { frame = JSON.parse(data); } catch { return; }
  if (!frame || typeof frame !== "object") return;
  sawLife();
  const handler = FRAME_HANDLERS[frame.op];
  if (handler) handler(frame);
}

const FRAME_HANDLERS = {
  ready: onReady,
  message: onMessageFrame,
  ack: onAck,
  error: onErrorFrame,
  joined: onJoined,
  left: onLeft,
  resumed: onResumed,
  reset: onReset,
  read: onReadFrame,
  pong: () => {},
};

function onReady(frame) {
  const { conn } = state;
  conn.ready = true;
  conn.attempt = 0;
  if (frame.user) state.user = frame.user;
  setGroups(Array.isArray(frame.groups) ? frame.groups : []);
  for (const id of state.selectOnJoin) {
    if (state.groups.has(id)) { state.selectOnJoin.delete(id); state.selected = id; }
  }
  startHeartbeat();
  sendResume();
  setConnState("connected");
  if (state.selected) {
    if (isViewing(state.selected)) {
      state.groups.get(state.selected).unread = 0;
      scheduleRead(state.selected, { again: true });
    }
    const box = state.messages.get(state.selected);
    if (!box || !box.loaded) loadLatest(state.selected);
  }
  renderApp();
}

/**
 * Ask for what was missed in every group the page holds messages for: those with messages
 * seen, and those whose (maybe empty) history was loaded, which are up to date as of then.
 */
function sendResume() {
  const since = {};
  for (const [id, box] of state.messages) {
    const seq = state.highSeq.get(id) ?? 0;
    if (state.groups.has(id) && (seq > 0 || box.loaded)) since[id] = seq;
  }
  if (!Object.keys(since).length) return;
  if (!sendFrame({ op: "resume", since })) return;
  state.conn.catchingUp = true;
  clearTimeout(state.conn.resumeTimer);
  state.conn.resumeTimer = setTimeout(endCatchingUp, RESUME_TIMEOUT_MS);
}

function endCatchingUp() {
  const { conn } = state;
  clearTimeout(conn.resumeTimer);
  conn.resumeTimer = null;
  if (!conn.catchingUp) return;
  conn.catchingUp = false;
  renderCatchingUp();
}

function onResumed() {
  endCatchingUp();
}

/** Too much was missed in a group: drop what is held and reload it from history. */
function onReset(frame) {
  const id = frame.group;
  if (typeof id !== "string" || !state.groups.has(id)) return;
  forgetGroupMessages(id);
  if (id === state.selected) {
    ui.forceScroll = true;
    loadLatest(id);
    renderMessages();
  }
  // Otherwise nothing is held any more: it loads when the group is opened.
}

/** A read marker was stored (by this page or, if the server tells, another of the person's). */
function onReadFrame(frame) {
  const group = state.groups.get(frame.group);
  if (!group || typeof frame.seq !== "number") return;
  if (frame.seq > (state.readSent.get(group.id) ?? 0)) state.readSent.set(group.id, frame.seq);
  const unread = seqOrUndefined(frame.unread);
  if (unread === undefined) return;
  if (isViewing(group.id) && unread > 0) {
    // Still unread here, yet on screen: mark what is shown (if newer than the answer's seq).
    scheduleRead(group.id);
    return;
  }
  group.unread = unread;
  // The server's count now covers everything up to what we have seen.
  group.lastSeq = Math.max(group.lastSeq ?? 0, state.highSeq.get(group.id) ?? 0);
  renderSidebar();
  renderTitle();
}

function onMessageFrame(frame) {
  const msg = normalizeMessage(frame);
  if (!msg || !state.groups.has(msg.group)) return;
  // An unsent copy from a lost connection that the server did receive: keep only this one.
  if (isOwn(msg)) {
    for (const [ref, p] of state.pending) {
      if (p.lost && p.group === msg.group && p.text === msg.text) { state.pending.delete(ref); break; }
    }
  }
  const group = state.groups.get(msg.group);
  if (!storeMessage(msg)) return;
  const counted = group.lastSeq !== undefined && msg.seq <= group.lastSeq; // already in `unread`
  if (group.lastSeq !== undefined) group.lastSeq = Math.max(group.lastSeq, msg.seq);
  if (msg.group === state.selected) scheduleMessagesRender();
  if (isViewing(msg.group)) {
    scheduleRead(msg.group);
    return;
  }
  if (!isOwn(msg) && !counted) {
    group.unread++;
    renderSidebar();
    renderTitle();
  }
}

function onAck(frame) {
  const pending = state.pending.get(frame.ref);
  if (!pending || typeof frame.seq !== "number") return;
  state.pending.delete(frame.ref);
  const group = frame.group || pending.group;
  if (state.groups.has(group) && !hasMessage(group, frame.seq)) {
    // The `message` frame has not arrived yet: hold the confirmed message now; it dedupes later.
    storeMessage({
      group,
      seq: frame.seq,
      ts: typeof frame.ts === "number" ? frame.ts : pending.ts,
      from: state.user,
      text: pending.text,
    });
  }
  if (group === state.selected) scheduleMessagesRender();
  if (isViewing(group)) scheduleRead(group);
}

function onErrorFrame(frame) {
  const pending = frame.ref !== undefined && state.pending.get(frame.ref);
  if (pending) {
    pending.status = "failed";
    pending.error = frame.message || frame.code || "error";
    if (pending.group === state.selected) scheduleMessagesRender();
    return;
  }
  if (state.conn.catchingUp && frame.ref === undefined && (frame.code === "unknown_op" || frame.code === "invalid_argument")) {
    resumeRefused();
    return;
  }
  if (frame.code === "unknown_op" && frame.ref === undefined) {
    // A frame this server does not know (an older gateway): nothing the person can act on.
    console.warn("chorus: the server refused a frame:", frame.message);
    return;
  }
  toast(frame.message || `Error: ${frame.code || "unknown"}`);
}

function onJoined(frame) {
  const g = frame.group;
  if (!g || typeof g.id !== "string") return;
  addGroup(g);
  setDirectoryJoined(g.id, true);
  if (state.selectOnJoin.delete(g.id)) {
    selectGroup(g.id);
  } else {
    renderSidebar();
    if (!state.selected) renderMessages(); // the welcome text depends on having groups
  }
  refreshDirectory();
}

function onLeft(frame) {
  const g = frame.group;
  if (!g || typeof g.id !== "string") return;
  const wasSelected = state.selected === g.id;
  removeGroup(g.id);
  setDirectoryJoined(g.id, false);
  renderSidebar();
  renderTitle();
  if (wasSelected) {
    if (state.members.open) { closeMembersState(); renderMembers(); }
    renderHeader();
    renderComposer();
    renderMessages();
  } else if (!state.selected) {
    renderMessages();
  }
  refreshDirectory();
}

// ---------------------------------------------------------------- 7. actions

function enterApp(user, groups) {
  state.user = user;
  if (groups) setGroups(groups);
  showScreen("app");
  renderApp();
  connect();
}

function showAuth(message = "") {
  showScreen("auth");
  renderAuth();
  setAuthError(message);
  setAuthBusy(false);
  document.title = APP_NAME;
  $("#auth-username").focus();
}

function sessionExpired(reason) {
  leaveApp();
  const why = reason === "auth timeout" ? "The connection timed out." : "Your session has expired.";
  showAuth(`${why} Please log in again.`);
}

/** Tear down the session state and socket (no network call). */
function leaveApp() {
  disconnect();
  storageSet(TOKEN_KEY, null);
  resetSession();
  $("#composer-text").value = "";
  $("#messages").replaceChildren();
  $("#group-list").replaceChildren();
  $("#toasts").replaceChildren();
  ui.renderedGroup = null;
  renderBrowse();
  renderMembers();
}

function logout() {
  const token = state.token;
  leaveApp();
  showAuth();
  if (token) {
    // Revoke the token; the page is already logged out whatever the answer.
    fetch("/api/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
}

async function submitAuth(event) {
  event.preventDefault();
  const register = state.authMode === "register";
  const username = $("#auth-username").value.trim();
  const password = $("#auth-password").value;
  const displayNameValue = $("#auth-display-name").value.trim();
  setAuthError("");
  setAuthBusy(true);
  try {
    if (register) {
      const body = { username, password };
      if (displayNameValue) body.display_name = displayNameValue;
      await api("POST", "/api/register", body);
    }
    let login;
    try {
      login = await api("POST", "/api/login", { username, password });
    } catch (err) {
      if (register) { // the account exists now: let the user simply log in
        state.authMode = "login";
        renderAuth();
        throw new ApiError(err.status, err.code, `Account created, but logging in failed: ${err.message}`);
      }
      throw err;
    }
    saveToken(login.token);
    $("#auth-password").value = "";
    setAuthBusy(false);
    enterApp(login.user, null);
  } catch (err) {
    setAuthBusy(false);
    setAuthError(err.message);
  }
}

function toggleAuthMode() {
  state.authMode = state.authMode === "login" ? "register" : "login";
  setAuthError("");
  renderAuth();
  $("#auth-username").focus();
}

function selectGroup(id, { focus = false } = {}) {
  const group = state.groups.get(id);
  if (!group) return;
  const textarea = $("#composer-text");
  const changed = state.selected !== id;
  if (state.selected && changed) {
    state.drafts.set(state.selected, textarea.value);
    if (pageVisible()) flushRead(state.selected);
  }
  if (changed) textarea.value = state.drafts.get(id) ?? "";
  state.selected = id;
  if (isViewing(id)) group.unread = 0;
  ui.forceScroll = true;
  const box = state.messages.get(id);
  if (!box || !box.loaded) loadLatest(id);
  scheduleRead(id, { again: true });
  renderSidebar();
  renderHeader();
  renderComposer();
  renderMessages();
  renderTitle();
  autosizeComposer();
  if (changed && state.members.open) loadMembers();
  if (focus && !textarea.disabled) textarea.focus();
}

// History

const messagesPath = (groupId, query) => `/api/groups/${encodeURIComponent(groupId)}/messages?${query}`;

function historyFailed(box, err, what) {
  if (err.status === 401) return;
  if (err.status === 403) box.error = "You are no longer a member of this group.";
  else box.error = `Could not load ${what}: ${err.message}`;
}

/** Merge the latest page of a group's history with what is held (live messages included). */
async function loadLatest(groupId) {
  const box = groupBox(groupId);
  if (box.loading) return;
  box.loading = true;
  box.error = "";
  const session = state.session;
  let data;
  try {
    data = await authed("GET", messagesPath(groupId, `limit=${HISTORY_PAGE}`));
  } catch (err) {
    if (session !== state.session || state.messages.get(groupId) !== box) return;
    box.loading = false;
    historyFailed(box, err, "messages");
    box.loaded = box.list.length > 0; // keep showing the live ones; a reconnect tries again
    if (!box.loaded && groupId === state.selected) renderMessages();
    return;
  }
  // Dropped meanwhile (reset, left, logout): that request's answer is stale.
  if (session !== state.session || state.messages.get(groupId) !== box) return;
  box.loading = false;
  const page = (Array.isArray(data?.messages) ? data.messages : [])
    .map((m) => normalizeMessage(m, groupId)).filter((m) => m && m.group === groupId);
  const firstLoad = !box.loaded;
  for (const msg of page) storeMessage(msg, { live: false });
  const pageOldest = page.length ? Math.min(...page.map((m) => m.seq)) : null;
  const held = oldestSeq(box);
  box.more = held !== null && held > 1 && (!!data?.more || (pageOldest !== null && held < pageOldest));
  box.loaded = true;
  if (groupId !== state.selected) return;
  if (firstLoad && isAtBottom($("#messages-scroller"))) ui.forceScroll = true;
  renderMessages();
  if (isViewing(groupId)) scheduleRead(groupId);
}

/** Load the page before the oldest held message; the reader's view stays where it is. */
async function loadOlder(groupId) {
  const box = state.messages.get(groupId);
  const before = box && oldestSeq(box);
  if (!box || !box.loaded || box.older || box.more === false || before === null) return;
  box.older = true;
  if (groupId === state.selected) renderHistoryEdge(state.groups.get(groupId), box);
  const session = state.session;
  let data = null;
  let failure = null;
  try {
    data = await authed("GET", messagesPath(groupId, `before=${before}&limit=${HISTORY_PAGE}`));
  } catch (err) {
    failure = err;
  }
  if (session !== state.session || state.messages.get(groupId) !== box) return;
  if (failure) {
    if (failure.status !== 401) toast(`Could not load older messages: ${failure.message}`);
    // Try again only when the reader scrolls again, not in a loop.
    setTimeout(() => { box.older = false; if (groupId === state.selected) renderHistoryEdge(state.groups.get(groupId), box); }, 3000);
    return;
  }
  box.older = false;
  const page = (Array.isArray(data?.messages) ? data.messages : [])
    .map((m) => normalizeMessage(m, groupId)).filter((m) => m && m.group === groupId && m.seq < before);
  for (const msg of page) storeMessage(msg, { live: false });
  const held = oldestSeq(box);
  box.more = !!data?.more && page.length > 0 && held > 1;
  if (groupId === state.selected) renderMessages();
}

/** Near the top (or nothing to scroll yet) with older messages on the server: load them. */
function maybeLoadOlder() {
  const id = state.selected;
  const box = id && state.messages.get(id);
  if (!box || !box.loaded || box.older || box.more !== true) return;
  const scroller = $("#messages-scroller");
  const scrollable = scroller.scrollHeight > scroller.clientHeight + 1;
  if (!scrollable || scroller.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder(id);
}

/** The server cannot replay: whatever is held may have gaps. Reload from history instead. */
function resumeRefused() {
  endCatchingUp();
  for (const id of [...state.messages.keys()]) forgetGroupMessages(id);
  if (state.selected) {
    loadLatest(state.selected);
    renderMessages();
  }
}

// Read markers

const pageVisible = () => typeof document === "undefined" || document.visibilityState !== "hidden";

/** The person is looking at this group: it is selected and the tab is visible. */
const isViewing = (groupId) => !!groupId && groupId === state.selected && pageVisible();

/**
 * Tell the server what has been shown in a group, debounced. Never a lower seq than already
 * sent; `again` allows resending the same one (after a reconnect it may have been lost).
 */
function scheduleRead(groupId, { again = false } = {}) {
  if (state.readTimers.has(groupId)) {
    if (again) state.readTimers.get(groupId).again = true;
    return;
  }
  const entry = { again, timer: null };
  entry.timer = setTimeout(() => {
    state.readTimers.delete(groupId);
    if (isViewing(groupId)) sendRead(groupId, entry.again);
  }, READ_DEBOUNCE_MS);
  state.readTimers.set(groupId, entry);
}

/** The person stops looking at a group (another group, tab hidden, page closing): send now. */
function flushRead(groupId) {
  const entry = groupId && state.readTimers.get(groupId);
  if (!entry) return;
  clearTimeout(entry.timer);
  state.readTimers.delete(groupId);
  sendRead(groupId, entry.again);
}

function sendRead(groupId, again) {
  const seq = state.highSeq.get(groupId) ?? 0;
  const sent = state.readSent.get(groupId) ?? 0;
  if (seq <= 0 || seq < sent || (seq === sent && !again)) return;
  if (sendFrame({ op: "read", group: groupId, seq })) state.readSent.set(groupId, seq);
}

function onVisibilityChange() {
  if (!state.selected) return;
  if (!pageVisible()) {
    flushRead(state.selected);
    return;
  }
  const group = state.groups.get(state.selected);
  if (group && group.unread > 0) {
    group.unread = 0;
    renderSidebar();
    renderTitle();
  }
  scheduleRead(state.selected);
}

// Members panel

function closeMembersState() {
  const m = state.members;
  clearInterval(m.timer);
  m.gen++;
  Object.assign(m, { open: false, group: null, list: [], loaded: false, error: "", timer: null });
}

function toggleMembers() {
  if (state.members.open) {
    closeMembersState();
    renderMembers();
    return;
  }
  if (!state.selected) return;
  state.members.open = true;
  state.members.timer = setInterval(loadMembers, MEMBERS_REFRESH_MS);
  loadMembers();
}

async function loadMembers() {
  const m = state.members;
  const groupId = state.selected;
  if (!m.open) return;
  if (!groupId) { closeMembersState(); renderMembers(); return; }
  if (m.group !== groupId) Object.assign(m, { group: groupId, list: [], loaded: false, error: "" });
  renderMembers();
  const gen = ++m.gen;
  try {
    const data = await authed("GET", `/api/groups/${encodeURIComponent(groupId)}/members`);
    if (gen !== m.gen) return;
    m.list = Array.isArray(data?.members) ? data.members.filter((p) => p && typeof p.id === "string") : [];
    m.error = "";
  } catch (err) {
    if (gen !== m.gen) return;
    m.error = err.status === 401 ? "" : `Could not load members: ${err.message}`;
  }
  m.loaded = true;
  renderMembers();
}

function renderMembers() {
  const m = state.members;
  $("#members-panel").hidden = !m.open;
  const toggle = $("#members-toggle");
  toggle.setAttribute("aria-expanded", String(m.open));
  toggle.classList.toggle("active", m.open);
  if (!m.open) return;
  const list = [...m.list].sort((a, b) =>
    (b.online === true) - (a.online === true)
    || displayName(a).localeCompare(displayName(b), undefined, { sensitivity: "base" }));
  const online = list.filter((p) => p.online === true).length;
  $("#members-count").textContent = m.loaded && !m.error ? `${online} online · ${list.length} total` : "";
  const status = $("#members-status");
  if (m.error) status.textContent = m.error;
  else if (!m.loaded) status.textContent = "Loading…";
  else if (!list.length) status.textContent = "No members.";
  else status.textContent = "";
  $("#members-list").replaceChildren(...list.map(memberElement));
}

function memberElement(person) {
  const on = person.online === true;
  const name = displayName(person) || person.id;
  const li = h("li", { className: "member", dataset: { userId: person.id } },
    h("span", { className: "member-dot", attrs: { "aria-hidden": "true" } }),
    h("span", { className: "member-name", text: name }),
    h("span", { className: "member-username", text: person.username ? `@${person.username}` : "" }),
    h("span", { className: "visually-hidden", text: on ? "online" : "offline" }));
  li.classList.toggle("online", on);
  li.classList.toggle("me", !!state.user && person.id === state.user.id);
  li.title = on ? `${name} is online` : `${name} is offline`;
  return li;
}

/** Strip leading blank lines and trailing whitespace; keep indentation of the first line. */
const cleanText = (text) => text.replace(/^(\s*\n)+/, "").replace(/\s+$/, "");

function sendComposer() {
  const textarea = $("#composer-text");
  const text = cleanText(textarea.value);
  if (!canSend() || !text || charCount(text) > MAX_TEXT_CHARS) return;
  if (!postText(state.selected, text)) return;
  textarea.value = "";
  state.drafts.delete(state.selected);
  autosizeComposer();
  renderComposer();
}

/** Send a message with a fresh ref and show it greyed until its ack arrives. */
function postText(groupId, text) {
  const ref = `r${state.nextRef++}`;
  if (!sendFrame({ op: "send", group: groupId, text, ref })) {
    toast("Not connected: the message was not sent.");
    return false;
  }
  state.pending.set(ref, { ref, group: groupId, text, ts: Date.now(), from: state.user, status: "pending", error: null });
  ui.forceScroll = true;
  scheduleMessagesRender();
  return true;
}

function retryPending(ref) {
  const p = state.pending.get(ref);
  if (!p || !canSend() || p.group !== state.selected) {
    if (p) toast("Cannot resend right now.");
    return;
  }
  state.pending.delete(ref);
  if (!postText(p.group, p.text)) state.pending.set(ref, p);
  scheduleMessagesRender();
}

function discardPending(ref) {
  state.pending.delete(ref);
  scheduleMessagesRender();
}

async function leaveSelectedGroup() {
  const id = state.selected;
  if (!id) return;
  const button = $("#leave-group");
  button.disabled = true;
  try {
    await authed("POST", `/api/groups/${encodeURIComponent(id)}/leave`);
    // The sidebar changes when the `left` frame arrives.
  } catch (err) {
    if (err.status !== 401) toast(`Could not leave the group: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

// Browse panel and directory

function openBrowse({ focusCreate = false } = {}) {
  state.browse.open = true;
  renderBrowse();
  loadDirectory();
  (focusCreate ? $("#new-group-name") : $("#browse-close")).focus();
}

function closeBrowse() {
  if (!state.browse.open) return;
  state.browse.open = false;
  renderBrowse();
  $("#browse-groups").focus();
}

async function loadDirectory() {
  try {
    const data = await authed("GET", "/api/groups");
    state.browse.entries = Array.isArray(data?.groups) ? data.groups : [];
    state.browse.error = "";
  } catch (err) {
    state.browse.error = `Could not load groups: ${err.message}`;
  }
  state.browse.loaded = true;
  if (state.browse.open) renderDirectory();
}

/** Reload the directory (member counts) after a membership change, if it is showing. */
function refreshDirectory() {
  if (state.browse.open && state.token) loadDirectory();
}

function setDirectoryJoined(id, joined) {
  const entry = state.browse.entries.find((e) => e.id === id);
  if (!entry || entry.joined === joined) return;
  entry.joined = joined;
  entry.member_count = Math.max(0, (Number(entry.member_count) || 0) + (joined ? 1 : -1));
  if (state.browse.open) renderDirectory();
}

async function joinGroup(id) {
  const { browse } = state;
  if (browse.busy.has(id)) return;
  browse.busy.add(id);
  state.selectOnJoin.add(id); // before the request: the frame may beat the HTTP answer
  renderDirectory();
  try {
    await authed("POST", `/api/groups/${encodeURIComponent(id)}/join`);
    setDirectoryJoined(id, true);
  } catch (err) {
    state.selectOnJoin.delete(id);
    if (err.status !== 401) toast(`Could not join: ${err.message}`);
  } finally {
    browse.busy.delete(id);
    if (browse.open) renderDirectory();
  }
}

async function createGroup(event) {
  event.preventDefault();
  const input = $("#new-group-name");
  const submit = $("#new-group-submit");
  const error = $("#new-group-error");
  error.textContent = "";
  submit.disabled = true;
  try {
    const name = input.value;
    const data = await authed("POST", "/api/groups", { name: name.trim() });
    if (input.value === name) input.value = "";
    const id = data?.group?.id;
    if (id) {
      if (state.groups.has(id)) selectGroup(id); // the `joined` frame came first
      else state.selectOnJoin.add(id);
    }
    refreshDirectory();
  } catch (err) {
    if (err.status !== 401) error.textContent = err.message;
  } finally {
    submit.disabled = false;
  }
}

function bindEvents() {
  $("#auth-form").addEventListener("submit", submitAuth);
  $("#auth-toggle").addEventListener("click", toggleAuthMode);
  $("#logout").addEventListener("click", logout);

  $("#group-list").addEventListener("click", (event) => {
    const li = event.target.closest("li.group");
    if (li) selectGroup(li.dataset.groupId, { focus: true });
  });

  $("#leave-group").addEventListener("click", leaveSelectedGroup);
  $("#members-toggle").addEventListener("click", toggleMembers);
  $("#messages-scroller").addEventListener("scroll", maybeLoadOlder, { passive: true });
  document.addEventListener("visibilitychange", onVisibilityChange);
  window.addEventListener("pagehide", () => { if (state.selected && pageVisible()) flushRead(state.selected); });

  const textarea = $("#composer-text");
  $("#composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendComposer();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendComposer();
    }
  });
  textarea.addEventListener("input", () => {
    autosizeComposer();
    renderComposer();
  });

  $("#messages").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.action === "retry") retryPending(button.dataset.ref);
    else if (button.dataset.action === "discard") discardPending(button.dataset.ref);
  });

  $("#browse-groups").addEventListener("click", () => openBrowse());
  $("#new-group").addEventListener("click", () => openBrowse({ focusCreate: true }));
  $("#browse-close").addEventListener("click", closeBrowse);
  $("#new-group-form").addEventListener("submit", createGroup);
  $("#directory").addEventListener("click", (event) => {
    const button = event.target.closest("button.join");
    if (button) joinGroup(button.dataset.groupId);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (state.browse.open) closeBrowse();
    else if (state.members.open) { toggleMembers(); $("#members-toggle").focus(); }
  });

  // Back online while waiting to reconnect: try at once. With a socket still open, check that
  // it survived the network change (a dead one fails the ping and reconnects).
  window.addEventListener("online", () => {
    if (!state.token) return;
    if (!state.conn.ws) connect();
    else checkAlive();
  });
  window.addEventListener("offline", () => {
    if (!state.conn.ws) { clearRetry(); setConnState("offline"); return; }
    checkAlive(); // the socket may be dead without knowing it yet
  });
}

// ---------------------------------------------------------------- 8. boot

// For tests and debugging from the console: lose the connection the way a network drop
// does (the page sees it closed abnormally and reconnects, once the browser is online).
window.chorusDebug = Object.freeze({
  dropSocket() {
    if (!state.conn.ws) return false;
    dropSocket(4000, "dropped for debugging");
    socketClosed(1006, "");
    return true;
  },
});

async function boot() {
  bindEvents();
  renderAuth();
  const token = storageGet(TOKEN_KEY);
  if (!token) {
    showAuth();
    return;
  }
  state.token = token;
  showScreen("splash");
  try {
    const me = await api("GET", "/api/me");
    enterApp(me.user, Array.isArray(me.groups) ? me.groups : []);
  } catch (err) {
    if (err.status === 401) {
      storageSet(TOKEN_KEY, null);
      state.token = null;
      showAuth();
    } else {
      // The API is down or unreachable: open the app anyway; the socket retries with backoff.
      enterApp(null, null);
      toast(`Could not load your profile: ${err.message}`);
    }
  }
}

boot();
