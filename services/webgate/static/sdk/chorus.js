// chorus.js: live group messages from a Chorus server, for any page. docs/sdk.md is the manual.
//
//   import { Chorus } from "https://chorus.example/sdk/chorus.js";
//   const chorus = Chorus.connect({ url: "wss://chorus.example/ws", getToken: async () => "..." });
//   chorus.on("message", (m) => ...);  await chorus.send(groupId, "hi");
//
// This module is the driver: it carries out what the pure parts decide, the protocol
// (session.js), the tab sharing (tabs.js) and the retry policy (policy.js), with the browser's
// WebSocket (socket.js), Web Locks, BroadcastChannel, localStorage and fetch.

import { REFRESH_REF, Session } from "./session.js";
import { Socket } from "./socket.js";
import { TabLink, snapMessage } from "./tabs.js";
import { refreshDelay, tokenExpiry } from "./policy.js";

export { MAX_SEND_ATTEMPTS } from "./policy.js";

export const MARKS_MAX_AGE_MS = 10 * 60 * 1000; // older saved marks are not resumed from
const SAVE_EVERY_MS = 250;

/** An HTTP API call that failed: `status` (0: unreachable), the server's `code` and message. */
export class ChorusError extends Error {
  constructor(status, code, message) {
    super(message);
    Object.assign(this, { name: "ChorusError", status, code });
  }
}

