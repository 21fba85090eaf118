// The page's state and every decision about it. Pure: no DOM, no fetch, no WebSocket, no clock,
// no randomness. `reduce(state, event)` returns `{state, commands}`: the new state (the old one is
// never changed) and what the page must do because of the event, as data, for main.js to carry out:
//
//   {type: "post", ref, key, group, text}          post a message through chorus.js (its send(),
//                                                  which retries; its answer comes back as an
//                                                  `ack` or `error` frame with that ref and key)
//   {type: "markRead", group, seq}                 store a read marker (chorus.js's markRead())
//   {type: "fetch", group, gen, kind, before?, after?}
//                                                  load history (kind "latest", "older" or a hole,
//                                                  "after"); answer with a "history" or
//                                                  "historyFailed" event carrying the same gen
//   {type: "scheduleRead", group, again}           a `read` is due soon (debounced): "readDue" later
//   {type: "flushRead", group}                     ... due now, if one is scheduled
//   {type: "later", ms, event}                     dispatch `event` after `ms`
//   {type: "membership", group, joined}            a group was joined or left (the directory shows it)
//   {type: "toast", text} / {type: "warn", text}   tell the person / the console
//
// The state's shape and invariants are in model.js; the server frames' handlers in frames.js.
// The connection itself (reconnects, resume, duplicates, send retries, tab sharing) is
// chorus.js's (docs/sdk.md): this module gets what it delivers.
// Events are a table (EVENTS), one handler each; so are history answers, by kind of request.

import { hasHole, oldestSeq } from "./groupbox.js";
import { FRAMES } from "./frames.js";
import {
  canSend, charCount, cleanText, fillHole, get, has, initialState, isViewing, normalizeMessage, postCommand, select,
  setGroups, store, withBox, withGroup, without,
} from "./model.js";

export * from "./model.js";

export const OLDER_RETRY_MS = 3000; // after a failed "older" load, scrolling tries again after this
export const RESUME_TIMEOUT_MS = 20000; // stop showing "Catching up…" if `resumed` never comes

export function reduce(state, event) {
  const handle = EVENTS[event.type];
  if (!handle) throw new TypeError(`unknown event type ${JSON.stringify(event.type)}`);
  const commands = [];
  const next = handle(state, event, (command) => commands.push(command));
  return { state: next, commands };
}

// ---------------------------------------------------------------- events

