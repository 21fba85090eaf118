// Messages as they arrive: in order, out of order, twice; holes found and filled; reset; the
// memory cap; and what a reconnecting page asks to resume from.

import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_MESSAGES_PER_GROUP } from "../../services/webgate/static/groupbox.js";
import { ME, Page, msg } from "./harness.mjs";

test("messages arriving in order are held in order and move the have-everything mark", () => {
  const page = Page.ready().open("g1");
  for (const seq of [1, 2, 3]) page.frame(msg(seq));
  assert.deepEqual(page.seqs("g1"), [1, 2, 3]);
  assert.equal(page.box("g1").high, 3);
  assert.deepEqual(page.fetches(), []);
});

test("a message past a hole is held, the hole is fetched once, and the mark waits for it", () => {
  const page = Page.ready().open("g1");
  page.frame(msg(1));
  const commands = page.frame(msg(4));
  assert.deepEqual(page.seqs("g1"), [1, 4]);
  assert.equal(page.box("g1").high, 1, "the mark stays below the hole");
  const [fill] = commands.filter((c) => c.type === "fetch");
  assert.deepEqual(fill, { type: "fetch", group: "g1", gen: page.box("g1").gen, kind: "after", after: 1 });
  assert.deepEqual(page.frame(msg(5)).filter((c) => c.type === "fetch"), [], "one fill at a time");

  page.on({ type: "history", group: "g1", gen: fill.gen, kind: "after", messages: [msg(2), msg(3), msg(4), msg(5)] });
  assert.deepEqual(page.seqs("g1"), [1, 2, 3, 4, 5], "no duplicates from the fill");
  assert.equal(page.box("g1").high, 5);
  assert.equal(page.box("g1").filling, false);
});

test("messages arriving out of order close the hole themselves", () => {
  const page = Page.ready().open("g1");
  page.frame(msg(1));
  page.frame(msg(3));
  page.frame(msg(2));
  assert.deepEqual(page.seqs("g1"), [1, 2, 3]);
  assert.equal(page.box("g1").high, 3);
});

test("a fill that leaves part of the hole asks for the rest, and one that brings nothing stops", () => {
  const page = Page.ready().open("g1");
  page.frame(msg(1));
  const [fill] = page.frame(msg(200)).filter((c) => c.type === "fetch");
  const part = Array.from({ length: 50 }, (_, i) => msg(2 + i));
  const [next] = page.on({ type: "history", group: "g1", gen: fill.gen, kind: "after", messages: part })
    .filter((c) => c.type === "fetch");
  assert.equal(page.box("g1").high, 51);
  assert.equal(next.after, 51, "the next page starts where this one ended");
  assert.deepEqual(page.on({ type: "history", group: "g1", gen: next.gen, kind: "after", messages: [] }), []);
  assert.equal(page.box("g1").filling, false, "no progress, no loop: the next live message tries again");
});

test("a duplicate seq is dropped and counted once", () => {
  const page = Page.ready();
  page.frame(msg(1));
  page.frame(msg(1, { text: "a replayed copy" }));
  assert.deepEqual(page.seqs("g1"), [1]);
  assert.equal(page.box("g1").list[0].text, "m1");
  assert.equal(page.state.groups.g1.unread, 1);
});

test("a group first seen live starts its mark at that message and loads the rest when opened", () => {
  const page = Page.ready();
  page.frame(msg(41));
  assert.equal(page.box("g1").high, 41);
  assert.deepEqual(page.fetches(), [], "no hole below the first message seen");
  page.open("g1", [msg(40), msg(39), msg(41)], true);
  assert.deepEqual(page.seqs("g1"), [39, 40, 41]);
  assert.equal(page.box("g1").more, true);
});

