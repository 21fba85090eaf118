// The page's sends: a random idempotency key per message, kept on every attempt (chorus.js
// retries with it; a retry by hand passes it again); answers match by key (or ref), never by text.
// How chorus.js resends across reconnects is in sdk_session.test.mjs.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ME, Page, msg } from "./harness.mjs";

function compose(page, text, key) {
  page.on({ type: "draft", text });
  return page.on({ type: "compose", key, ts: 5 });
}

test("a message is posted with its key and shown as pending until its ack", () => {
  const page = Page.ready().open("g1");
  compose(page, "  hello\n", "key-1");
  assert.deepEqual(page.posts(), [{ type: "post", ref: "r1", key: "key-1", group: "g1", text: "  hello" }]);
  assert.deepEqual(page.state.pending.map((p) => [p.text, p.status]), [["  hello", "sending"]]);
  assert.equal(page.state.drafts.g1, undefined, "the composer is emptied");

  page.frame({ op: "ack", ref: "r1", idempotency_key: "key-1", group: "g1", seq: 1, ts: 9 });
  assert.deepEqual(page.state.pending, []);
  assert.deepEqual(page.box("g1").list.map((m) => [m.seq, m.text, m.from.id]), [[1, "  hello", ME.id]]);
  page.frame(msg(1, { from: ME, text: "  hello" }));
  assert.deepEqual(page.seqs("g1"), [1], "the message frame of the same send is a duplicate");
});

test("an ack that echoes the key answers that send, whatever its ref", () => {
  const page = Page.ready().open("g1");
  compose(page, "first", "k1");
  compose(page, "second", "k2");
  page.frame({ op: "ack", ref: "something else", idempotency_key: "k2", group: "g1", seq: 7, ts: 1 });
  assert.deepEqual(page.state.pending.map((p) => p.key), ["k1"]);
  assert.equal(page.box("g1").list[0].text, "second");
});

test("a send stays pending across a reconnect: chorus.js sends it again, not the page", () => {
  const page = Page.ready().open("g1");
  compose(page, "are you there?", "k-lost");
  page.on({ type: "closed", code: 1006 });
  page.on({ type: "conn", status: "connected" });
  assert.deepEqual(page.frame({ op: "ready", user: ME, groups: [{ id: "g1", name: "One" }] })
    .filter((c) => c.type === "post"), []);
  assert.equal(page.state.pending[0].status, "sending");
});

test("a lost send is never dropped because a message with the same text arrives", () => {
  const page = Page.ready().open("g1");
  compose(page, "ok", "k-mine");
  page.frame(msg(4, { from: ME, text: "ok" })); // the same words, sent from another tab
  assert.deepEqual(page.state.pending.map((p) => p.key), ["k-mine"], "still waiting for its own answer");
  page.frame({ op: "ack", ref: "r1", group: "g1", seq: 5, ts: 1 });
  assert.deepEqual(page.box("g1").list.map((m) => [m.seq, m.text]), [[4, "ok"], [5, "ok"]]);
});

test("the same text sent twice is two messages with two keys", () => {
  const page = Page.ready().open("g1");
  compose(page, "ha", "k1");
  compose(page, "ha", "k2");
  assert.deepEqual(page.state.pending.map((p) => [p.ref, p.key]), [["r1", "k1"], ["r2", "k2"]]);
});

test("a send refused for good fails, and a retry by hand keeps its key", () => {
  const page = Page.ready().open("g1");
  compose(page, "to a closed door", "k-refused");
  page.frame({ op: "error", ref: "r1", idempotency_key: "k-refused", code: "not_member", message: "not a member" });
  assert.deepEqual(page.state.pending.map((p) => [p.status, p.error]), [["failed", "not a member"]]);
  page.on({ type: "retry", ref: "r1" });
  assert.deepEqual(page.posts(), [{ type: "post", ref: "r1", key: "k-refused", group: "g1", text: "to a closed door" }]);
  assert.equal(page.state.pending[0].status, "sending");
  page.frame({ op: "error", ref: "r1", code: "not_member", message: "not a member" });
  page.on({ type: "discard", ref: "r1" });
  assert.deepEqual(page.state.pending, []);
});

test("nothing is sent without a connection, a group, the server's limits, or over the text limit", () => {
  const offline = Page.ready().open("g1");
  offline.on({ type: "closed", code: 1006 });
  offline.on({ type: "conn", status: "connecting", retryAt: 1 });
  assert.deepEqual(compose(offline, "hi", "k").map((c) => c.type), ["toast"]);
  assert.deepEqual(offline.state.pending, []);
  assert.equal(offline.state.drafts.g1, "hi", "the text stays in the composer");

  const noConfig = Page.ready(undefined, { config: null }).open("g1");
  assert.deepEqual(compose(noConfig, "hi", "k").filter((c) => c.type === "post"), []);

  const page = Page.ready().open("g1");
  assert.deepEqual(compose(page, "x".repeat(21), "k"), [], "the server said 20 characters");
  assert.equal(compose(page, "é".repeat(20), "k").length, 1, "counted in code points, as the server counts");
  assert.deepEqual(compose(page, " \n ", "k"), [], "blank");
});

test("leaving a group drops its pending sends and everything held for it", () => {
  const page = Page.ready([{ id: "g1", name: "One" }, { id: "g2", name: "Two" }]).open("g1");
  compose(page, "bye", "k");
  const commands = page.frame({ op: "left", group: { id: "g1", name: "One" } });
  assert.deepEqual(commands, [{ type: "membership", group: "g1", joined: false }]);
  assert.deepEqual([page.state.pending, page.state.selected, page.box("g1")], [[], null, undefined]);
});
