// The leader tab's WebSocket: connect, authenticate, keep alive (ping; no frame within
// PONG_TIMEOUT_MS is a dead socket), reconnect with backoff, wait while the browser is offline.
// onStatus({status: "connecting" | "connected" | "offline", retryAt, code?, reason?}). A 4001
// close asks token() again: a new token reconnects, the same one (or null) stops.

import { CLOSE_UNAUTHENTICATED, attemptAfterClose, backoffDelay } from "./policy.js";

export const PING_EVERY_MS = 25000;
export const PONG_TIMEOUT_MS = 10000;

export class Socket {
  constructor({ url, token, onFrame, onStatus }) {
    Object.assign(this, { url, token, onFrame, onStatus });
    this.ws = null;
    this.gen = 0;       // bumps on every new socket: events of older ones are ignored
    this.running = false;
    this.attempt = 0;   // reconnect attempts since the last `ready`
    this.used = null;   // the token the current socket authenticated with
    this.timers = {};
    this.retryAt = null;
    addEventListener("online", () => this.running && (this.ws ? this.checkAlive() : this.connect()));
    addEventListener("offline", () => this.offline());
  }

  start() {
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  stop(code, reason) {
    this.running = false;
    this.abandon(1000, "closed");
    this.clearRetry();
    this.status("offline", code, reason);
  }

  send(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  drop() {
    if (!this.ws) return;
    this.abandon(4000, "dropped");
    this.closed(1006, "");
  }

  /** Reconnect now (a new token the server cannot take in-band). */
  restart() {
    this.abandon(1000, "new token");
    if (this.running) this.connect();
  }

  async connect() {
    this.clearRetry();
    this.stopHeartbeat();
    const gen = ++this.gen;
    this.status("connecting");
    const token = await this.token().catch(() => undefined); // failed: try again later
    if (gen !== this.gen || !this.running) return;
    if (token === null) return this.stop(CLOSE_UNAUTHENTICATED, "signed out");
    if (token === undefined) return this.scheduleReconnect();
    let ws;
    try { ws = this.ws = new WebSocket(this.url); } catch { return this.scheduleReconnect(); }
    this.used = token;
    const mine = (fn) => (event) => gen === this.gen && fn(event);
    ws.addEventListener("open", mine(() => this.send({ op: "auth", token })));
    ws.addEventListener("message", mine((event) => this.received(event.data)));
    ws.addEventListener("close", mine((event) => this.closed(event.code, event.reason)));
  }

  received(data) {
    let frame;
    try { frame = JSON.parse(data); } catch { return; }
    if (!frame || typeof frame !== "object") return;
    clearTimeout(this.timers.pong);
    this.timers.pong = null;
    if (frame.op === "ready") {
      this.attempt = 0;
      this.stopHeartbeat();
      this.timers.ping = setInterval(() => this.checkAlive(), PING_EVERY_MS);
      this.status("connected");
    }
    this.onFrame(frame);
  }

  async closed(code, reason) {
    this.ws = null;
    this.stopHeartbeat();
    if (code === CLOSE_UNAUTHENTICATED && this.running) {
      const gen = this.gen;
      const fresh = await this.token().catch(() => null);
      if (gen !== this.gen) return;
      if (!fresh || fresh === this.used) return this.stop(code, reason);
      this.status("connecting", code, reason);
      return this.connect();
    }
    this.attempt = attemptAfterClose(code, this.attempt);
    this.scheduleReconnect(code, reason);
  }

  /** Close, ignoring the socket's later events. */
  abandon(code, reason) {
    this.gen++;
    this.stopHeartbeat();
    try { this.ws?.close(code, reason); } catch { /* already closing */ }
    this.ws = null;
  }

  scheduleReconnect(code, reason) {
    this.clearRetry();
    if (!this.running) return;
    if (navigator.onLine === false) return this.status("offline", code, reason); // wait for "online"
    const delay = backoffDelay(this.attempt++);
    this.retryAt = Date.now() + delay;
    this.timers.retry = setTimeout(() => this.connect(), delay);
    this.status("connecting", code, reason);
  }

  clearRetry() {
    clearTimeout(this.timers.retry);
    this.retryAt = null;
  }

  status(status, code, reason) {
    this.onStatus({ status, retryAt: status === "connecting" ? this.retryAt : null, code, reason });
  }

  offline() {
    if (!this.running) return;
    if (this.ws) return this.checkAlive(); // the socket may be dead without knowing it yet
    this.clearRetry();
    this.status("offline");
  }

  stopHeartbeat() {
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
    this.timers.ping = this.timers.pong = null;
  }

  checkAlive() {
    if (this.send({ op: "ping" }) && !this.timers.pong) {
      this.timers.pong = setTimeout(() => {
        this.abandon(4000, "no pong");
        this.closed(1006, "no pong");
      }, PONG_TIMEOUT_MS);
    }
  }
}