test("reset drops what is held and reloads the group on screen; answers for the old box are ignored", () => {
  const page = Page.ready().open("g1", [msg(1), msg(2)]);
  const oldGen = page.box("g1").gen;
  const [reload] = page.frame({ op: "reset", group: "g1" }).filter((c) => c.type === "fetch");
  assert.equal(reload.kind, "latest");
  assert.notEqual(reload.gen, oldGen);
  assert.deepEqual(page.seqs("g1"), []);
  page.on({ type: "history", group: "g1", gen: oldGen, kind: "latest", messages: [msg(1)] });
  assert.deepEqual(page.seqs("g1"), [], "a stale answer changes nothing");
  page.on({ type: "history", group: "g1", gen: reload.gen, kind: "latest", messages: [msg(300), msg(299)] });
  assert.deepEqual(page.seqs("g1"), [299, 300]);
});

test("reset of a group not on screen only forgets it, to be loaded when opened", () => {
  const page = Page.ready([{ id: "g1", name: "One" }, { id: "g2", name: "Two" }]).open("g1");
  page.frame(msg(5, { group: "g2" }));
  assert.deepEqual(page.frame({ op: "reset", group: "g2" }), []);
  assert.equal(page.box("g2"), undefined);
});

test("while chorus.js catches up the page says so, until `resumed` or a timeout of that resume", () => {
  const page = Page.ready([{ id: "g1", name: "One" }, { id: "g2", name: "Two" }]);
  page.open("g1", [msg(7), msg(6)]);
  page.on({ type: "closed", code: 1006 });
  page.frame({ op: "ready", user: ME, groups: [{ id: "g1", name: "One" }, { id: "g2", name: "Two" }] });
  const [timeout] = page.on({ type: "resuming" }).filter((c) => c.type === "later");
  assert.equal(page.state.catchingUp, true);
  page.frame(msg(8));
  page.frame({ op: "resumed" });
  assert.equal(page.state.catchingUp, false);
  assert.deepEqual(page.seqs("g1"), [6, 7, 8]);

  // A late timeout of an earlier resume does not end a newer one.
  page.on({ type: "closed", code: 1006 });
  page.frame({ op: "ready", user: ME, groups: [{ id: "g1", name: "One" }] });
  page.on({ type: "resuming" });
  page.on(timeout.event);
  assert.equal(page.state.catchingUp, true);
  assert.equal(page.box("g2"), undefined, "groups no longer in `ready` are forgotten");
  page.on({ type: "closed", code: 1006 });
  assert.equal(page.state.catchingUp, false, "a closed socket is not catching up");
});

test("live messages past the memory cap push the oldest out; history pages never do", () => {
  const page = Page.ready().open("g1");
  const many = Array.from({ length: MAX_MESSAGES_PER_GROUP }, (_, i) => msg(i + 1));
  page.on({ type: "history", group: "g1", gen: page.box("g1").gen, kind: "after", messages: many });
  page.frame(msg(MAX_MESSAGES_PER_GROUP + 1));
  assert.equal(page.box("g1").list.length, MAX_MESSAGES_PER_GROUP);
  assert.equal(page.seqs("g1")[0], 2);
  assert.equal(page.box("g1").more, true, "the dropped ones can be loaded again");
});

test("scrolling to the top loads the page before the oldest held message, once at a time", () => {
  const page = Page.ready().open("g1", [msg(60), msg(59), msg(58)], true);
  const [older] = page.on({ type: "needOlder", group: "g1" });
  assert.deepEqual([older.kind, older.before], ["older", 58]);
  assert.deepEqual(page.on({ type: "needOlder", group: "g1" }), [], "already on its way");
  page.on({ type: "history", group: "g1", gen: older.gen, kind: "older", before: 58, messages: [msg(57), msg(1)], more: false });
  assert.deepEqual(page.seqs("g1"), [1, 57, 58, 59, 60]);
  assert.equal(page.box("g1").more, false);
  assert.deepEqual(page.on({ type: "needOlder", group: "g1" }), [], "nothing older is left");
});
