// The WebSocket protocol's client side, sans-I/O: frames and calls in, outputs ({type, ...})
// out for chorus.js to carry out (docs/sdk.md, "Inside"). Invariants: each (group, seq) is emitted
// once (`mark`: all delivered up to it; `above`: seqs past it); a seq past mark + 1 is a hole,
// loaded from history; resume starts at the mark, from the leader only; a send keeps its key
// (also its ref) on every attempt and is written again after each `ready`.

import { sendRetryDelay } from "./policy.js";

export const REFRESH_REF = "chorus:refresh";
const RESUME_REFUSED = new Set(["unknown_op", "invalid_argument"]);

/** A message frame or history entry in the SDK's shape, or null when malformed. */
export function normalizeMessage(raw, group = raw?.group) {
  if (!raw || typeof group !== "string" || !Number.isSafeInteger(raw.seq)) return null;
  return { group, seq: raw.seq, ts: Number(raw.ts) || 0, from: raw.from ?? null, text: String(raw.text ?? ""),
    system: raw.system === true };
}

export class Session {
  /** `saved`: marks kept from an earlier page, {user, marks}, used once, by a leader only. */
  constructor({ saved = null, leader = true } = {}) {
    this.saved = saved;
    this.leader = leader;
    this.user = null;
    this.groups = new Map(); // id -> {id, name, unread, lastSeq, mark, above: Set, filling}
    this.pending = new Map(); // key -> {key, group, text, attempts}
    this.connected = false;
    this.resuming = null;     // the groups of the resume in flight
  }

  send(group, text, key) {
    if (!this.pending.has(key)) this.pending.set(key, { key, group, text, attempts: 0 });
    return this.retry(key);
  }

  retry(key) {
    const p = this.pending.get(key);
    const out = [];
    if (p && this.connected) this.write(p, out);
    return out;
  }

  markRead(group, seq) {
    return this.connected && this.groups.has(group) ? [{ type: "write", frame: { op: "read", group, seq } }] : [];
  }

  /** Disconnected: sends wait for the next `ready`. */
  closed() {
    this.connected = false;
    this.resuming = null;
    return [];
  }

  /** What to persist: {user, marks: {group: seq}}. */
  marks() {
    const marks = {};
    for (const g of this.groups.values()) if (g.mark !== undefined) marks[g.id] = g.mark;
    return { user: this.user?.id, marks };
  }

  unread(group) {
    if (group !== undefined) return this.groups.get(group)?.unread ?? 0;
    let total = 0;
    for (const g of this.groups.values()) total += g.unread;
    return total;
  }

  /** The state as a `ready` frame, for a tab that joins. */
  snapshot() {
    if (!this.user) return null;
    const groups = [...this.groups.values()].map((g) => ({ id: g.id, name: g.name, unread: g.unread,
      last_seq: Math.max(g.lastSeq ?? 0, g.mark ?? 0) }));
    return { op: "ready", user: this.user, groups };
  }

  received(frame) {
    const out = [];
    const handle = frame && Object.hasOwn(FRAMES, frame.op) ? FRAMES[frame.op] : null;
    if (handle) handle.call(this, frame, out);
    return out;
  }

  /** History after a hole: deliver what was missing. */
  filled(group, messages) {
    const out = [];
    const g = this.groups.get(group);
    if (!g) return out;
    const before = g.mark;
    for (const raw of messages) this.deliver(normalizeMessage(raw, group), out); // still filling: no nested load
    g.filling = false;
    if (g.mark > before && g.above.size) this.fillFrom(g, out); // progress, and still a hole: go on
    return out;
  }

  /** The newest seq of a group just joined: up to there is history. */
  probed(group, seq) {
    const g = this.groups.get(group);
    if (g && g.mark === undefined) g.mark = seq;
    return [];
  }

  write(p, out) {
    p.attempts += 1;
    out.push({ type: "write", frame: { op: "send", group: p.group, text: p.text, ref: p.key, idempotency_key: p.key } });
  }

  emitUnread(g, out) {
    out.push(emit("unread", { group: g.id, count: g.unread, total: this.unread() }));
  }

  deliver(msg, out) {
    const g = msg && this.groups.get(msg.group);
    if (!g) return false;
    if (g.mark === undefined) g.mark = msg.seq - 1; // first seen live: nothing owed before it
    if (msg.seq <= g.mark || g.above.has(msg.seq)) return false;
    g.above.add(msg.seq);
    while (g.above.delete(g.mark + 1)) g.mark += 1;
    out.push(emit("message", msg), { type: "save" });
    const counted = g.lastSeq !== undefined && msg.seq <= g.lastSeq; // the server's count has it
    if (g.lastSeq !== undefined) g.lastSeq = Math.max(g.lastSeq, msg.seq);
    const own = !msg.system && msg.from?.id === this.user?.id;
    if (!own && !counted) {
      g.unread += 1;
      this.emitUnread(g, out);
    }
    if (g.above.size && !g.filling) this.fillFrom(g, out);
    return true;
  }

  fillFrom(g, out) {
    g.filling = true;
    out.push({ type: "fill", group: g.id, after: g.mark });
  }

  addGroup(id, name, unread = 0, lastSeq = undefined) {
    const g = this.groups.get(id) ?? { id, mark: undefined, above: new Set(), filling: false };
    Object.assign(g, { name, unread, lastSeq });
    this.groups.set(id, g);
    return g;
  }