/** A fresh idempotency key. crypto.randomUUID exists only in secure contexts (https,
 * localhost); a page over plain http on a LAN makes the same kind of key from getRandomValues. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const hex = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
}

const canShare = () => typeof BroadcastChannel === "function" && !!globalThis.navigator?.locks;

export class Client {
  /**
   * `url`: the WebSocket URL (wss://host/ws); `getToken()`: a token (string, or {token,
   * expiresAt}), or a promise of one, asked at every connect and before the token expires; null
   * means "signed out". `api`: the HTTP API's base (default: the url's origin). `share`: share
   * one socket with the other tabs of this origin (default: when the browser can).
   */
  constructor({ url, getToken, api, share = true, storage = globalThis.localStorage }) {
    if (typeof url !== "string" || typeof getToken !== "function") {
      throw new TypeError("Chorus.connect needs {url: 'wss://host/ws', getToken: () => token}");
    }
    this.url = url;
    this.getToken = getToken;
    this.api = api ?? new URL(url.replace(/^ws/, "http")).origin;
    this.storage = storage;
    this.key = `chorus:${url}`;
    this.listeners = new Map();
    this.promises = new Map();
    this.state = { status: "connecting", retryAt: null };
    this.token = null;
    this.session = new Session({ saved: this.loadMarks() });
    this.link = new TabLink(newKey());
    this.socket = null;
    this.timers = {};
    this.closed = false;
    addEventListener("pagehide", () => this.saveMarks());
    if (share && canShare()) {
      this.session.leader = false;
      this.channel = new BroadcastChannel(this.key);
      this.channel.onmessage = (event) => this.run(this.link.fromChannel(event.data));
      this.run(this.link.start());
      this.lockAbort = new AbortController();
      navigator.locks.request(this.key, { signal: this.lockAbort.signal }, () => {
        if (this.closed) return null;
        this.run(this.link.elected());
        return new Promise((resolve) => { this.releaseLock = resolve; });
      }).catch(() => null); // aborted by close()
    } else {
      this.run(this.link.elected());
    }
  }

  // ------------------------------------------------------------ the API

  /** `on("message", fn)`; returns a function that unsubscribes. Events: docs/sdk.md. */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  get user() { return this.session.user; }
  get leader() { return this.link.leader; }

  /** The groups: [{id, name, unread}]. */
  groups() {
    return [...this.session.groups.values()].map(({ id, name, unread }) => ({ id, name, unread }));
  }

  /** Unread messages in `group`, or in every group together. */
  unread(group) { return this.session.unread(group); }

  /** Post `text`; resolves with {group, seq, ts, key} once stored, rejects with {code, message}.
   * `key` (default: a fresh one) makes it exactly-once: the same key is the same message. */
  send(group, text, { key = newKey() } = {}) {
    const settled = new Promise((resolve, reject) => this.promises.set(key, { resolve, reject }));
    this.apply(this.session.send(group, text, key));
    return settled;
  }

  /** Store "read up to `seq`" in `group`; the `read` and `unread` events follow. */
  markRead(group, seq) { this.apply(this.session.markRead(group, seq)); }

  /** Stored messages: {before} (newest first) or {after} (oldest first), at most `limit`. */
  history(group, { before, after, limit } = {}) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries({ before, after, limit })) if (v != null) query.set(k, String(v));
    return this.call(`/api/groups/${encodeURIComponent(group)}/messages?${query}`);
  }

  /** A page of a group's members: {members: [{id, username, display_name, online}], next_cursor}. */
  members(group, { cursor } = {}) {
    return this.call(`/api/groups/${encodeURIComponent(group)}/members${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`);
  }

  /** Lose the connection the way a network drop does (tests and debugging). */
  drop() { this.run(this.link.drop()); }

  /** Stop: the socket closes (another tab takes it over) and no event comes any more. */
  close() {
    this.closed = true;
    this.saveMarks();
    clearTimeout(this.timers.refresh);
    this.socket?.stop();
    this.channel?.close();
    this.lockAbort?.abort();
    this.releaseLock?.();
    this.listeners.clear();
  }

  // ------------------------------------------------------------ inside

  emit(name, data) {
    for (const fn of this.listeners.get(name) ?? []) {
      try { fn(data); } catch (err) { setTimeout(() => { throw err; }); } // one listener cannot break the rest
    }
  }

  async call(path) {
    const token = this.token ?? (await this.fetchToken());
    let res;
    try {
      res = await fetch(this.api + path, { headers: { Accept: "application/json", Authorization: `Bearer ${token}` } });
    } catch {
      throw new ChorusError(0, "network", "Cannot reach the server. Check your connection and try again.");
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new ChorusError(res.status, data?.error?.code ?? `http_${res.status}`, data?.error?.message ?? `Request failed (${res.status}).`);
    return data;
  }

  /** getToken(), remembered with its expiry (null: signed out). */
  async fetchToken() {
    const got = await this.getToken();
    const token = typeof got === "string" ? got : got?.token ?? null;
    this.expiresAt = got?.expiresAt ?? (token && tokenExpiry(token));
    this.token = token;
    return token;
  }

  /** Carry out what the tab link decided. */
  run(outputs) {
    for (const out of outputs) {
      if (out.post) this.channel?.postMessage(out.post);
      if (out.socket) this.socket?.send(out.socket);
      if (out.deliver) this.received(out.deliver);
      if (out.status) this.setStatus(out.status);
      if (out.connect) this.lead();
      if (out.snapshot) this.channel.postMessage(snapMessage(out.snapshot, this.state, this.session.snapshot()));
      if (out.drop) this.socket?.drop();
    }
  }

  /** This tab holds the lock now: open the socket, resume from this tab's marks. */
  lead() {
    if (this.closed) return;
    this.session.leader = true;
    this.socket = new Socket({
      url: this.url,
      token: () => this.fetchToken(),
      onFrame: (frame) => this.run(this.link.fromSocket(frame)),
      onStatus: (status) => this.run(this.link.statusChanged(status)),
    });
    this.socket.start();
  }

  received(frame) {
    if (frame.op === "ready" && this.link.leader) this.scheduleRefresh(this.expiresAt);
    this.apply(this.session.received(frame));
  }

  setStatus(state) {
    if (state.status !== "connected") this.apply(this.session.closed());
    this.state = state;
    this.emit("state", state);
    if (state.code !== undefined) this.emit("closed", { code: state.code, reason: state.reason });
    if (state.status === "offline" && state.code === 4001) this.emit("unauthenticated", { reason: state.reason });
  }

  /** Carry out what the Session decided. */
  apply(outputs) {
    for (const out of outputs) {
      const type = out.type;
      if (type === "write") this.run(this.link.write(out.frame));
      else if (type === "emit") this.emit(out.name, out.data);
      else if (type === "settle") this.settle(out);
      else if (type === "later") setTimeout(() => this.apply(this.session.retry(out.key)), out.ms);
      else if (type === "fill") this.fill(out.group, out.after);
      else if (type === "probe") this.history(out.group, { limit: 1 }).then(
        ({ messages }) => this.session.probed(out.group, messages?.[0]?.seq ?? 0), () => null);
      else if (type === "save") this.timers.save ??= setTimeout(() => this.saveMarks(), SAVE_EVERY_MS);
      else if (type === "refreshed") this.refreshed(out.expiresAt);
      else if (type === "refreshRefused") this.socket?.restart(); // an older server: reconnect with it
    }
  }

  settle({ key, value, error }) {
    const p = this.promises.get(key);
    this.promises.delete(key);
    if (error) p?.reject(Object.assign(new Error(error.message), error));
    else p?.resolve(value);
  }

  async fill(group, after) {
    let messages = [];
    try {
      messages = (await this.history(group, { after })).messages ?? [];
    } catch { /* left the group, or offline: the next resume covers it */ }
    this.apply(this.session.filled(group, messages));
  }

  scheduleRefresh(expiresAt) {
    clearTimeout(this.timers.refresh);
    if (expiresAt) this.timers.refresh = setTimeout(() => this.refresh(), refreshDelay(expiresAt, Date.now()));
  }

  /** Before the token expires: a new one from getToken, sent in-band. The same one again
   * means none is to be had; the server closes the socket when it expires (4001). */
  async refresh() {
    const used = this.socket?.used;
    const token = await this.fetchToken().catch(() => null);
    if (!token || token === used) return;
    this.refreshing = { token, expiresAt: this.expiresAt };
    this.socket?.send({ op: "refresh", token, ref: REFRESH_REF });
  }

  refreshed(expiresAt) {
    if (this.refreshing && this.socket) this.socket.used = this.refreshing.token;
    this.refreshing = null;
    this.scheduleRefresh(expiresAt);
  }

  loadMarks() {
    try {
      const saved = JSON.parse(this.storage?.getItem(this.key) ?? "null");
      return saved && Date.now() - saved.at < MARKS_MAX_AGE_MS ? saved : null;
    } catch {
      return null;
    }
  }

  saveMarks() {
    this.timers.save = null;
    if (!this.session.user) return;
    try { this.storage?.setItem(this.key, JSON.stringify({ ...this.session.marks(), at: Date.now() })); } catch { /* full or blocked */ }
  }
}

export const Chorus = Object.freeze({
  /** Connect (or join this origin's shared connection): a Client. */
  connect: (options) => new Client(options),
});
