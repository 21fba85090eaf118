// Chorus web page: wires the pure state (state.js) to chorus.js (the SDK: the one WebSocket,
// shared with the page's other tabs), the HTTP API and the DOM.
//
// Everything that happens becomes an event for `dispatch`: chorus.js's events, API answers, the
// person's clicks. The reducer returns the new state and commands; this module carries the
// commands out (COMMANDS) and redraws the page once per animation frame.

import { Api } from "./api.js";
import { AuthForm } from "./auth.js";
import { $, pageVisible, toast } from "./dom.js";
import { Directory, MembersPanel } from "./panels.js";
import { ChatView, autosize } from "./render.js";
import { Chorus, newKey } from "./sdk/chorus.js";
import { CLOSE_TOO_MANY_SESSIONS } from "./sdk/policy.js";
import { canSend, get, initialState, reduce } from "./state.js";

const TOKEN_KEY = "chorus.token";
const READ_DEBOUNCE_MS = 300; // `read` markers are sent at most this often per group
const TICK_MS = 250;          // "Reconnecting in Ns…" counts down at this pace

let state = initialState({ visible: pageVisible() });
let token = storageGet(TOKEN_KEY);

const api = new Api({ token: () => token, onExpired: () => sessionExpired() });
let chorus = null; // the SDK's client while logged in
const view = new ChatView({ onNearTop: (group) => dispatch({ type: "needOlder", group }) });
const members = new MembersPanel({ api });
const directory = new Directory({
  api,
  selectWhenJoined: (group) => dispatch({ type: "wantSelect", group }),
  forgetSelect: (group) => dispatch({ type: "forgetSelect", group }),
});
const auth = new AuthForm({ api, onLoggedIn: (newToken, user) => { saveToken(newToken); enterApp(user, null); } });

function dispatch(event) {
  const out = reduce(state, event);
  state = out.state;
  for (const command of out.commands) COMMANDS[command.type](command);
  scheduleRender();
}

const COMMANDS = {
  post: postMessage,
  markRead: ({ group, seq }) => chorus?.markRead(group, seq),
  fetch: fetchHistory,
  scheduleRead: ({ group, again }) => reads.schedule(group, again),
  flushRead: ({ group }) => reads.flush(group),
  later: ({ ms, event }) => setTimeout(() => dispatch(event), ms),
  membership: ({ group, joined }) => directory.membershipChanged(group, joined),
  toast: ({ text }) => toast(text),
  warn: ({ text }) => console.warn(text),
};

let toldTooManySessions = false; // said once until the next `ready`, not at every slow retry

// chorus.js's events that are server frames to the reducer, by the op they have there.
const FRAME_EVENTS = ["ready", "message", "joined", "left", "reset", "resumed", "read", "error"];

/** The SDK's connection for this token; its events become the reducer's events. */
function connect() {
  const client = Chorus.connect({ url: socketUrl(location), getToken: () => token });
  for (const op of FRAME_EVENTS) client.on(op, (data) => dispatch({ type: "frame", frame: { ...data, op } }));
  client.on("state", ({ status, retryAt }) => {
    dispatch({ type: "conn", status, retryAt });
    if (retryAt) countDown();
  });
  client.on("resuming", () => dispatch({ type: "resuming" }));
  client.on("closed", ({ code, reason }) => {
    dispatch({ type: "closed", code });
    if (code === CLOSE_TOO_MANY_SESSIONS && !toldTooManySessions) {
      toldTooManySessions = true;
      toast(`Not connected: ${reason || "too many sessions"}. Close another tab or device to connect here.`);
    }
  });
  client.on("unauthenticated", ({ reason }) => sessionExpired(reason));
  client.on("ready", () => {
    toldTooManySessions = false;
    if (!state.config) loadConfig();
  });
  return client;
}

let ticking = null;

