// The two side panels: the members of the selected group, and the directory of all groups (with
// "create a group"). Each keeps its own small state (open, what was loaded, errors): it is only
// on screen, and the chat's state does not depend on it.

import { $, displayName, h, handle, toast } from "./dom.js";

const MEMBERS_REFRESH_MS = 15000; // the members panel refreshes this often while open

export class MembersPanel {
  constructor({ api }) {
    this.api = api;
    this.open = false;
    this.group = null;   // the group shown
    this.list = [];
    this.loaded = false;
    this.error = "";
    this.timer = null;
    this.gen = 0;        // bumps on every load and close: older answers are ignored
    this.me = null;
  }

  toggle(groupId) {
    if (this.open) this.close();
    else if (groupId) {
      this.open = true;
      this.timer = setInterval(() => this.load(this.group), MEMBERS_REFRESH_MS);
      this.load(groupId);
    }
  }

  close() {
    clearInterval(this.timer);
    this.gen++;
    Object.assign(this, { open: false, group: null, list: [], loaded: false, error: "", timer: null });
    this.render();
  }

  /** Follow the chat: the selected group (null closes the panel) and who "me" is. */
  follow(groupId, user) {
    this.me = user;
    if (!this.open || groupId === this.group) return;
    if (groupId) this.load(groupId);
    else this.close();
  }

  async load(groupId) {
    if (!this.open || !groupId) return;
    if (this.group !== groupId) Object.assign(this, { group: groupId, list: [], loaded: false, error: "" });
    this.render();
    const gen = ++this.gen;
    try {
      const data = await this.api.members(groupId);
      if (gen !== this.gen) return;
      this.list = Array.isArray(data?.members) ? data.members.filter((p) => p && typeof p.id === "string") : [];
      this.error = "";
    } catch (err) {
      if (gen !== this.gen) return;
      this.error = err.status === 401 ? "" : `Could not load members: ${err.message}`;
    }
    this.loaded = true;
    this.render();
  }

  render() {
    $("#members-panel").hidden = !this.open;
    const toggle = $("#members-toggle");
    toggle.setAttribute("aria-expanded", String(this.open));
    toggle.classList.toggle("active", this.open);
    if (!this.open) return;
    const list = [...this.list].sort((a, b) =>
      (b.online === true) - (a.online === true)
      || displayName(a).localeCompare(displayName(b), undefined, { sensitivity: "base" }));
    const online = list.filter((p) => p.online === true).length;
    $("#members-count").textContent = this.loaded && !this.error ? `${online} online · ${list.length} total` : "";
    const status = $("#members-status");
    if (this.error) status.textContent = this.error;
    else if (!this.loaded) status.textContent = "Loading…";
    else if (!list.length) status.textContent = "No members.";
    else status.textContent = "";
    $("#members-list").replaceChildren(...list.map((p) => this.memberElement(p)));
  }

  memberElement(person) {
    const on = person.online === true;
    const name = displayName(person) || person.id;
    const li = h("li", { className: "member", dataset: { userId: person.id } },
      h("span", { className: "member-dot", attrs: { "aria-hidden": "true" } }),
      h("span", { className: "member-name", text: name }),
      h("span", { className: "member-username", text: handle(person) }),
      h("span", { className: "visually-hidden", text: on ? "online" : "offline" }));
    li.classList.toggle("online", on);
    li.classList.toggle("me", !!this.me && person.id === this.me.id);
    li.title = on ? `${name} (${handle(person)}) is online` : `${name} (${handle(person)}) is offline`;
    return li;
  }
}

export class Directory {
  /** `selectWhenJoined(id)` / `forgetSelect(id)`: tell the chat to select a group once its
   * `joined` frame is there (it may come before the HTTP answer), or to stop waiting. */
  constructor({ api, selectWhenJoined, forgetSelect }) {
    this.api = api;
    this.selectWhenJoined = selectWhenJoined;
    this.forgetSelect = forgetSelect;
    this.reset();
  }

  reset() {
    this.open = false;
    this.entries = [];
    this.loaded = false;
    this.error = "";
    this.busy = new Set(); // group ids being joined
  }

  show({ focusCreate = false } = {}) {
    this.open = true;
    this.render();
    this.load();
    (focusCreate ? $("#new-group-name") : $("#browse-close")).focus();
  }

  close() {
    if (!this.open) return;
    this.open = false;
    this.render();
    $("#browse-groups").focus();
  }

  async load() {
    try {
      const data = await this.api.directory();
      this.entries = Array.isArray(data?.groups) ? data.groups : [];
      this.error = "";
    } catch (err) {
      this.error = `Could not load groups: ${err.message}`;
    }
    this.loaded = true;
    if (this.open) this.renderEntries();
  }

  /** A group was joined or left (from any tab or device): show it now, then reload the counts. */
  membershipChanged(id, joined) {
    this.markJoined(id, joined);
    if (this.open) this.load();
  }

  markJoined(id, joined) {
    const entry = this.entries.find((e) => e.id === id);
    if (!entry || entry.joined === joined) return;
    entry.joined = joined;
    entry.member_count = Math.max(0, (Number(entry.member_count) || 0) + (joined ? 1 : -1));
    if (this.open) this.renderEntries();
  }

  async join(id) {
    if (this.busy.has(id)) return;
    this.busy.add(id);
    this.selectWhenJoined(id); // before the request: the frame may beat the HTTP answer
    this.renderEntries();
    try {
      await this.api.join(id);
      this.markJoined(id, true);
    } catch (err) {
      this.forgetSelect(id);
      if (err.status !== 401) toast(`Could not join: ${err.message}`);
    } finally {
      this.busy.delete(id);
      if (this.open) this.renderEntries();
    }
  }

  async create(event) {
    event.preventDefault();
    const input = $("#new-group-name");
    const submit = $("#new-group-submit");
    const error = $("#new-group-error");
    error.textContent = "";
    submit.disabled = true;
    try {
      const name = input.value;
      const data = await this.api.createGroup(name.trim());
      if (input.value === name) input.value = "";
      if (data?.group?.id) this.selectWhenJoined(data.group.id); // now, or when `joined` comes
      if (this.open) this.load();
    } catch (err) {
      if (err.status !== 401) error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  }

  render() {
    $("#browse-panel").hidden = !this.open;
    $("#app").classList.toggle("browsing", this.open);
    $("#browse-groups").setAttribute("aria-expanded", String(this.open));
    if (this.open) this.renderEntries();
  }

  renderEntries() {
    const status = $("#directory-status");
    if (this.error) status.textContent = this.error;
    else if (!this.loaded) status.textContent = "Loading…";
    else if (!this.entries.length) status.textContent = "No groups yet. Create the first one!";
    else status.textContent = "";
    $("#directory").replaceChildren(...this.entries.map((entry) => this.entryElement(entry)));
  }

  entryElement(entry) {
    const count = Number(entry.member_count) || 0;
    const li = h("li", { className: "directory-entry", dataset: { groupId: entry.id } },
      h("div", { className: "directory-info" },
        h("span", { className: "directory-name", text: entry.name }),
        h("span", { className: "directory-count", text: `${count} ${count === 1 ? "member" : "members"}` })));
    if (entry.joined) {
      li.append(h("span", { className: "joined", text: "Joined" }));
    } else {
      const busy = this.busy.has(entry.id);
      const button = h("button", {
        className: "btn btn-primary btn-small join",
        text: busy ? "Joining…" : "Join",
        dataset: { groupId: entry.id },
        attrs: { type: "button", "aria-label": `Join ${entry.name}` },
      });
      button.disabled = busy;
      li.append(button);
    }
    return li;
  }
}