  /** Sends to groups one has left fail. */
  dropPending(gone, out) {
    for (const p of this.pending.values()) {
      if (!gone(p)) continue;
      this.pending.delete(p.key);
      out.push({ type: "settle", key: p.key, error: { code: "not_member", message: "not a member of that group" } });
    }
  }

  resetGroup(g, out) {
    Object.assign(g, { mark: g.lastSeq, above: new Set(), filling: false });
    out.push(emit("reset", { group: g.id }), { type: "save" });
  }
}

const emit = (name, data) => ({ type: "emit", name, data });
const seqOf = (v) => (Number.isSafeInteger(v) && v >= 0 ? v : undefined);
const nameOf = (group) => (typeof group.name === "string" ? group.name : group.id);

// One handler per server frame; `this` is the Session.
const FRAMES = {
  ready(frame, out) {
    const saved = this.leader && this.saved?.user === frame.user?.id ? this.saved.marks : {};
    this.saved = null;
    this.user = frame.user ?? this.user;
    const old = this.groups;
    this.groups = new Map();
    for (const raw of Array.isArray(frame.groups) ? frame.groups : []) {
      if (!raw || typeof raw.id !== "string") continue;
      const lastSeq = seqOf(raw.last_seq);
      const g = this.addGroup(raw.id, nameOf(raw), seqOf(raw.unread) ?? 0, lastSeq);
      const prev = old.get(raw.id);
      if (prev) Object.assign(g, { mark: prev.mark, above: prev.above });
      else if (seqOf(saved[raw.id]) !== undefined) g.mark = Math.min(saved[raw.id], lastSeq ?? Infinity);
      g.mark ??= lastSeq;
    }
    this.dropPending((p) => !this.groups.has(p.group), out);
    this.connected = true;
    out.push(emit("ready", { user: this.user, groups: frame.groups }), { type: "save" });
    const since = {};
    for (const g of this.groups.values()) {
      if (g.mark !== undefined && g.lastSeq !== undefined && g.mark < g.lastSeq) since[g.id] = g.mark;
    }
    if (this.leader && Object.keys(since).length) {
      this.resuming = Object.keys(since);
      out.push({ type: "write", frame: { op: "resume", since } }, emit("resuming", { since }));
    }
    for (const p of this.pending.values()) this.write(p, out); // after resume: a stored copy comes first
    this.emitUnread({ id: null, unread: this.unread() }, out);
  },

  message(frame, out) {
    this.deliver(normalizeMessage(frame), out);
  },

  ack(frame, out) {
    const key = this.pending.has(frame.idempotency_key) ? frame.idempotency_key : frame.ref;
    if (!this.pending.delete(key)) return; // another tab's send
    out.push({ type: "settle", key, value: { group: frame.group, seq: frame.seq, ts: frame.ts, key } });
  },

  error(frame, out) {
    if (frame.ref === REFRESH_REF) {
      out.push({ type: "refreshRefused", code: frame.code });
      return;
    }
    const p = this.pending.get(frame.ref);
    if (p) {
      const ms = sendRetryDelay(frame, p.attempts);
      if (ms !== null) out.push({ type: "later", ms, key: p.key });
      else {
        this.pending.delete(p.key);
        out.push({ type: "settle", key: p.key, error: { code: frame.code, message: frame.message || frame.code } });
      }
      return;
    }
    if (frame.ref !== undefined) return; // an answer to another tab
    if (this.resuming && RESUME_REFUSED.has(frame.code)) { // an older server: reload from history
      for (const id of this.resuming) if (this.groups.has(id)) this.resetGroup(this.groups.get(id), out);
      FRAMES.resumed.call(this, frame, out);
      return;
    }
    out.push(emit("error", { code: frame.code, message: frame.message }));
  },

  joined(frame, out) {
    const raw = frame.group;
    if (!raw || typeof raw.id !== "string") return;
    const g = this.groups.get(raw.id);
    if (g) g.name = nameOf(raw);
    else {
      this.addGroup(raw.id, nameOf(raw), 0, 0);
      out.push({ type: "probe", group: raw.id });
    }
    out.push(emit("joined", { group: { id: raw.id, name: nameOf(raw) } }));
  },

  left(frame, out) {
    const id = frame.group?.id;
    if (typeof id !== "string") return;
    this.groups.delete(id);
    this.dropPending((p) => p.group === id, out);
    out.push(emit("left", { group: frame.group }), { type: "save" });
    this.emitUnread({ id, unread: 0 }, out);
  },

  read(frame, out) {
    const g = this.groups.get(frame.group);
    const unread = seqOf(frame.unread);
    if (!g || unread === undefined) return;
    // The server's count now covers everything up to what was delivered.
    Object.assign(g, { unread, lastSeq: Math.max(g.lastSeq ?? 0, g.mark ?? 0) });
    out.push(emit("read", { group: g.id, seq: frame.seq, unread }));
    this.emitUnread(g, out);
  },

  reset(frame, out) {
    const g = this.groups.get(frame.group);
    if (g) this.resetGroup(g, out);
  },

  resumed(_frame, out) {
    this.resuming = null;
    out.push(emit("resumed", {}));
  },

  refreshed(frame, out) {
    out.push({ type: "refreshed", expiresAt: frame.expires_at });
  },
};
