// The chat as the state says it is: sidebar, header, composer, connection and message list.
// Reads the state, writes the DOM, never changes the state. Each part is redrawn only when the
// state it shows changed (the state is immutable, so a reference comparison tells).

import { $, APP_NAME, displayName, formatDay, formatTime, h, handle, hueOf, sameDay } from "./dom.js";
import { canSend, charCount, get, isOwn, pendingFor, sortedGroups, totalUnread } from "./state.js";

const GROUPING_WINDOW_MS = 5 * 60 * 1000; // a sender's messages this close together share a header
const COUNT_SHOW_FROM = 0.875;            // show the character counter from this share of the limit
const LOAD_OLDER_WITHIN_PX = 300;         // load older messages when scrolled this close to the top
const COMPOSER_MAX_PX = 200;

export class ChatView {
  /** `onNearTop(groupId)`: the reader is near the top of a list that has older messages. */
  constructor({ onNearTop }) {
    this.onNearTop = onNearTop;
    this.last = {};             // what each part was last drawn from
    this.renderedGroup = null;  // the group the message list shows (scroll anchoring within one group)
    this.stuck = 0;             // the state's `stick` when the list last jumped to the bottom
  }

  /** Forget what was drawn (after logout): the next render redraws everything. */
  reset() {
    this.last = {};
    this.renderedGroup = null;
    this.stuck = 0;
    $("#messages").replaceChildren();
    $("#group-list").replaceChildren();
  }

  render(state, now = Date.now()) {
    const changed = (part, ...deps) => {
      const prev = this.last[part];
      if (prev && prev.length === deps.length && prev.every((d, i) => d === deps[i])) return false;
      this.last[part] = deps;
      return true;
    };
    const group = state.selected ? state.groups[state.selected] : null;
    if (changed("me", state.user)) this.renderMe(state);
    this.renderConn(state, now);
    if (changed("sidebar", state.groups, state.selected)) this.renderSidebar(state);
    if (changed("header", group)) this.renderHeader(group);
    this.renderComposer(state, group);
    const box = group ? get(state.boxes, group.id) : null;
    const hasGroups = Object.keys(state.groups).length > 0; // the welcome text depends on it
    if (changed("messages", group?.id, group?.name, box, state.pending, state.user, state.stick, hasGroups)) {
      this.renderMessages(state, group, box);
    }
    document.title = totalUnread(state) > 0 ? `(${totalUnread(state)}) ${APP_NAME}` : APP_NAME;
  }

  renderMe(state) {
    const name = displayName(state.user);
    $("#me").textContent = name;
    $("#me-username").textContent = handle(state.user);
    $("#me-avatar").textContent = name ? [...name][0] : "";
  }

  renderConn(state, now) {
    const el = $("#conn-status");
    el.dataset.state = state.conn;
    let text = "Offline";
    if (state.conn === "connected") text = "Connected";
    else if (state.conn === "connecting") {
      text = state.retryAt ? `Reconnecting in ${Math.max(1, Math.ceil((state.retryAt - now) / 1000))}s…` : "Connecting…";
    } else if (navigator.onLine === false) {
      text = "Offline — waiting for network";
    }
    $("#conn-text").textContent = text;
    const catchingUp = state.conn === "connected" && state.catchingUp;
    $("#catching-up").hidden = !catchingUp;
    el.classList.toggle("catching-up", catchingUp);
  }

