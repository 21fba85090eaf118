// chorus.js: live group messages for any page (docs/sdk.md). The driver: it carries out what
// session.js, tabs.js and policy.js decide, with WebSocket, Web Locks, BroadcastChannel, storage.

import { REFRESH_REF, Session } from "./session.js";
import { Socket } from "./socket.js";
import { TabLink } from "./tabs.js";
import { refreshDelay, tokenExpiry } from "./policy.js";

export const MARKS_MAX_AGE_MS = 10 * 60 * 1000; // older saved marks are not resumed from
const SAVE_EVERY_MS = 250;

/** A failed API call: `status` (0: unreachable), the server's `code` and message. */
const apiError = (status, code, message) => Object.assign(new Error(message), { status, code });

/** A fresh idempotency key (randomUUID is missing on plain http pages). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const hex = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
}

const canShare = () => typeof BroadcastChannel === "function" && !!globalThis.navigator?.locks;

export class Client {
  /** Options: docs/sdk.md, "Connecting". */
  constructor({ url, getToken, api, share = true, storage = globalThis.localStorage }) {
    if (typeof url !== "string" || typeof getToken !== "function") throw new TypeError("Chorus.connect needs {url, getToken}");
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

  // The API (docs/sdk.md).

  /** on(event, fn) -> unsubscribe. */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  get user() { return this.session.user; }
  get leader() { return this.link.leader; }

  groups() {
    return [...this.session.groups.values()].map(({ id, name, unread }) => ({ id, name, unread }));
  }

  unread(group) { return this.session.unread(group); }

  /** Resolves with {group, seq, ts, key} once stored; the same key is the same message. */
  send(group, text, { key = newKey() } = {}) {
    const settled = new Promise((resolve, reject) => this.promises.set(key, { resolve, reject }));
    this.apply(this.session.send(group, text, key));
    return settled;
  }

  markRead(group, seq) { this.apply(this.session.markRead(group, seq)); }

  history(group, { before, after, limit } = {}) { return this.call(group, "messages", { before, after, limit }); }

  members(group, { cursor } = {}) { return this.call(group, "members", { cursor }); }

  /** Lose the connection as a network drop does (tests, debugging). */
  drop() { this.run(this.link.drop()); }

  /** Stop; another tab takes the socket over. */
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

  // Inside.

  emit(name, data) {
    for (const fn of this.listeners.get(name) ?? []) {
      try { fn(data); } catch (err) { setTimeout(() => { throw err; }); } // not to break the others
    }
  }

  /** GET /api/groups/GROUP/WHAT?PARAMS (docs/protocol.md). */
  async call(group, what, params) {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null));
    const token = this.token ?? (await this.fetchToken());
    const res = await fetch(`${this.api}/api/groups/${encodeURIComponent(group)}/${what}?${query}`,
      { headers: { Accept: "application/json", Authorization: `Bearer ${token}` } })
      .catch(() => { throw apiError(0, "network", "Cannot reach the server."); });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw apiError(res.status, data?.error?.code ?? "http", data?.error?.message ?? `HTTP ${res.status}`);
    return data;
  }

  /** getToken(), kept with its expiry. */
  async fetchToken() {
    const got = await this.getToken();
    const token = typeof got === "string" ? got : got?.token ?? null;
    this.expiresAt = got?.expiresAt ?? (token && tokenExpiry(token));
    this.token = token;
    return token;
  }

  /** Carry out the tab link's outputs. */
  run(outputs) {
    for (const out of outputs) {
      if (out.post) this.channel?.postMessage(out.post);
      if (out.socket) this.socket?.send(out.socket);
      if (out.deliver) this.received(out.deliver);
      if (out.status) this.setStatus(out.status);
      if (out.connect) this.lead();
      if (out.snapshot) this.channel.postMessage({ k: "snap", to: out.snapshot, status: this.state, ready: this.session.snapshot() });
      if (out.drop) this.socket?.drop();
    }
  }

  /** This tab has the lock: open the socket; the Session resumes from this tab's marks. */
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

  /** Carry out the Session's outputs. */
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

  /** Load a hole; failing (left the group, offline), the next resume covers it. */
  fill(group, after) {
    this.history(group, { after }).then((r) => r.messages ?? [], () => [])
      .then((messages) => this.apply(this.session.filled(group, messages)));
  }

  scheduleRefresh(expiresAt) {
    clearTimeout(this.timers.refresh);
    if (expiresAt) this.timers.refresh = setTimeout(() => this.refresh(), refreshDelay(expiresAt, Date.now()));
  }

  /** A new token in-band before expiry; the same one again: none to be had (4001 at expiry). */
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
  connect: (options) => new Client(options),
});