/** Redraw "Reconnecting in Ns…" while chorus.js waits to reconnect. */
function countDown() {
  ticking ??= setInterval(() => {
    if (!state.retryAt) {
      clearInterval(ticking);
      ticking = null;
    }
    scheduleRender();
  }, TICK_MS);
}

/** Post through chorus.js; its answer comes back to the reducer as the frame it was. */
function postMessage({ ref, key, group, text }) {
  chorus?.send(group, text, { key }).then(
    (ack) => dispatch({ type: "frame", frame: { op: "ack", ref, idempotency_key: key, ...ack } }),
    (err) => dispatch({ type: "frame", frame: { op: "error", ref, idempotency_key: key, code: err.code,
      message: err.message } }));
}

/** The WebSocket URL of this page's origin. */
function socketUrl({ protocol, host }) {
  return `${protocol === "https:" ? "wss" : "ws"}://${host}/ws`;
}

async function fetchHistory({ group, gen, kind, before, after }) {
  const limit = state.config?.historyPage;
  const query = { older: { before, limit }, after: { after, limit }, latest: { limit } }[kind];
  try {
    const data = await api.messages(group, query);
    dispatch({ type: "history", group, gen, kind, before, messages: data?.messages, more: !!data?.more });
  } catch (err) {
    dispatch({ type: "historyFailed", group, gen, kind, status: err.status, message: err.message });
  }
}

/** The server's limits; asked for at start and again after each `ready` until known. */
async function loadConfig() {
  try {
    dispatch({ type: "config", config: await api.config() });
  } catch { /* the server is unreachable: the socket's reconnect tries again */ }
}

/** Debounced `read` markers: at most one per group per READ_DEBOUNCE_MS. */
const reads = {
  timers: new Map(), // group id -> {again, timer}
  schedule(group, again) {
    const entry = this.timers.get(group);
    if (entry) {
      entry.again ||= again;
      return;
    }
    const fresh = { again, timer: null };
    fresh.timer = setTimeout(() => {
      this.timers.delete(group);
      dispatch({ type: "readDue", group, again: fresh.again });
    }, READ_DEBOUNCE_MS);
    this.timers.set(group, fresh);
  },
  /** The person stops looking at a group (another group, tab hidden, page closing): send now. */
  flush(group) {
    const entry = this.timers.get(group);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.timers.delete(group);
    dispatch({ type: "readDue", group, again: entry.again, flush: true });
  },
  clear() {
    for (const entry of this.timers.values()) clearTimeout(entry.timer);
    this.timers.clear();
  },
};

// ---------------------------------------------------------------- drawing

let renderQueued = false;

/** Batch renders: a burst of frames costs one render. */
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(renderNow);
  setTimeout(renderNow, 50); // rAF does not run in background tabs
}

function renderNow() {
  if (!renderQueued) return;
  renderQueued = false;
  if (!token) return; // the log-in form is showing
  view.render(state);
  members.follow(state.selected, state.user);
}

function showScreen(screen) {
  $("#splash").hidden = screen !== "splash";
  $("#auth").hidden = screen !== "auth";
  $("#app").hidden = screen !== "app";
}

// ---------------------------------------------------------------- session

function storageGet(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}

function storageSet(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch { /* storage unavailable: the session lasts as long as the page */ }
}

function saveToken(newToken) {
  token = newToken;
  storageSet(TOKEN_KEY, newToken);
}

function enterApp(user, groups) {
  dispatch({ type: "session", user, groups });
  showScreen("app");
  renderQueued = true;
  renderNow();
  chorus?.close();
  chorus = connect();
  if (!state.config) loadConfig();
  openLinkedGroup();
}

function showAuth(message = "") {
  showScreen("auth");
  auth.show(message);
}

/** Tear down the session's state and socket (no network call). */
function leaveApp() {
  chorus?.close();
  chorus = null;
  token = null;
  storageSet(TOKEN_KEY, null);
  reads.clear();
  dispatch({ type: "loggedOut" });
  view.reset();
  directory.reset();
  directory.render();
  members.close();
  $("#toasts").replaceChildren();
}