  renderSidebar(state) {
    const ul = $("#group-list");
    const existing = new Map([...ul.children].map((li) => [li.dataset.groupId, li]));
    sortedGroups(state).forEach((group, i) => {
      let li = existing.get(group.id);
      existing.delete(group.id);
      if (!li) li = groupItem(group.id);
      updateGroupItem(li, group, group.id === state.selected);
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] ?? null);
    });
    for (const li of existing.values()) li.remove();
    $("#group-list-empty").hidden = Object.keys(state.groups).length > 0;
  }

  renderHeader(group) {
    const title = $("#group-title");
    title.textContent = group ? group.name : "No group selected";
    title.classList.toggle("placeholder", !group);
    $("#leave-group").hidden = !group;
    $("#members-toggle").hidden = !group;
  }

  /** The textarea shows the selected group's draft (the state keeps it as it is typed). */
  renderComposer(state, group) {
    const textarea = $("#composer-text");
    const draft = (group && get(state.drafts, group.id)) ?? "";
    if (textarea.value !== draft) {
      textarea.value = draft;
      autosize(textarea);
    }
    const enabled = canSend(state);
    textarea.disabled = !enabled;
    if (!group) textarea.placeholder = "Select a group to start chatting";
    else if (!enabled) textarea.placeholder = "Waiting for the connection…";
    else textarea.placeholder = `Message #${group.name}`;

    const max = state.config?.maxTextChars ?? Infinity;
    const count = charCount(draft);
    const over = count > max;
    $("#composer-send").disabled = !enabled || over;
    const counter = $("#composer-count");
    counter.hidden = count < max * COUNT_SHOW_FROM;
    counter.classList.toggle("over", over);
    counter.textContent = over ? `${count - max} characters over the ${max} limit` : `${count} / ${max}`;
  }

  renderMessages(state, group, box) {
    const scroller = $("#messages-scroller");
    // The same group as the last render: keep what the reader looks at in place (older
    // messages may be added above it, newer ones below). Another group: start at the bottom.
    const sameGroup = this.renderedGroup === (group ? group.id : null);
    const stick = this.stuck !== state.stick || !sameGroup || isAtBottom(scroller);
    this.stuck = state.stick;
    const anchor = stick ? null : scrollAnchor(scroller);
    const keepTop = scroller.scrollTop;
    this.renderedGroup = group ? group.id : null;

    const items = group ? [...(box?.list ?? []), ...pendingFor(state, group.id)] : [];
    const fragment = document.createDocumentFragment();
    let prev = null;
    for (const msg of items) {
      if (!prev || !sameDay(prev.ts, msg.ts)) {
        fragment.append(h("li", { className: "day-divider", text: formatDay(msg.ts), attrs: { role: "separator" } }));
        prev = null;
      }
      fragment.append(messageElement(msg, continuesFrom(prev, msg), isOwn(state, msg)));
      prev = msg;
    }
    $("#messages").replaceChildren(fragment);
    renderHistoryEdge(group, box);
    renderEmptyState(state, group, items.length, box);

    if (stick) {
      scroller.scrollTop = scroller.scrollHeight;
    } else {
      const el = anchor && $("#messages").querySelector(`li[data-seq="${anchor.seq}"]`);
      if (el) scroller.scrollTop += el.getBoundingClientRect().top - scroller.getBoundingClientRect().top - anchor.offset;
      else scroller.scrollTop = keepTop;
    }
    if (group) this.maybeLoadOlder(group.id, box);
  }

  /** Near the top (or nothing to scroll yet) with older messages on the server: ask for them. */
  maybeLoadOlder(groupId, box) {
    if (!box || !box.loaded || box.older || box.more !== true) return;
    const scroller = $("#messages-scroller");
    const scrollable = scroller.scrollHeight > scroller.clientHeight + 1;
    if (!scrollable || scroller.scrollTop < LOAD_OLDER_WITHIN_PX) this.onNearTop(groupId);
  }
}

export function autosize(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, COMPOSER_MAX_PX)}px`;
}

function groupItem(id) {
  return h("li", { className: "group", dataset: { groupId: id } },
    h("button", { className: "group-button", attrs: { type: "button" } },
      h("span", { className: "group-name" }),
      h("span", { className: "badge" })));
}

function updateGroupItem(li, group, selected) {
  li.classList.toggle("selected", selected);
  li.classList.toggle("unread", group.unread > 0);
  const button = li.querySelector(".group-button");
  if (selected) button.setAttribute("aria-current", "page");
  else button.removeAttribute("aria-current");
  li.querySelector(".group-name").textContent = group.name;
  const badge = li.querySelector(".badge");
  badge.textContent = String(group.unread);
  badge.hidden = group.unread === 0;
  badge.setAttribute("aria-label", `${group.unread} unread`);
}

const isAtBottom = (scroller) => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;

/** The first message at least partly visible, and its distance from the scroller's top. */
function scrollAnchor(scroller) {
  const top = scroller.getBoundingClientRect().top;
  for (const li of $("#messages").children) {
    if (li.dataset.seq === undefined) continue;
    const rect = li.getBoundingClientRect();
    if (rect.bottom > top) return { seq: li.dataset.seq, offset: rect.top - top };
  }
  return null;
}

/** The top of the message list: a loader while older messages load, or where history begins. */
function renderHistoryEdge(group, box) {
  $("#history-loader").hidden = !(group && box && box.older);
  const start = $("#history-start");
  const atStart = !!group && !!box && box.loaded && box.more === false && box.list.length > 0;
  start.hidden = !atStart;
  start.textContent = atStart ? `This is the beginning of #${group.name}.` : "";
}

