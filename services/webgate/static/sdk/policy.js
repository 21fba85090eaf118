// When to try again: reconnects, sends, token refreshes. Pure: time and randomness come in.

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 15000;
export const CLOSE_UNAUTHENTICATED = 4001;
export const CLOSE_TOO_MANY_SESSIONS = 4008;
export const MAX_SEND_ATTEMPTS = 5;       // a send lost or refused "try later" this often fails
export const REFRESH_AHEAD_MS = 60000;    // refresh a token at most this long before it expires
const MIN_REFRESH_MS = 1000;
const SLOWEST_ATTEMPT = 10;               // backoffDelay is at BACKOFF_MAX_MS well before this

/** BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS, ±20 % jitter: pages dropped together spread out. */
export function backoffDelay(attempt, random = Math.random()) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return Math.min(BACKOFF_MAX_MS, Math.round(base * (0.8 + random * 0.4)));
}

/** After "too many sessions" every retry waits the longest: no tight loop until a page closes. */
export const attemptAfterClose = (code, attempt) =>
  (code === CLOSE_TOO_MANY_SESSIONS ? Math.max(attempt, SLOWEST_ATTEMPT) : attempt);

/** Wait before resending a send answered with `error`; null: the answer is final. */
export function sendRetryDelay(error, attempts, random = Math.random()) {
  if (attempts >= MAX_SEND_ATTEMPTS) return null;
  if (error.code === "rate_limited") return Math.max(0, Number(error.retry_after_ms) || BACKOFF_MIN_MS);
  return error.code === "unavailable" ? backoffDelay(attempts - 1, random) : null;
}

/** Refresh ahead of expiry by a fifth of what is left, at most REFRESH_AHEAD_MS. */
export function refreshDelay(expiresAt, now) {
  const left = expiresAt - now;
  return Math.max(MIN_REFRESH_MS, left - Math.min(REFRESH_AHEAD_MS, left / 5));
}

/** A JWT's `exp` in ms (read, not verified: the server does that), or null. */
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(part)).exp;
    return Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}