function sessionExpired(reason) {
  if (!token) return;
  leaveApp();
  const why = reason === "auth timeout" ? "The connection timed out." : "Your session has expired.";
  showAuth(`${why} Please log in again.`);
}

function logout() {
  const old = token;
  leaveApp();
  showAuth();
  if (old) api.logout(old);
}

// ---------------------------------------------------------------- the person's actions

/** A link to a group (`/#group=ID`, where the widgets' toasts lead): open it once it is there. */
function openLinkedGroup() {
  const match = /^#group=(.+)$/.exec(location.hash);
  if (match) dispatch({ type: "wantSelect", group: decodeURIComponent(match[1]) });
}

function selectGroup(id) {
  dispatch({ type: "select", group: id });
  renderQueued = true;
  renderNow();
  if (canSend(state)) $("#composer-text").focus();
}

async function leaveSelectedGroup() {
  const id = state.selected;
  if (!id) return;
  const button = $("#leave-group");
  button.disabled = true;
  try {
    await api.leave(id); // the sidebar changes when the `left` frame arrives
  } catch (err) {
    if (err.status !== 401) toast(`Could not leave the group: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

function bindEvents() {
  $("#logout").addEventListener("click", logout);
  $("#group-list").addEventListener("click", (event) => {
    const li = event.target.closest("li.group");
    if (li) selectGroup(li.dataset.groupId);
  });
  $("#leave-group").addEventListener("click", leaveSelectedGroup);
  $("#members-toggle").addEventListener("click", () => members.toggle(state.selected));
  $("#messages-scroller").addEventListener("scroll", () => {
    if (state.selected) view.maybeLoadOlder(state.selected, get(state.boxes, state.selected));
  }, { passive: true });
  document.addEventListener("visibilitychange", () => dispatch({ type: "visibility", visible: pageVisible() }));
  window.addEventListener("pagehide", () => { if (state.selected && pageVisible()) reads.flush(state.selected); });
  window.addEventListener("hashchange", () => { if (token) openLinkedGroup(); });

  const textarea = $("#composer-text");
  const send = () => dispatch({ type: "compose", key: newKey(), ts: Date.now() });
  $("#composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  textarea.addEventListener("input", () => {
    autosize(textarea);
    dispatch({ type: "draft", text: textarea.value });
  });
  $("#messages").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) dispatch({ type: button.dataset.action === "retry" ? "retry" : "discard", ref: button.dataset.ref });
  });

  $("#browse-groups").addEventListener("click", () => directory.show());
  $("#new-group").addEventListener("click", () => directory.show({ focusCreate: true }));
  $("#browse-close").addEventListener("click", () => directory.close());
  $("#new-group-form").addEventListener("submit", (event) => directory.create(event));
  $("#directory").addEventListener("click", (event) => {
    const button = event.target.closest("button.join");
    if (button) directory.join(button.dataset.groupId);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (directory.open) directory.close();
    else if (members.open) {
      members.close();
      $("#members-toggle").focus();
    }
  });
}

// ---------------------------------------------------------------- boot

// For tests and debugging from the console: lose the connection the way a network drop
// does (the page sees it closed abnormally and reconnects, once the browser is online).
window.chorusDebug = Object.freeze({ dropSocket: () => chorus?.drop(), leader: () => !!chorus?.leader });

async function boot() {
  bindEvents();
  loadConfig();
  if (!token) {
    showAuth();
    return;
  }
  showScreen("splash");
  try {
    const me = await api.me();
    enterApp(me.user, Array.isArray(me.groups) ? me.groups : []);
  } catch (err) {
    if (err.status === 401) {
      token = null;
      storageSet(TOKEN_KEY, null);
      showAuth();
    } else {
      // The API is down or unreachable: open the app anyway; the socket retries with backoff.
      enterApp(null, null);
      toast(`Could not load your profile: ${err.message}`);
    }
  }
}

boot();
