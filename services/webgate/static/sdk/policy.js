// When to try again: reconnects, sends the server could not take, token refreshes. Pure
// functions of their inputs (no clock, no randomness of their own), so the numbers are tested.

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 15000;
export const CLOSE_UNAUTHENTICATED = 4001;
export const CLOSE_TOO_MANY_SESSIONS = 4008;
export const MAX_SEND_ATTEMPTS = 5;       // a send lost or refused "try later" this often fails
export const REFRESH_AHEAD_MS = 60000;    // refresh a token at most this long before it expires
const MIN_REFRESH_MS = 1000;
const SLOWEST_ATTEMPT = 10;               // backoffDelay is at BACKOFF_MAX_MS well before this

/** Exponential backoff from BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS, ±20 % jitter so that
 * pages dropped together do not come back together. `random` is in [0, 1). */
export function backoffDelay(attempt, random = Math.random()) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return Math.min(BACKOFF_MAX_MS, Math.round(base * (0.8 + random * 0.4)));
}

/** The reconnect attempt to count after a close with `code`. "Too many sessions" (the account
 * has its limit of pages open, and the server refuses the newest) waits the longest delay each
 * time instead of a tight loop; the page gets in once another of its pages closes. */
export const attemptAfterClose = (code, attempt) =>
  (code === CLOSE_TOO_MANY_SESSIONS ? Math.max(attempt, SLOWEST_ATTEMPT) : attempt);

/** How long to wait before sending again a send the server answered with `error`, or null: do
 * not (the answer is final: not a member, too long, ...). `attempts` made so far. */
export function sendRetryDelay(error, attempts, random = Math.random()) {
  if (attempts >= MAX_SEND_ATTEMPTS) return null;
  if (error.code === "rate_limited") return Math.max(0, Number(error.retry_after_ms) || BACKOFF_MIN_MS);
  return error.code === "unavailable" ? backoffDelay(attempts - 1, random) : null;
}

/** When (ms from now) to ask for a new token that expires at `expiresAt`: ahead of expiry by a
 * fifth of what is left, at most REFRESH_AHEAD_MS, so short tokens are not refreshed in a loop. */
export function refreshDelay(expiresAt, now) {
  const left = expiresAt - now;
  return Math.max(MIN_REFRESH_MS, left - Math.min(REFRESH_AHEAD_MS, left / 5));
}

/** The `exp` of a JWT in ms, read (never verified: the server does that), or null. */
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(part)).exp;
    return Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}
