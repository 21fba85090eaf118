// What each server frame (docs/protocol.md) does to the page's state. Pure, like state.js,
// which routes `{type: "frame", frame}` events here by the frame's op.

import { holds } from "./groupbox.js";
import {
  MAX_SEND_ATTEMPTS, dropBox, get, has, isOwn, isViewing, loadLatest, normalizeMessage, select, sendFrame, setGroups,
  store, withGroup, without,
} from "./model.js";

export const RESUME_TIMEOUT_MS = 20000; // stop showing "Catching up…" if `resumed` never comes

const seqOrUndefined = (v) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * Ask for what was missed in every group the page holds messages for: those with messages
 * seen, and those whose (maybe empty) history was loaded, which are up to date as of then.
 */
export function resume(state, emit) {
  const since = {};
  for (const [id, box] of Object.entries(state.boxes)) {
    const seq = box.high ?? 0;
    if (has(state.groups, id) && (seq > 0 || box.loaded)) since[id] = seq;
  }
  if (!Object.keys(since).length) return state;
  const resumeId = state.resumeId + 1;
  emit({ type: "send", frame: { op: "resume", since } });
  emit({ type: "later", ms: RESUME_TIMEOUT_MS, event: { type: "resumeTimeout", id: resumeId } });
  return { ...state, catchingUp: true, resumeId };
}

/** Send again, with the same key, what a lost connection left unanswered. */
export function resendPending(state, emit) {
  if (!state.pending.some((p) => p.status === "waiting")) return state;
  const pending = state.pending.map((p) => {
    if (p.status !== "waiting") return p;
    if (p.attempts >= MAX_SEND_ATTEMPTS) {
      return { ...p, status: "failed", error: "the connection kept dropping before the server confirmed it" };
    }
    const again = { ...p, status: "sending", attempts: p.attempts + 1 };
    emit({ type: "send", frame: sendFrame(again) });
    return again;
  });
  return { ...state, pending };
}

/** The pending send an ack or error answers: by the echoed key if there is one, else by ref. */
function answered(state, frame) {
  if (typeof frame.idempotency_key === "string") {
    const p = state.pending.find((x) => x.key === frame.idempotency_key);
    if (p) return p;
  }
  return frame.ref === undefined ? undefined : state.pending.find((x) => x.ref === frame.ref);
}

/** The server cannot replay: whatever is held may have gaps. Reload from history instead. */
function resumeRefused(state, emit) {
  const s = { ...state, catchingUp: false, boxes: {} };
  return s.selected ? loadLatest(s, s.selected, emit) : s;
}

export const FRAMES = {
  ready(state, frame, emit) {
    let s = setGroups({ ...state, user: frame.user ?? state.user }, Array.isArray(frame.groups) ? frame.groups : []);
    for (const id of s.selectOnJoin) {
      if (has(s.groups, id)) s = { ...s, selected: id, selectOnJoin: s.selectOnJoin.filter((g) => g !== id) };
    }
    s = resume(s, emit);
    s = resendPending(s, emit);
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
    const unrefd = frame.ref === undefined;
    if (state.catchingUp && unrefd && (frame.code === "unknown_op" || frame.code === "invalid_argument")) {
      return resumeRefused(state, emit);
    }
    if (frame.code === "unknown_op" && unrefd) {
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
