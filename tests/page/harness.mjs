// A page's state driven by events, as main.js drives it, without a browser: every state is
// deep-frozen, so a reducer that changed its input instead of returning a new state would throw.

import { initialState, reduce } from "../../services/webgate/static/state.js";

export const CONFIG = { max_text_chars: 20, history_page: 50, max_history_page: 100, max_idempotency_key_chars: 64 };
export const ME = { id: "u_me", username: "me", display_name: "Me" };
export const BOB = { id: "u_bob", username: "bob", display_name: "Bob" };

function deepFreeze(value) {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

export class Page {
  constructor(state = initialState()) {
    this.state = deepFreeze(state);
    this.commands = [];
  }

  /** Apply one event; the commands it produced are returned (and kept in `this.commands`). */
  on(event) {
    const { state, commands } = reduce(this.state, event);
    this.state = deepFreeze(state);
    this.commands = commands;
    return commands;
  }

  frame(frame) {
    return this.on({ type: "frame", frame });
  }

  /** A page that is logged in, connected and got `ready` with these groups. */
  static ready(groups = [{ id: "g1", name: "One", last_seq: 0, unread: 0 }], { config = CONFIG } = {}) {
    const page = new Page();
    if (config) page.on({ type: "config", config });
    page.on({ type: "session", user: ME });
    page.on({ type: "conn", status: "connected" });
    page.frame({ op: "ready", user: ME, groups });
    return page;
  }

  /** Select a group and answer its latest-page request with `messages`. */
  open(group, messages = [], more = false) {
    const fetch = this.on({ type: "select", group }).find((c) => c.type === "fetch");
    if (fetch) this.on({ type: "history", group, gen: fetch.gen, kind: "latest", messages, more });
    return this;
  }

  box(group) {
    return this.state.boxes[group];
  }

  seqs(group) {
    return (this.box(group)?.list ?? []).map((m) => m.seq);
  }

  posts() {
    return this.commands.filter((c) => c.type === "post");
  }

  fetches() {
    return this.commands.filter((c) => c.type === "fetch");
  }
}

export const msg = (seq, { group = "g1", from = BOB, text = `m${seq}`, ...extra } = {}) =>
  ({ op: "message", group, seq, ts: 1_000 * seq, from, text, ...extra });
