// chorus.js's protocol core (sdk/session.js) without a socket: frames in, decisions out.
// Each (group, seq) reaches the app once; holes are loaded; a reconnect resumes from the marks;
// sends keep their key on every attempt and are retried as the server's answers allow.

import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_SEND_ATTEMPTS } from "../../services/webgate/static/sdk/policy.js";
import { REFRESH_REF, Session } from "../../services/webgate/static/sdk/session.js";

const ME = { id: "u_me", username: "me" };
const BOB = { id: "u_bob", username: "bob" };
const msg = (seq, { group = "g1", from = BOB, ...extra } = {}) =>
  ({ op: "message", group, seq, ts: seq * 1000, from, text: `m${seq}`, ...extra });
const ready = (groups = [{ id: "g1", name: "One", last_seq: 0, unread: 0 }]) => ({ op: "ready", user: ME, groups });

/** A Session and what it decided, kept per kind. */
class Core {
  constructor(options) {
    this.session = new Session(options);
    this.out = [];
  }

  do(outputs) {
    this.out = outputs;
    return this;
  }

  frame(f) { return this.do(this.session.received(f)); }

  messages() { return this.emitted("message").map((m) => m.seq); }
  emitted(name) { return this.out.filter((o) => o.type === "emit" && o.name === name).map((o) => o.data); }
  written(op) { return this.out.filter((o) => o.type === "write" && (!op || o.frame.op === op)).map((o) => o.frame); }
  of(type) { return this.out.filter((o) => o.type === type); }
}

const connected = (groups, options) => new Core(options).frame(ready(groups));

test("each (group, seq) reaches the app once, in whatever order it comes", () => {
  const core = connected();
  assert.deepEqual(core.frame(msg(1)).messages(), [1]);
  assert.deepEqual(core.frame(msg(1)).messages(), [], "a replayed copy is dropped");
  assert.deepEqual(core.frame(msg(3)).messages(), [3]);
  assert.deepEqual(core.frame(msg(2)).messages(), [2]);
  assert.deepEqual(core.frame(msg(3)).messages(), []);
  assert.deepEqual(core.session.marks().marks, { g1: 3 });
  assert.deepEqual(core.frame(msg(1, { group: "nope" })).out, [], "a group one is not in");
});

test("a hole is loaded from history once, and what it brings is delivered without duplicates", () => {
  const core = connected();
  core.frame(msg(1));
  assert.deepEqual(core.frame(msg(4)).of("fill"), [{ type: "fill", group: "g1", after: 1 }]);
  assert.deepEqual(core.frame(msg(5)).of("fill"), [], "one load at a time");
  core.do(core.session.filled("g1", [msg(2), msg(3), msg(4)]));
  assert.deepEqual(core.messages(), [2, 3]);
  assert.deepEqual(core.of("fill"), [], "no hole left");
  assert.equal(core.session.marks().marks.g1, 5);
});

test("after a reconnect only the groups that fell behind are resumed, from their marks; sends follow", () => {
  const core = connected([{ id: "g1", name: "One", last_seq: 4 }, { id: "g2", name: "Two", last_seq: 9 },
    { id: "g3", name: "Three", last_seq: 2 }]);
  assert.deepEqual(core.written(), [], "up to date as of `ready`: nothing to resume");
  core.frame(msg(5));
  core.do(core.session.send("g2", "hello?", "k-1"));
  core.do(core.session.closed());
  core.do(core.session.send("g3", "and this", "k-2"));
  assert.deepEqual(core.written(), [], "nothing is written while disconnected");

  core.frame(ready([{ id: "g1", name: "One", last_seq: 7 }, { id: "g2", name: "Two", last_seq: 9 },
    { id: "g3", name: "Three", last_seq: 3 }]));
  const [resume, ...sends] = core.written();
  assert.deepEqual(resume, { op: "resume", since: { g1: 5, g3: 2 } });
  assert.deepEqual(sends, [
    { op: "send", group: "g2", text: "hello?", ref: "k-1", idempotency_key: "k-1" },
    { op: "send", group: "g3", text: "and this", ref: "k-2", idempotency_key: "k-2" }], "the same keys");
  assert.deepEqual(core.emitted("resuming"), [{ since: { g1: 5, g3: 2 } }]);
  core.frame(msg(6));
  core.frame(msg(6));
  assert.deepEqual(core.frame({ op: "resumed" }).emitted("resumed"), [{}]);
});

test("a send is answered by its key; another tab's answer is not ours", () => {
  const core = connected();
  core.do(core.session.send("g1", "hi", "k-mine"));
  assert.deepEqual(core.frame({ op: "ack", ref: "k-other", idempotency_key: "k-other", group: "g1", seq: 1 }).out, []);
  assert.deepEqual(core.frame({ op: "ack", ref: "k-mine", idempotency_key: "k-mine", group: "g1", seq: 2, ts: 7 }).of("settle"),
    [{ type: "settle", key: "k-mine", value: { group: "g1", seq: 2, ts: 7, key: "k-mine" } }]);
  assert.equal(core.session.pending.size, 0);
});