/** Same sender (for a bot: the same bot name), close in time: no second header. */
function continuesFrom(prev, msg) {
  return !!prev && !!prev.from && !!msg.from && prev.from.id === msg.from.id && !!prev.system === !!msg.system
    && (!msg.system || prev.from.username === msg.from.username)
    && msg.ts - prev.ts < GROUPING_WINDOW_MS && prev.status !== "failed";
}

function renderEmptyState(state, group, count, box) {
  const empty = $("#empty-state");
  empty.hidden = !!group && count > 0;
  const [title, body] = empty.children;
  if (group) {
    title.textContent = `#${group.name}`;
    if (box && box.error) body.textContent = box.error;
    else if (!box || !box.loaded) body.textContent = "Loading messages…";
    else body.textContent = "No messages here yet. Say hello!";
  } else {
    title.textContent = `Welcome to ${APP_NAME}`;
    body.textContent = Object.keys(state.groups).length
      ? "Pick a group on the left to read and send messages."
      : "You are not in any group yet. Browse the directory to join one, or create your own.";
  }
}

/**
 * One message (sequenced, pending or failed). A person's shows their display name and, beside
 * it, their @username (two people may share a display name, never a username); a backend's
 * system post shows its name with a "bot" badge and no @username, so it cannot pass for a person.
 */
function messageElement(msg, continued, own) {
  const li = h("li", { className: "message" });
  if (msg.seq !== undefined) li.dataset.seq = String(msg.seq);
  if (msg.ref) li.dataset.ref = msg.ref;
  li.classList.toggle("own", own);
  li.classList.toggle("system", !!msg.system);
  li.classList.toggle("continued", continued);
  li.classList.toggle("pending", msg.status === "sending" || msg.status === "waiting");
  li.classList.toggle("failed", msg.status === "failed");

  const name = displayName(msg.from) || "unknown";
  const avatar = h("span", {
    className: "message-avatar",
    text: msg.system ? "⚙" : [...name][0] ?? "?",
    attrs: { "aria-hidden": "true" },
    vars: { "--hue": String(hueOf(msg.system ? "system" : msg.from?.id ?? name)) },
  });
  const time = h("time", {
    className: "message-time",
    text: formatTime(msg.ts),
    attrs: { datetime: new Date(msg.ts).toISOString(), title: new Date(msg.ts).toLocaleString() },
  });
  const who = msg.system
    ? h("span", { className: "message-bot", text: "bot", attrs: { title: "Posted by a service, not a person" } })
    : h("span", { className: "message-username", text: handle(msg.from) });
  const meta = h("div", { className: "message-meta" }, h("span", { className: "message-from", text: name }), who, time);
  li.append(avatar, meta, h("div", { className: "message-text", text: msg.text }));

  if (msg.status === "failed") {
    li.append(h("div", { className: "message-error", attrs: { role: "alert" } },
      h("span", { text: `Not sent: ${msg.error || "unknown error"}` }),
      h("button", { className: "btn-link", text: "Retry", dataset: { action: "retry", ref: msg.ref }, attrs: { type: "button" } }),
      h("button", { className: "btn-link", text: "Discard", dataset: { action: "discard", ref: msg.ref }, attrs: { type: "button" } })));
  }
  return li;
}
