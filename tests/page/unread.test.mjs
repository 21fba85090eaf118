// Unread counts and read markers; groups joined, selected and left.

import assert from "node:assert/strict";
import { test } from "node:test";

import { initialState, reduce, totalUnread } from "../../services/webgate/static/state.js";
import { ME, Page, msg } from "./harness.mjs";

const TWO = [{ id: "g1", name: "One", last_seq: 0, unread: 0 }, { id: "g2", name: "Two", last_seq: 0, unread: 0 }];

test("others' messages in a group not on screen count as unread; one's own do not", () => {
  const page = Page.ready(TWO).open("g1");
  page.frame(msg(1, { group: "g2" }));
  page.frame(msg(2, { group: "g2" }));
  page.frame(msg(3, { group: "g2", from: ME }));
  assert.equal(page.state.groups.g2.unread, 2);
  assert.equal(totalUnread(page.state), 2);
});

test("a message in the group on screen is not unread; a read marker is scheduled", () => {
  const page = Page.ready(TWO).open("g1");
  const commands = page.frame(msg(1));
  assert.equal(page.state.groups.g1.unread, 0);
  assert.deepEqual(commands, [{ type: "scheduleRead", group: "g1", again: false }]);
});

test("with the tab hidden, messages on screen count as unread until it is shown again", () => {
  const page = Page.ready(TWO).open("g1");
  assert.deepEqual(page.on({ type: "visibility", visible: false }), [{ type: "flushRead", group: "g1" }]);
  page.frame(msg(1));
  assert.equal(page.state.groups.g1.unread, 1);
  assert.deepEqual(page.on({ type: "visibility", visible: true }), [{ type: "scheduleRead", group: "g1" }]);
  assert.equal(page.state.groups.g1.unread, 0);
});

test("messages the server's count already includes are not counted twice on replay", () => {
  const page = Page.ready([{ id: "g1", name: "One" }, { id: "g2", name: "Two", last_seq: 5, unread: 2 }]).open("g1");
  page.frame(msg(4, { group: "g2" }));
  page.frame(msg(5, { group: "g2" }));
  assert.equal(page.state.groups.g2.unread, 2);
  page.frame(msg(6, { group: "g2" }));
  assert.equal(page.state.groups.g2.unread, 3);
});

test("opening a group clears its count and asks for a read marker, sent with the mark", () => {
  const page = Page.ready(TWO).open("g1");
  page.frame(msg(1, { group: "g2" }));
  page.frame(msg(2, { group: "g2" }));
  const commands = page.on({ type: "select", group: "g2" });
  assert.equal(page.state.groups.g2.unread, 0);
  assert.deepEqual(commands.filter((c) => c.type !== "fetch"),
    [{ type: "flushRead", group: "g1" }, { type: "scheduleRead", group: "g2", again: true }]);
  assert.deepEqual(page.on({ type: "readDue", group: "g2", again: true }), [
    { type: "markRead", group: "g2", seq: 2 }]);
  assert.deepEqual(page.on({ type: "readDue", group: "g2" }), [], "the same seq is not sent again");
  assert.equal(page.on({ type: "readDue", group: "g2", again: true }).length, 1, "unless asked (after a reconnect)");
});

test("a read marker is never sent for a group off screen, unless flushed as the person leaves it", () => {
  const page = Page.ready(TWO).open("g1");
  page.frame(msg(3, { group: "g2" }));
  assert.deepEqual(page.on({ type: "readDue", group: "g2" }), []);
  page.frame(msg(1));
  page.on({ type: "select", group: "g2" });
  assert.deepEqual(page.on({ type: "readDue", group: "g1", flush: true }).filter((c) => c.type === "markRead"),
    [{ type: "markRead", group: "g1", seq: 1 }]);
});

test("the server's read answer sets the count, except while unread messages are on screen", () => {
  const page = Page.ready(TWO).open("g1");
  page.frame(msg(1, { group: "g2" }));
  page.frame({ op: "read", group: "g2", seq: 1, unread: 0 });
  assert.equal(page.state.groups.g2.unread, 0);
  assert.deepEqual(page.frame({ op: "read", group: "g1", seq: 0, unread: 4 }),
    [{ type: "scheduleRead", group: "g1", again: false }]);
  assert.equal(page.state.groups.g1.unread, 0);
});

test("a group joined from elsewhere appears; one being joined here is selected when it does", () => {
  const page = Page.ready(TWO).open("g1");
  assert.deepEqual(page.frame({ op: "joined", group: { id: "g3", name: "Three" } }),
    [{ type: "membership", group: "g3", joined: true }]);
  assert.equal(page.state.selected, "g1");
  page.on({ type: "wantSelect", group: "g4" });
  page.frame({ op: "joined", group: { id: "g4", name: "Four" } });
  assert.equal(page.state.selected, "g4");
  assert.deepEqual(page.state.selectOnJoin, []);
});

test("each group keeps its own draft", () => {
  const page = Page.ready(TWO).open("g1");
  page.on({ type: "draft", text: "half a thought" });
  page.open("g2");
  assert.equal(page.state.drafts.g2, undefined);
  page.open("g1");
  assert.equal(page.state.drafts.g1, "half a thought");
});

test("ids are own keys only: a frame naming 'constructor' or '__proto__' is ignored", () => {
  const page = Page.ready(TWO);
  for (const group of ["constructor", "__proto__", "toString"]) {
    assert.deepEqual(page.frame(msg(1, { group })), []);
    assert.deepEqual(page.frame({ op: "read", group, seq: 1, unread: 0 }), []);
    assert.deepEqual(page.on({ type: "select", group }), []);
  }
  assert.deepEqual(Object.keys(page.state.boxes), []);
});

test("logging out forgets the session but not the server's limits", () => {
  const page = Page.ready(TWO).open("g1", [msg(1)]);
  page.on({ type: "loggedOut" });
  assert.deepEqual([page.state.user, page.state.groups, page.state.boxes, page.state.pending], [null, {}, {}, []]);
  assert.equal(page.state.config.maxTextChars, 20);
});

test("an unknown event is a bug and says so; an unknown frame is ignored", () => {
  assert.throws(() => reduce(initialState(), { type: "nonsense" }), /unknown event type "nonsense"/);
  assert.deepEqual(Page.ready().frame({ op: "from-the-future" }), []);
});
