// The page's state: its shape, what can be asked of it, and the operations that events share.
// Pure like everything state.js uses: no DOM, no fetch, no WebSocket, no clock, no randomness;
// every function returns a new state and leaves its argument untouched.
//
// Invariants:
//   - every group in `boxes`, `drafts`, `readSent` and every pending send is in `groups`;
//   - `selected` is null or in `groups`;
//   - a pending send keeps its `key` (the send's idempotency key) for its whole life: chorus.js
//     retries it automatically with that key, and a retry by hand passes the same key again, so
//     the server can tell a retry from a new message.

import { insert, newBox } from "./groupbox.js";

export function initialState({ config = null, visible = true } = {}) {
  return {
    config,              // the server's limits (GET /api/config); null until known
    visible,             // the tab is visible
    user: null,          // {id, username, display_name}
    conn: "offline",     // "offline" | "connecting" | "connected" (from the socket)
    retryAt: null,       // when the socket reconnects (ms since the epoch), if it waits
    catchingUp: false,   // between chorus.js's `resume` and the server's `resumed`
    resumeId: 0,
    groups: {},          // id -> {id, name, unread, lastSeq}; lastSeq: newest seq the server's
                         //   `unread` already counts (undefined: unknown)
    selected: null,
    boxes: {},           // group id -> the messages held (groupbox.js)
    nextGen: 1,
    readSent: {},        // group id -> highest seq sent in a `read` frame
    pending: [],         // sends not yet acknowledged, oldest first:
                         //   {ref, key, group, text, ts, from, status, error}
                         //   status: "sending" (with chorus.js, which retries it across reconnects)
                         //   | "failed" (refused, or lost too often: retry or discard by hand)
    nextRef: 1,
    selectOnJoin: [],    // group ids to select when they appear
    drafts: {},          // group id -> unsent composer text
    stick: 0,            // bumped when the message list must jump to the newest message
  };
}

// ---------------------------------------------------------------- selectors

const pageVisible = (state) => state.visible;

/** The person is looking at this group: it is selected and the tab is visible. */
export const isViewing = (state, id) => !!id && id === state.selected && pageVisible(state);

export const isOwn = (state, msg) => !!state.user && !!msg.from && !msg.system && msg.from.id === state.user.id;

export const canSend = (state) =>
  !!state.selected && has(state.groups, state.selected) && state.conn === "connected" && state.config !== null;

export const pendingFor = (state, id) => state.pending.filter((p) => p.group === id);

export const totalUnread = (state) => Object.values(state.groups).reduce((n, g) => n + g.unread, 0);

export const sortedGroups = (state) =>
  Object.values(state.groups).sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }));

/** Characters as the server counts them (code points, not UTF-16 units). */
export const charCount = (text) => [...text].length;

/** Strip leading blank lines and trailing whitespace; keep the first line's indentation. */
export const cleanText = (text) => text.replace(/^(\s*\n)+/, "").replace(/\s+$/, "");

const seqOrUndefined = (v) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** A message (frame or history entry) in the page's shape, or null if malformed. */
export function normalizeMessage(raw, groupId) {
  if (!raw || typeof raw !== "object") return null;
  const group = typeof raw.group === "string" ? raw.group : groupId;
  if (typeof group !== "string" || typeof raw.seq !== "number") return null;
  const from = raw.from && typeof raw.from === "object" ? raw.from : null;
  return {
    group,
    seq: raw.seq,
    ts: typeof raw.ts === "number" ? raw.ts : 0,
    from,
    text: typeof raw.text === "string" ? raw.text : "",
    system: raw.system === true,
  };
}

// ---------------------------------------------------------------- small immutable updates

// Maps are plain objects keyed by id; only own keys count ("constructor" is no group).
export const has = (obj, key) => typeof key === "string" && Object.hasOwn(obj, key);
export const get = (obj, key) => (has(obj, key) ? obj[key] : undefined);

export const without = (obj, key) => {
  const { [key]: _dropped, ...rest } = obj;
  return rest;
};

export const withGroup = (state, id, change) =>
  ({ ...state, groups: { ...state.groups, [id]: { ...state.groups[id], ...change } } });

export const withBox = (state, id, box) => ({ ...state, boxes: { ...state.boxes, [id]: box } });

/** The state with a box for the group (a new one if none), and that box. */
export function ensureBox(state, id) {
  if (has(state.boxes, id)) return [state, state.boxes[id]];
  const box = newBox(state.nextGen);
  return [{ ...withBox(state, id, box), nextGen: state.nextGen + 1 }, box];
}

export const dropBox = (state, id) => ({ ...state, boxes: without(state.boxes, id) });

/** Merge messages into a group's box; fetch a hole the merge revealed. */
export function store(state, id, messages, { live }, emit) {
  const [withIt, box] = ensureBox(state, id);
  const { box: merged, added, hole } = insert(box, messages, { live });
  return [fillHole(withBox(withIt, id, merged), id, hole, emit), added];
}

export function fillHole(state, id, after, emit) {
  const box = state.boxes[id];
  if (after === null || box.filling) return state;
  emit({ type: "fetch", group: id, gen: box.gen, kind: "after", after });
  return withBox(state, id, { ...box, filling: true });
}

/** Load the latest page of a group's history, unless it is on its way. */
export function loadLatest(state, id, emit) {
  const [withIt, box] = ensureBox(state, id);
  if (box.loading) return withIt;
  emit({ type: "fetch", group: id, gen: box.gen, kind: "latest" });
  return withBox(withIt, id, { ...box, loading: true, error: "" });
}

/** Replace the group list (from `ready` or /api/me). `unread` and `last_seq` come from the
 * server when it sends them; otherwise the page keeps its own counts. */
export function setGroups(state, list) {
  const groups = {};
  for (const g of list) {
    if (!g || typeof g.id !== "string") continue;
    const prev = state.groups[g.id];
    const unread = seqOrUndefined(g.unread);
    groups[g.id] = {
      id: g.id,
      name: typeof g.name === "string" ? g.name : g.id,
      unread: unread ?? prev?.unread ?? 0,
      lastSeq: unread !== undefined ? seqOrUndefined(g.last_seq) : prev?.lastSeq,
    };
  }
  const keep = (obj) => Object.fromEntries(Object.entries(obj).filter(([id]) => has(groups, id)));
  return {
    ...state,
    groups,
    boxes: keep(state.boxes),
    drafts: keep(state.drafts),
    readSent: keep(state.readSent),
    pending: state.pending.filter((p) => has(groups, p.group)),
    selected: has(groups, state.selected) ? state.selected : null,
  };
}

/** Select a group: unread cleared if seen, history loaded if not held, a read marker due. */
export function select(state, id, emit) {
  if (!has(state.groups, id)) return state;
  let s = state;
  if (s.selected && s.selected !== id && pageVisible(s)) emit({ type: "flushRead", group: s.selected });
  s = { ...s, selected: id, stick: s.stick + 1, selectOnJoin: s.selectOnJoin.filter((g) => g !== id) };
  if (isViewing(s, id)) s = withGroup(s, id, { unread: 0 });
  if (!s.boxes[id]?.loaded) s = loadLatest(s, id, emit);
  emit({ type: "scheduleRead", group: id, again: true });
  return s;
}

/** The command that posts a pending message: the same key on every attempt. */
export const postCommand = (p) => ({ type: "post", ref: p.ref, key: p.key, group: p.group, text: p.text });
