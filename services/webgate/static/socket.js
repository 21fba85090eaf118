// The page's one WebSocket: connect, authenticate, keep alive, reconnect with backoff.
//
// It knows the connection, not the chat: it reports through one callback, `onEvent`,
//   {type: "conn", status, retryAt}  "connecting" (retryAt: when, if it waits) | "connected"
//                                    (after `ready`) | "offline" (no network, or stopped)
//   {type: "frame", frame}           every server frame, parsed (after "conn" for `ready`)
//   {type: "closed", code, reason}   the socket is gone; it reconnects by itself unless the
//                                    code is 4001 (log in again) or it was stopped; after 4008
//                                    (the account has too many sessions) only every BACKOFF_MAX_MS
// and what to resume or resend after a reconnect is for the page's state to decide.
//
// Liveness: any frame proves the connection alive; a `ping` goes out every PING_EVERY_MS and
// without an answer within PONG_TIMEOUT_MS the socket counts as dead. While the browser says it
// is offline, it waits for the "online" event instead of retrying.

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 15000;
export const PING_EVERY_MS = 25000;
export const PONG_TIMEOUT_MS = 10000;
export const CLOSE_UNAUTHENTICATED = 4001;
export const CLOSE_TOO_MANY_SESSIONS = 4008;
const SLOWEST_ATTEMPT = 10; // backoffDelay is at BACKOFF_MAX_MS well before this attempt
const TICK_MS = 250; // "Reconnecting in Ns…" counts down at this pace

/** Exponential backoff from BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS, ±20 % jitter so that
 * pages dropped together do not come back together. `random` is in [0, 1). */
export function backoffDelay(attempt, random = Math.random()) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return Math.min(BACKOFF_MAX_MS, Math.round(base * (0.8 + random * 0.4)));
}

/** The reconnect attempt to count after a close with `code`. "Too many sessions" (the account
 * has its limit of pages open, and the server refuses the newest) waits the longest delay each
 * time instead of a tight loop; the page gets in once another of its pages closes. */
export function attemptAfterClose(code, attempt) {
  return code === CLOSE_TOO_MANY_SESSIONS ? Math.max(attempt, SLOWEST_ATTEMPT) : attempt;
}

export class Connection {
  /** `url`: the WebSocket URL; `token()`: the current token (or null: stay offline). */
  constructor({ url, token, onEvent }) {
    this.url = url;
    this.token = token;
    this.onEvent = onEvent;
    this.ws = null;
    this.gen = 0;         // bumps on every new socket: events of older ones are ignored
    this.running = false;
    this.attempt = 0;     // reconnect attempts since the last `ready`
    this.timers = { retry: null, tick: null, ping: null, pong: null };
    this.retryAt = null;
    window.addEventListener("online", () => this.online());
    window.addEventListener("offline", () => this.offline());
  }

  start() {
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  /** Close on purpose (logout) and do not come back. */
  stop() {
    this.running = false;
    this.abandon(1000, "logout");
    this.clearRetry();
    this.status("offline");
  }

  /** Write a frame; false when the socket is not open (a close event is then on its way). */
  send(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  /** Lose the connection the way a network drop does (for tests and debugging). */
  drop() {
    if (!this.ws) return false;
    this.abandon(4000, "dropped for debugging");
    this.closed(1006, "");
    return true;
  }

  connect() {
    this.clearRetry();
    this.stopHeartbeat();
    const gen = ++this.gen;
    this.status("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (gen === this.gen) this.send({ op: "auth", token: this.token() });
    });
    ws.addEventListener("message", (event) => {
      if (gen === this.gen) this.received(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (gen === this.gen) this.closed(event.code, event.reason);
    });
    // "error" is always followed by "close": nothing to do there.
  }

  received(data) {
    let frame;
    try { frame = JSON.parse(data); } catch { return; }
    if (!frame || typeof frame !== "object") return;
    this.sawLife();
    if (frame.op === "ready") {
      this.attempt = 0;
      this.startHeartbeat();
      this.status("connected");
    }
    this.onEvent({ type: "frame", frame });
  }

  closed(code, reason) {
    this.ws = null;
    this.stopHeartbeat();
    this.onEvent({ type: "closed", code, reason });
    if (code === CLOSE_UNAUTHENTICATED) {
      this.running = false;
      this.status("offline");
      return;
    }
    this.attempt = attemptAfterClose(code, this.attempt);
    this.scheduleReconnect();
  }

  /** Close the current socket and ignore its later events. */
  abandon(code, reason) {
    this.gen++;
    this.stopHeartbeat();
    if (this.ws) {
      try { this.ws.close(code, reason); } catch { /* already closing */ }
    }
    this.ws = null;
  }

  scheduleReconnect() {
    this.clearRetry();
    if (!this.running || !this.token()) return;
    if (navigator.onLine === false) { // wait for the "online" event
      this.status("offline");
      return;
    }
    const delay = backoffDelay(this.attempt);
    this.attempt++;
    this.retryAt = Date.now() + delay;
    this.timers.retry = setTimeout(() => this.connect(), delay);
    this.timers.tick = setInterval(() => this.status("connecting"), TICK_MS);
    this.status("connecting");
  }

  clearRetry() {
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.tick);
    this.timers.retry = this.timers.tick = null;
    this.retryAt = null;
  }

  status(status) {
    this.onEvent({ type: "conn", status, retryAt: status === "connecting" ? this.retryAt : null });
  }

  // Back online while waiting to reconnect: try at once. With a socket still open, check that
  // it survived the network change (a dead one fails the ping and reconnects).
  online() {
    if (!this.running) return;
    if (!this.ws) this.connect();
    else this.checkAlive();
  }

  offline() {
    if (!this.running) return;
    if (!this.ws) {
      this.clearRetry();
      this.status("offline");
      return;
    }
    this.checkAlive(); // the socket may be dead without knowing it yet
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.timers.ping = setInterval(() => this.checkAlive(), PING_EVERY_MS);
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

  sawLife() {
    clearTimeout(this.timers.pong);
    this.timers.pong = null;
  }
}

/** The WebSocket URL of this page's origin. */
export function socketUrl(location) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}