const EVENTS = {
  /** The server's limits: {config: {max_text_chars, history_page, ...}} as /api/config sends them. */
  config(state, { config }) {
    const number = (v, fallback) => (Number.isInteger(v) && v > 0 ? v : fallback);
    if (!config || !Number.isInteger(config.max_text_chars)) return state;
    return {
      ...state,
      config: {
        maxTextChars: config.max_text_chars,
        historyPage: number(config.history_page, null),
        maxHistoryPage: number(config.max_history_page, null),
        maxKeyChars: number(config.max_idempotency_key_chars, 36),
      },
    };
  },

  /** Logged in (or the stored token still works): {user, groups?}. */
  session(state, { user, groups }) {
    const s = { ...state, user: user ?? state.user };
    return Array.isArray(groups) ? setGroups(s, groups) : s;
  },

  /** Logged out: nothing of the session stays. */
  loggedOut(state) {
    // Box and resume ids go on counting, so no answer or timer of the old session matches.
    return { ...initialState({ config: state.config, visible: state.visible }),
      nextGen: state.nextGen, resumeId: state.resumeId };
  },

  /** The socket's state: {status, retryAt}. */
  conn(state, { status, retryAt = null }) {
    return { ...state, conn: status, retryAt };
  },

  /** The socket closed: unacknowledged sends stay pending (chorus.js sends them again). */
  closed(state) {
    return state.catchingUp ? { ...state, catchingUp: false } : state;
  },

  /** chorus.js asked the server for what was missed: "Catching up…" until `resumed`. */
  resuming(state, _event, emit) {
    const resumeId = state.resumeId + 1;
    emit({ type: "later", ms: RESUME_TIMEOUT_MS, event: { type: "resumeTimeout", id: resumeId } });
    return { ...state, catchingUp: true, resumeId };
  },

  /** A server frame: {frame}. Unknown ops are ignored (a newer server may send more). */
  frame(state, { frame }, emit) {
    const handle = frame && typeof frame === "object" && Object.hasOwn(FRAMES, frame.op) ? FRAMES[frame.op] : null;
    return handle ? handle(state, frame, emit) : state;
  },

  /** A history request answered: {group, gen, kind, messages, more, before?}. */
  history(state, event, emit) {
    const box = get(state.boxes, event.group);
    if (!box || box.gen !== event.gen) return state; // dropped meanwhile: a stale answer
    const page = (Array.isArray(event.messages) ? event.messages : [])
      .map((m) => normalizeMessage(m, event.group)).filter((m) => m && m.group === event.group);
    return HISTORY[event.kind](state, box, page, event, emit);
  },

  /** A history request failed: {group, gen, kind, status, message}. */
  historyFailed(state, event, emit) {
    const box = get(state.boxes, event.group);
    if (!box || box.gen !== event.gen) return state;
    return HISTORY_FAILED[event.kind](state, box, event, emit);
  },

  /** The list was scrolled near its top: load older messages if there are any. */
  needOlder(state, { group: id }, emit) {
    const box = get(state.boxes, id);
    const before = box && oldestSeq(box);
    if (!box || !box.loaded || box.older || box.more !== true || before === null) return state;
    emit({ type: "fetch", group: id, gen: box.gen, kind: "older", before });
    return withBox(state, id, { ...box, older: true });
  },

  olderAllowed(state, { group: id, gen }) {
    const box = get(state.boxes, id);
    return box && box.gen === gen ? withBox(state, id, { ...box, older: false }) : state;
  },

  /** The person picked a group: {group}. */
  select(state, { group }, emit) {
    return select(state, group, emit);
  },

  /** Select a group as soon as it is there (joining or creating it): {group}. */
  wantSelect(state, { group }, emit) {
    if (has(state.groups, group)) return select(state, group, emit);
    return state.selectOnJoin.includes(group) ? state : { ...state, selectOnJoin: [...state.selectOnJoin, group] };
  },

  /** The composer's text changed: {text}. Each group keeps its own draft. */
  draft(state, { text }) {
    if (!state.selected) return state;
    return { ...state, drafts: text ? { ...state.drafts, [state.selected]: text } : without(state.drafts, state.selected) };
  },

  /** Joining failed: stop waiting to select it. */
  forgetSelect(state, { group }) {
    return { ...state, selectOnJoin: state.selectOnJoin.filter((g) => g !== group) };
  },

  /** The composer's draft is sent: {key, ts}. `key` is a fresh random idempotency key. */
  compose(state, { key, ts }, emit) {
    const text = cleanText(get(state.drafts, state.selected) ?? "");
    if (!text) return state;
    if (!canSend(state)) {
      emit({ type: "toast", text: "Not connected: the message was not sent." });
      return state;
    }
    if (charCount(text) > state.config.maxTextChars) return state;
    const group = state.selected;
    const p = { ref: `r${state.nextRef}`, key: key.slice(0, state.config.maxKeyChars), group, text, ts,
      from: state.user, status: "sending", error: null };
    emit(postCommand(p));
    return { ...state, pending: [...state.pending, p], nextRef: state.nextRef + 1, drafts: without(state.drafts, group),
      stick: state.stick + 1 };
  },

  /** Send a failed message again, with its key: {ref}. */
  retry(state, { ref }, emit) {
    const p = state.pending.find((x) => x.ref === ref);
    if (!p || p.status !== "failed") return state;
    if (!canSend(state) || p.group !== state.selected) {
      emit({ type: "toast", text: "Cannot resend right now." });
      return state;
    }
    const again = { ...p, status: "sending", error: null };
    emit(postCommand(again));
    return { ...state, pending: state.pending.map((x) => (x === p ? again : x)) };
  },

  discard(state, { ref }) {
    return { ...state, pending: state.pending.filter((p) => p.ref !== ref) };
  },

  /** The tab was hidden or shown: {visible}. */
  visibility(state, { visible }, emit) {
    let s = { ...state, visible };
    if (!s.selected) return s;
    if (!visible) {
      emit({ type: "flushRead", group: s.selected });
      return s;
    }
    if (s.groups[s.selected].unread > 0) s = withGroup(s, s.selected, { unread: 0 });
    emit({ type: "scheduleRead", group: s.selected });
    return s;
  },

  /** A scheduled `read` is due: {group, again, flush}. Never a lower seq than already sent;
   * `again` resends the same one (after a reconnect it may have been lost). A flush happens as
   * the person stops looking, so it does not need the group on screen. */
  readDue(state, { group: id, again = false, flush = false }, emit) {
    if (!has(state.groups, id) || state.conn !== "connected" || (!flush && !isViewing(state, id))) return state;
    const seq = get(state.boxes, id)?.high ?? 0;
    const sent = state.readSent[id] ?? 0;
    if (seq <= 0 || seq < sent || (seq === sent && !again)) return state;
    emit({ type: "markRead", group: id, seq });
    return { ...state, readSent: { ...state.readSent, [id]: seq } };
  },

  /** `resumed` never came: stop showing "Catching up…". {id}: which resume. */
  resumeTimeout(state, { id }) {
    return id === state.resumeId ? { ...state, catchingUp: false } : state;
  },
};

