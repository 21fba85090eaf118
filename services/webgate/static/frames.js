// What each server frame (docs/protocol.md) does to the page's state. Pure, like state.js,
// which routes `{type: "frame", frame}` events here by the frame's op. The frames come from
// chorus.js (docs/sdk.md), which already resumed after a reconnect, dropped duplicates and
// retried sends; an `ack` or an `error` of a send is the settled promise of chorus.js's send().

import { holds } from "./groupbox.js";
import {
  dropBox, get, has, isOwn, isViewing, loadLatest, normalizeMessage, select, setGroups, store, withGroup, without,
} from "./model.js";

const seqOrUndefined = (v) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** The pending send an ack or error answers: by the echoed key if there is one, else by ref. */
function answered(state, frame) {
  if (typeof frame.idempotency_key === "string") {
    const p = state.pending.find((x) => x.key === frame.idempotency_key);
    if (p) return p;
  }
  return frame.ref === undefined ? undefined : state.pending.find((x) => x.ref === frame.ref);
}

export const FRAMES = {
  ready(state, frame, emit) {
    let s = setGroups({ ...state, user: frame.user ?? state.user }, Array.isArray(frame.groups) ? frame.groups : []);
    for (const id of s.selectOnJoin) {
      if (has(s.groups, id)) s = { ...s, selected: id, selectOnJoin: s.selectOnJoin.filter((g) => g !== id) };
    }
    if (s.selected) {
      if (isViewing(s, s.selected)) {
        s = withGroup(s, s.selected, { unread: 0 });
        emit({ type: "scheduleRead", group: s.selected, again: true });
      }
      if (!s.boxes[s.selected]?.loaded) s = loadLatest(s, s.selected, emit);
    }
    return s;
  },

  message(state, frame, emit) {
    const msg = normalizeMessage(frame);
    if (!msg || !has(state.groups, msg.group)) return state;
    let [s, added] = store(state, msg.group, [msg], { live: true }, emit);
    if (!added.length) return s;
    const group = s.groups[msg.group];
    const counted = group.lastSeq !== undefined && msg.seq <= group.lastSeq; // already in `unread`
    if (group.lastSeq !== undefined) s = withGroup(s, msg.group, { lastSeq: Math.max(group.lastSeq, msg.seq) });
    if (isViewing(s, msg.group)) {
      emit({ type: "scheduleRead", group: msg.group, again: false });
      return s;
    }
    if (!isOwn(s, msg) && !counted) s = withGroup(s, msg.group, { unread: group.unread + 1 });
    return s;
  },

  ack(state, frame, emit) {
    const p = answered(state, frame);
    if (!p || typeof frame.seq !== "number") return state;
    let s = { ...state, pending: state.pending.filter((x) => x !== p) };
    const id = typeof frame.group === "string" ? frame.group : p.group;
    if (!has(s.groups, id)) return s;
    if (!s.boxes[id] || !holds(s.boxes[id], frame.seq)) {
      // The `message` frame has not arrived yet: hold the confirmed message now; it dedupes later.
      const msg = { group: id, seq: frame.seq, ts: typeof frame.ts === "number" ? frame.ts : p.ts,
        from: s.user, text: p.text, system: false };
      [s] = store(s, id, [msg], { live: true }, emit);
    }
    if (isViewing(s, id)) emit({ type: "scheduleRead", group: id, again: false });
    return s;
  },

  error(state, frame, emit) {
    const p = answered(state, frame);
    if (p) {
      const failed = { ...p, status: "failed", error: frame.message || frame.code || "error" };
      return { ...state, pending: state.pending.map((x) => (x === p ? failed : x)) };
    }
    if (frame.code === "unknown_op" && frame.ref === undefined) {
      // A frame this server does not know (an older gateway): nothing the person can act on.
      emit({ type: "warn", text: `chorus: the server refused a frame: ${frame.message}` });
      return state;
    }
    emit({ type: "toast", text: frame.message || `Error: ${frame.code || "unknown"}` });
    return state;
  },

  joined(state, frame, emit) {
    const g = frame.group;
    if (!g || typeof g.id !== "string") return state;
    const name = typeof g.name === "string" ? g.name : g.id;
    const s = has(state.groups, g.id)
      ? withGroup(state, g.id, { name })
      : { ...state, groups: { ...state.groups, [g.id]: { id: g.id, name, unread: 0, lastSeq: undefined } } };
    emit({ type: "membership", group: g.id, joined: true });
    return s.selectOnJoin.includes(g.id) ? select(s, g.id, emit) : s;
  },

  left(state, frame, emit) {
    const id = frame.group?.id;
    if (typeof id !== "string") return state;
    emit({ type: "membership", group: id, joined: false });
    if (!has(state.groups, id)) return state;
    const s = dropBox(state, id);
    return {
      ...s,
      groups: without(s.groups, id),
      drafts: without(s.drafts, id),
      readSent: without(s.readSent, id),
      pending: s.pending.filter((p) => p.group !== id),
      selectOnJoin: s.selectOnJoin.filter((g) => g !== id),
      selected: s.selected === id ? null : s.selected,
    };
  },

  resumed(state) {
    return { ...state, catchingUp: false };
  },

  /** Too much was missed in a group: drop what is held; reload it if it is on screen. */
  reset(state, frame, emit) {
    const id = frame.group;
    if (typeof id !== "string" || !has(state.groups, id)) return state;
    const s = dropBox(state, id);
    return id === s.selected ? loadLatest({ ...s, stick: s.stick + 1 }, id, emit) : s;
  },

  /** A read marker was stored (by this page or, if the server tells, another of the person's). */
  read(state, frame, emit) {
    const group = get(state.groups, frame.group);
    if (!group || typeof frame.seq !== "number") return state;
    let s = state;
    if (frame.seq > (s.readSent[group.id] ?? 0)) s = { ...s, readSent: { ...s.readSent, [group.id]: frame.seq } };
    const unread = seqOrUndefined(frame.unread);
    if (unread === undefined) return s;
    if (isViewing(s, group.id) && unread > 0) {
      // Still unread here, yet on screen: mark what is shown (if newer than the answer's seq).
      emit({ type: "scheduleRead", group: group.id, again: false });
      return s;
    }
    // The server's count now covers everything up to what we have seen.
    const high = s.boxes[group.id]?.high ?? 0;
    return withGroup(s, group.id, { unread, lastSeq: Math.max(group.lastSeq ?? 0, high) });
  },

  pong(state) {
    return state;
  },
};
