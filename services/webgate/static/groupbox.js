// The messages the page holds for one group, and how far it holds all of them. Pure: no DOM,
// no fetch, no socket; every function returns a new box and leaves its argument untouched.
//
// A box:
//   gen      which box this is: a request made for a box that was since dropped (reset, left,
//            logout) carries an older gen, and its answer is ignored
//   list     messages sorted by seq, no seq twice
//   high     the seq up to which every message from the oldest held one on is held (the
//            "have everything up to" mark that `resume` and `read` send); undefined: none yet
//   loaded   the latest history page has been merged in (false: load it when shown)
//   loading  a request for the latest page is in flight
//   more     older messages exist on the server (null: unknown until loaded)
//   older    a request for older messages is in flight
//   filling  a request for a hole (messages after `high`) is in flight
//   error    the last history request failed: shown instead of the messages
//
// A message past high + 1 means a hole (the broker died after storing a message but before
// sending it, say): the caller fetches what follows `high` from history, so a later resume
// never skips it. A group first seen live starts its mark at that message.

export const MAX_MESSAGES_PER_GROUP = 2000; // memory cap: older messages drop out (history has them)

export function newBox(gen) {
  return { gen, list: [], high: undefined, loaded: false, loading: false, more: null, older: false,
    filling: false, error: "" };
}

/** Where `seq` is in a sorted list, or where it would go: [index, found]. */
function search(list, seq) {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (list[mid].seq < seq) low = mid + 1;
    else high = mid;
  }
  return [low, low < list.length && list[low].seq === seq];
}

export const oldestSeq = (box) => (box.list.length ? box.list[0].seq : null);
export const newestSeq = (box) => (box.list.length ? box.list[box.list.length - 1].seq : null);
export const hasSeq = (box, seq) => search(box.list, seq)[1];

/** The message is held, or is older than everything held (history has it). */
export const holds = (box, seq) => hasSeq(box, seq) || (box.list.length > 0 && seq < box.list[0].seq);

/**
 * `box` with `messages` merged in (oldest first). Live messages past the memory cap push the
 * oldest out; history pages never push anything out. Returns
 *   box    the new box
 *   added  the messages that were new (not held already)
 *   hole   the mark after which a hole was first seen, or null
 */
export function insert(box, messages, { live }) {
  const list = box.list.slice();
  let high = box.high;
  let hole = null;
  const added = [];
  for (const msg of [...messages].sort((a, b) => a.seq - b.seq)) {
    if (high === undefined) high = box.loaded ? 0 : msg.seq - 1;
    const [index, found] = search(list, msg.seq);
    if (found) {
      if (msg.seq > high + 1 && hole === null) hole = high;
      continue;
    }
    if (!live && list.length >= MAX_MESSAGES_PER_GROUP && index === 0) continue;
    list.splice(index, 0, msg);
    added.push(msg);
    if (msg.seq === high + 1) {
      high = msg.seq;
      for (let i = index + 1; i < list.length && list[i].seq === high + 1; i++) high += 1;
    } else if (msg.seq > high + 1 && hole === null) {
      hole = high;
    }
  }
  if (!added.length && high === box.high) return { box, added, hole };
  let more = box.more;
  if (live && list.length > MAX_MESSAGES_PER_GROUP) {
    list.splice(0, list.length - MAX_MESSAGES_PER_GROUP);
    more = true;
  }
  return { box: { ...box, list, high, more }, added, hole };
}

/** A hole is still open: something is held past the mark. */
export const hasHole = (box) => box.high !== undefined && (newestSeq(box) ?? 0) > box.high;
