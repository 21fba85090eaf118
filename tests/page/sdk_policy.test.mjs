// chorus.js's timing decisions: reconnect backoff, send retries, token refresh.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  BACKOFF_MAX_MS, BACKOFF_MIN_MS, CLOSE_TOO_MANY_SESSIONS, MAX_SEND_ATTEMPTS, REFRESH_AHEAD_MS, attemptAfterClose,
  backoffDelay, refreshDelay, sendRetryDelay, tokenExpiry,
} from "../../services/webgate/static/sdk/policy.js";

test("reconnect delays double from the minimum to the maximum, with jitter", () => {
  assert.equal(backoffDelay(0, 0.5), BACKOFF_MIN_MS);
  assert.equal(backoffDelay(1, 0.5), 2 * BACKOFF_MIN_MS);
  for (const random of [0, 0.999]) {
    const delay = backoffDelay(2, random);
    assert.ok(delay >= 0.8 * 4 * BACKOFF_MIN_MS && delay <= 1.2 * 4 * BACKOFF_MIN_MS, delay);
    const capped = backoffDelay(30, random);
    assert.ok(capped >= 0.8 * BACKOFF_MAX_MS && capped <= BACKOFF_MAX_MS, capped);
  }
  assert.notEqual(backoffDelay(3, 0), backoffDelay(3, 0.99), "pages dropped together spread out");
});

test("after 'too many sessions' the page retries only at the slowest pace, never in a tight loop", () => {
  for (const attempt of [0, 1, 3]) {
    const delay = backoffDelay(attemptAfterClose(CLOSE_TOO_MANY_SESSIONS, attempt), 0);
    assert.ok(delay >= 0.8 * BACKOFF_MAX_MS, `attempt ${attempt}: ${delay} ms`);
  }
  assert.equal(attemptAfterClose(1006, 0), 0, "any other close backs off as before");
  assert.equal(attemptAfterClose(1001, 2), 2);
});

test("a rate-limited send waits as long as the server says; an unavailable one backs off; others are final", () => {
  assert.equal(sendRetryDelay({ code: "rate_limited", retry_after_ms: 1234 }, 1), 1234);
  assert.equal(sendRetryDelay({ code: "unavailable" }, 1, 0.5), BACKOFF_MIN_MS);
  assert.equal(sendRetryDelay({ code: "unavailable" }, 2, 0.5), 2 * BACKOFF_MIN_MS);
  for (const code of ["not_member", "too_large", "invalid_argument"]) assert.equal(sendRetryDelay({ code }, 1), null, code);
  assert.equal(sendRetryDelay({ code: "rate_limited", retry_after_ms: 5 }, MAX_SEND_ATTEMPTS), null, "not forever");
});

test("a token is refreshed ahead of its expiry, never later than it, never in a tight loop", () => {
  const hour = 3_600_000;
  assert.equal(refreshDelay(hour, 0), hour - REFRESH_AHEAD_MS);
  assert.equal(refreshDelay(60_000, 0), 48_000, "a short token: a fifth of its life ahead");
  assert.equal(refreshDelay(-5, 0), 1000, "already expired: soon, not at once and again");
});

test("a JWT's expiry is read from its claims; anything else has none", () => {
  const claims = Buffer.from(JSON.stringify({ sub: "u1", exp: 1_700_000_000 })).toString("base64url");
  assert.equal(tokenExpiry(`e30.${claims}.sig`), 1_700_000_000_000);
  for (const token of ["opaque", "a.b.c", "", `e30.${Buffer.from("{}").toString("base64url")}.x`]) {
    assert.equal(tokenExpiry(token), null, token);
  }
});