// History answers, by kind of request.
const HISTORY = {
  /** The latest page, merged with what is held (live messages included). */
  latest(state, box, page, { group: id, more }, emit) {
    let [s] = store(withBox(state, id, { ...box, loading: false }), id, page, { live: false }, emit);
    const b = s.boxes[id];
    const pageOldest = page.length ? Math.min(...page.map((m) => m.seq)) : null;
    const held = oldestSeq(b);
    s = withBox(s, id, { ...b, loaded: true,
      more: held !== null && held > 1 && (!!more || (pageOldest !== null && held < pageOldest)) });
    if (isViewing(s, id)) emit({ type: "scheduleRead", group: id, again: false });
    return s;
  },

  /** The page before the oldest held message. */
  older(state, box, page, { group: id, before, more }, emit) {
    const older = page.filter((m) => m.seq < before);
    const [s] = store(withBox(state, id, { ...box, older: false }), id, older, { live: false }, emit);
    const held = oldestSeq(s.boxes[id]);
    return withBox(s, id, { ...s.boxes[id], more: !!more && older.length > 0 && held > 1 });
  },

  /** Messages after the mark: a hole filled. If one is still open and the mark moved, go on. */
  after(state, box, page, { group: id }, emit) {
    const [s] = store(state, id, page, { live: false }, emit); // filling stays set: no nested fetch
    const b = { ...s.boxes[id], filling: false };
    const moved = (b.high ?? 0) > (box.high ?? 0);
    return moved && hasHole(b) ? fillHole(withBox(s, id, b), id, b.high, emit) : withBox(s, id, b);
  },
};

const HISTORY_FAILED = {
  latest(state, box, { group: id, status, message }) {
    let error = "";
    if (status === 403) error = "You are no longer a member of this group.";
    else if (status !== 401) error = `Could not load messages: ${message}`;
    // Keep showing the live ones; selecting the group or reconnecting tries again.
    return withBox(state, id, { ...box, loading: false, error, loaded: box.list.length > 0 });
  },

  older(state, box, { group: id, status, message }, emit) {
    if (status !== 401) emit({ type: "toast", text: `Could not load older messages: ${message}` });
    // Try again only when the reader scrolls again, not in a loop.
    emit({ type: "later", ms: OLDER_RETRY_MS, event: { type: "olderAllowed", group: id, gen: box.gen } });
    return state;
  },

  after(state, box, { group: id }) {
    // Left the group or offline: the next resume or history load covers it.
    return withBox(state, id, { ...box, filling: false });
  },
};

