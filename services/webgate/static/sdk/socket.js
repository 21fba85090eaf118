// The leader tab's WebSocket: connect, authenticate, keep alive, reconnect with backoff.
//
// It knows the connection, not the chat. `onFrame(frame)` gets every server frame, parsed;
// `onStatus({status, retryAt, code?, reason?})` every change: "connecting" (retryAt: when, if
// it waits), "connected" (after `ready`) or "offline" (no network, stopped, or the token was
// refused), with the close code and reason when a close caused it.
//
// Liveness: any frame proves the connection alive; a `ping` goes out every PING_EVERY_MS and
// without an answer within PONG_TIMEOUT_MS the socket counts as dead. While the browser says it
// is offline, it waits for the "online" event instead of retrying. A 4001 close asks
// `token()` again: a new token reconnects at once, the same one (or none) stops.

import { CLOSE_UNAUTHENTICATED, attemptAfterClose, backoffDelay } from "./policy.js";

export const PING_EVERY_MS = 25000;
export const PONG_TIMEOUT_MS = 10000;
const TICK_MS = 250; // "Reconnecting in Ns…" counts down at this pace

export class Socket {
  /** `token()`: a promise of the token to authenticate with (null: stay offline). */
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

  stop(status = "offline", code = 1000, reason = "closed") {
    this.running = false;
    this.abandon(code, reason);
    this.clearRetry();
    this.status(status);
  }

  send(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  /** Lose the connection the way a network drop does. */
  drop() {
    if (!this.ws) return;
    this.abandon(4000, "dropped");
    this.closed(1006, "");
  }

  /** Close and connect again now (a new token the server cannot take in-band). */
  restart() {
    this.abandon(1000, "new token");
    if (this.running) this.connect();
  }

  async connect() {
    this.clearRetry();
    this.stopHeartbeat();
    const gen = ++this.gen;
    this.status("connecting");
    let token;
    try {
      token = await this.token();
    } catch {
      token = undefined; // the token endpoint failed: try again later
    }
    if (gen !== this.gen || !this.running) return;
    if (token === null) return this.stop("offline", CLOSE_UNAUTHENTICATED, "no token");
    if (token === undefined) return this.scheduleReconnect();
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      return this.scheduleReconnect();
    }
    this.ws = ws;
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
      if (!fresh || fresh === this.used) return this.stop("offline", code, reason);
      this.status("connecting", code, reason);
      return this.connect();
    }
    this.attempt = attemptAfterClose(code, this.attempt);
    this.scheduleReconnect(code, reason);
  }

  /** Close the current socket and ignore its later events. */
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
    this.timers.tick = setInterval(() => this.status("connecting"), TICK_MS);
    this.status("connecting", code, reason);
  }

  clearRetry() {
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.tick);
    this.retryAt = null;
  }

  status(status, code, reason) {
    this.onStatus({ status, retryAt: status === "connecting" ? this.retryAt : null,
      ...(code === undefined ? {} : { code, reason }) });
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

  /** Ping now; without an answer (any frame) within PONG_TIMEOUT_MS the socket counts as dead. */
  checkAlive() {
    if (this.send({ op: "ping" }) && !this.timers.pong) {
      this.timers.pong = setTimeout(() => {
        this.abandon(4000, "no pong");
        this.closed(1006, "no pong");
      }, PONG_TIMEOUT_MS);
    }
  }
}