test("a send the server could not take is retried as it says, a final refusal is not, and none forever", () => {
  const core = connected();
  core.do(core.session.send("g1", "fast", "k1"));
  assert.deepEqual(core.frame({ op: "error", ref: "k1", code: "rate_limited", retry_after_ms: 800 }).of("later"),
    [{ type: "later", ms: 800, key: "k1" }]);
  assert.deepEqual(core.do(core.session.retry("k1")).written("send").map((f) => f.idempotency_key), ["k1"]);
  for (let i = 2; i < MAX_SEND_ATTEMPTS; i++) {
    core.frame({ op: "error", ref: "k1", code: "unavailable" });
    core.do(core.session.retry("k1"));
  }
  const [settled] = core.frame({ op: "error", ref: "k1", code: "unavailable", message: "broker down" }).of("settle");
  assert.deepEqual(settled.error, { code: "unavailable", message: "broker down" });

  core.do(core.session.send("g1", "x", "k2"));
  assert.deepEqual(core.frame({ op: "error", ref: "k2", code: "not_member", message: "no" }).of("settle")[0].error,
    { code: "not_member", message: "no" });
});

test("unread: others' messages count, one's own and those the server already counted do not", () => {
  const core = connected([{ id: "g1", name: "One", last_seq: 5, unread: 2 }, { id: "g2", name: "Two", last_seq: 0 }]);
  assert.equal(core.session.unread(), 2);
  core.frame(msg(5)); // replayed: already in the server's count
  assert.equal(core.session.unread("g1"), 2);
  assert.deepEqual(core.frame(msg(6)).emitted("unread"), [{ group: "g1", count: 3, total: 3 }]);
  core.frame(msg(1, { group: "g2", from: ME }));
  core.frame(msg(2, { group: "g2", from: ME, system: true })); // a bot under my id is not me
  assert.equal(core.session.unread("g2"), 1);
  core.frame({ op: "read", group: "g1", seq: 6, unread: 0 });
  assert.deepEqual(core.emitted("unread"), [{ group: "g1", count: 0, total: 1 }]);
  core.frame({ op: "left", group: { id: "g2", name: "Two" } });
  assert.equal(core.session.unread(), 0);
});

test("marks saved by an earlier page are resumed from once, by the leader, for the same person", () => {
  const saved = { user: ME.id, marks: { g1: 3, gone: 9 } };
  const leader = connected([{ id: "g1", name: "One", last_seq: 8 }], { saved });
  assert.deepEqual(leader.written("resume"), [{ op: "resume", since: { g1: 3 } }]);

  const other = connected([{ id: "g1", name: "One", last_seq: 8 }], { saved: { ...saved, user: "u_else" } });
  assert.deepEqual(other.written("resume"), [], "another person's marks");
  const follower = connected([{ id: "g1", name: "One", last_seq: 8 }], { saved, leader: false });
  assert.deepEqual(follower.written("resume"), [], "a follower never resumes");
  assert.equal(follower.session.marks().marks.g1, 8);
});

test("a server that refuses resume resets the groups it was asked for", () => {
  const core = connected([{ id: "g1", name: "One", last_seq: 2 }]);
  core.do(core.session.closed());
  core.frame(ready([{ id: "g1", name: "One", last_seq: 5 }]));
  core.frame({ op: "error", code: "unknown_op", message: "unknown op 'resume'" });
  assert.deepEqual(core.emitted("reset"), [{ group: "g1" }]);
  assert.deepEqual(core.emitted("resumed"), [{}]);
  assert.deepEqual(core.frame(msg(5)).messages(), [], "up to date as of `ready` again");
  assert.deepEqual(core.frame({ op: "error", code: "unknown_op", message: "?" }).emitted("error"),
    [{ code: "unknown_op", message: "?" }], "other errors reach the app");
});

test("the refresh frame's answers go to the driver", () => {
  const core = connected();
  assert.deepEqual(core.frame({ op: "refreshed", expires_at: 99 }).out, [{ type: "refreshed", expiresAt: 99 }]);
  assert.deepEqual(core.frame({ op: "error", ref: REFRESH_REF, code: "unknown_op" }).out,
    [{ type: "refreshRefused", code: "unknown_op" }]);
});

test("a snapshot gives a joining tab the same groups, counts and marks", () => {
  const core = connected([{ id: "g1", name: "One", last_seq: 1, unread: 1 }]);
  core.frame(msg(2));
  core.frame({ op: "joined", group: { id: "g2", name: "Two" } });
  const tab = connected([], { leader: false });
  tab.frame(core.session.snapshot());
  assert.deepEqual(tab.session.groups.get("g1").unread, 2);
  assert.deepEqual(tab.frame(msg(2)).messages(), [], "what the leader had is not new to it");
  assert.deepEqual(tab.frame(msg(3)).messages(), [3]);
  assert.deepEqual([...tab.session.groups.keys()], ["g1", "g2"]);
});

test("a group joined while connected is resumed from its newest message at the time it was joined", () => {
  const core = connected();
  assert.deepEqual(core.frame({ op: "joined", group: { id: "g2", name: "Two" } }).of("probe"), [{ type: "probe", group: "g2" }]);
  core.do(core.session.probed("g2", 4));
  core.do(core.session.closed());
  core.frame(ready([{ id: "g1", name: "One", last_seq: 0 }, { id: "g2", name: "Two", last_seq: 6 }]));
  assert.deepEqual(core.written("resume"), [{ op: "resume", since: { g2: 4 } }], "what came while away is not skipped");

  const live = connected();
  live.frame({ op: "joined", group: { id: "g2", name: "Two" } });
  live.frame(msg(8, { group: "g2" }));
  live.do(live.session.probed("g2", 7)); // answered after a live message: the live one counts
  assert.equal(live.session.marks().marks.g2, 8);
});
