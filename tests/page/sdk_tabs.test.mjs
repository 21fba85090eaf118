// One WebSocket for every tab of an origin (sdk/tabs.js): tabs, their lock queue, their channel
// and a server simulated in memory, each tab running its own Session as chorus.js does. The
// server counts the sockets opened; closing the leader hands the socket to the next tab, which
// resumes from its own marks, so no tab misses a message.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Session } from "../../services/webgate/static/sdk/session.js";
import { TabLink } from "../../services/webgate/static/sdk/tabs.js";

const ME = { id: "u_me", username: "me" };

/** The server: one group's stored messages, and at most the one socket of the current leader. */
class Server {
  constructor() {
    this.stored = [];
    this.socket = null;
    this.connections = 0;
  }

  connect(tab) {
    this.socket = tab;
    this.connections += 1;
    tab.run(tab.link.statusChanged({ status: "connected" }));
    this.toSocket({ op: "ready", user: ME, groups: [{ id: "g1", name: "One", last_seq: this.stored.length, unread: 0 }] });
  }

  disconnect(tab) {
    if (this.socket === tab) this.socket = null;
  }

  toSocket(frame) {
    this.socket?.run(this.socket.link.fromSocket(structuredClone(frame)));
  }

  post(text, from = { id: "u_bob" }) {
    const frame = { op: "message", group: "g1", seq: this.stored.length + 1, ts: 0, from, text };
    this.stored.push(frame);
    this.toSocket(frame);
    return frame;
  }

  written(tab, frame) {
    assert.ok(tab.link.leader, "only the leader writes on the socket");
    if (tab !== this.socket) return; // its socket is gone: the frame is lost
    if (frame.op === "send") {
      const { seq } = this.post(frame.text, ME);
      this.toSocket({ op: "ack", ref: frame.ref, idempotency_key: frame.idempotency_key, group: "g1", seq, ts: 0 });
    } else if (frame.op === "resume") {
      for (const m of this.stored.slice(frame.since.g1)) this.toSocket(m);
      this.toSocket({ op: "resumed" });
    }
  }
}

/** One origin in one browser: its tabs, the Web Lock's queue and the BroadcastChannel. */
class Browser {
  constructor(server) {
    this.server = server;
    this.tabs = [];
    this.queue = [];
    this.holder = null;
  }

  open(id) {
    const tab = new Tab(this, id);
    this.tabs.push(tab);
    tab.run(tab.link.start());
    this.queue.push(tab);
    this.grant();
    return tab;
  }

  close(tab) {
    this.tabs = this.tabs.filter((t) => t !== tab);
    this.queue = this.queue.filter((t) => t !== tab);
    this.server.disconnect(tab);
    for (const t of this.tabs) t.run(t.link.fromChannel({ k: "status", status: { status: "connecting" } }));
    if (this.holder === tab) {
      this.holder = null;
      this.grant();
    }
  }

  grant() {
    if (this.holder || !this.queue.length) return;
    this.holder = this.queue.shift();
    this.holder.run(this.holder.link.elected());
  }

  /** A BroadcastChannel never delivers to its sender; every message is a copy. */
  post(from, msg) {
    for (const tab of this.tabs) if (tab !== from) tab.run(tab.link.fromChannel(structuredClone(msg)));
  }
}

class Tab {
  constructor(browser, id) {
    this.browser = browser;
    this.link = new TabLink(id);
    this.session = new Session({ leader: false });
    this.status = { status: "connecting" };
    this.seen = [];
    this.settled = [];
  }

  run(outputs) {
    for (const out of outputs) {
      if (out.post) this.browser.post(this, out.post);
      if (out.socket) this.browser.server.written(this, out.socket);
      if (out.deliver) this.apply(this.session.received(out.deliver));
      if (out.status) {
        if (out.status.status !== "connected") this.apply(this.session.closed());
        this.status = out.status;
      }
      if (out.connect) {
        this.session.leader = true;
        this.browser.server.connect(this);
      }
      if (out.snapshot) this.browser.post(this, { k: "snap", to: out.snapshot, status: this.status, ready: this.session.snapshot() });
    }
  }

  apply(outputs) {
    for (const out of outputs) {
      if (out.type === "write") this.run(this.link.write(out.frame));
      if (out.type === "emit" && out.name === "message") this.seen.push(out.data.text);
      if (out.type === "settle") this.settled.push(out.value?.seq);
    }
  }

  send(text, key) {
    this.apply(this.session.send("g1", text, key));
  }
}

test("three tabs share one socket: every tab gets every message once, and a follower's send goes through the leader", () => {
  const server = new Server();
  const browser = new Browser(server);
  const [a, b, c] = ["a", "b", "c"].map((id) => browser.open(id));
  assert.equal(server.connections, 1);
  assert.deepEqual([a.link.leader, b.link.leader, c.link.leader], [true, false, false]);
  assert.deepEqual([b.status.status, c.status.status], ["connected", "connected"], "followers asked the leader");

  server.post("hello");
  c.send("from c", "k-c");
  assert.deepEqual([a.seen, b.seen, c.seen], [["hello", "from c"], ["hello", "from c"], ["hello", "from c"]]);
  assert.deepEqual([a.settled, b.settled, c.settled], [[], [], [2]], "the ack settles the sender's promise only");
  assert.equal(server.connections, 1);
});

test("closing the leader moves the socket to the next tab, which resumes: nothing is lost", () => {
  const server = new Server();
  const browser = new Browser(server);
  const [a, b, c] = ["a", "b", "c"].map((id) => browser.open(id));
  server.post("one");
  browser.close(a);
  server.post("two: while no tab held the socket");
  assert.deepEqual(b.seen, ["one", "two: while no tab held the socket"], "b led, connected and resumed at once");
  assert.equal(b.link.leader, true);
  assert.equal(server.connections, 2);
  server.post("three");
  assert.deepEqual(c.seen, ["one", "two: while no tab held the socket", "three"]);
  assert.deepEqual(b.seen, c.seen);
});

test("a send written while the leader changed goes again after the new leader's ready, with its key", () => {
  const server = new Server();
  const browser = new Browser(server);
  const [a, b] = ["a", "b"].map((id) => browser.open(id));
  server.socket = null; // the leader's socket is gone; b does not know yet
  b.send("lost on the way", "k-b");
  browser.close(a);
  assert.deepEqual(b.settled, [1]);
  assert.deepEqual(server.stored.map((m) => m.text), ["lost on the way"], "stored once");
  assert.deepEqual(b.seen, ["lost on the way"]);
});

test("a tab opened later learns the groups from the leader and then gets what comes live", () => {
  const server = new Server();
  const browser = new Browser(server);
  browser.open("a");
  server.post("before d");
  const d = browser.open("d");
  assert.deepEqual([...d.session.groups.keys()], ["g1"]);
  assert.equal(d.status.status, "connected");
  server.post("after d");
  assert.deepEqual(d.seen, ["after d"], "what came before it opened is history, not news");
});
