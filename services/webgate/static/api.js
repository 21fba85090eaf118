// The HTTP API of docs/protocol.md: one function per route, errors as ApiError.

export class ApiError extends Error {
  /** status 0 means the server could not be reached. */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const groupPath = (id) => `/api/groups/${encodeURIComponent(id)}`;

export class Api {
  /** `token()`: the session's token or null; `onExpired()`: called when it is refused (401). */
  constructor({ token, onExpired }) {
    this.token = token;
    this.onExpired = onExpired;
  }

  /** One call. Throws ApiError with the server's `message` (or a readable fallback). */
  async call(method, path, body, { token = this.token() } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, "network", "Cannot reach the server. Check your connection and try again.");
    }
    if (res.status === 204) return null;
    let data = null;
    try { data = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) {
      const err = data && data.error;
      let message = (err && err.message) || `Request failed (${res.status}).`;
      const retryAfter = res.headers.get("Retry-After");
      if (res.status === 429 && retryAfter) message += ` Try again in ${retryAfter}s.`;
      throw new ApiError(res.status, (err && err.code) || `http_${res.status}`, message);
    }
    return data;
  }

  /** A call that needs the session: a 401 ends it (the person logs in again). */
  async authed(method, path, body) {
    const token = this.token();
    try {
      return await this.call(method, path, body, { token });
    } catch (err) {
      if (err.status === 401 && token && token === this.token()) this.onExpired();
      throw err;
    }
  }

  config() { return this.call("GET", "/api/config", undefined, { token: null }); }
  register(fields) { return this.call("POST", "/api/register", fields, { token: null }); }
  login(username, password) { return this.call("POST", "/api/login", { username, password }, { token: null }); }
  me() { return this.call("GET", "/api/me"); }

  /** Revoke a token; the page is logged out whatever the answer. */
  logout(token) { return this.call("POST", "/api/logout", undefined, { token }).catch(() => null); }

  /** History: `{limit}` plus `{before}` or `{after}`; without either, the latest page. */
  messages(groupId, query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, String(v));
    return this.authed("GET", `${groupPath(groupId)}/messages?${params}`);
  }

  members(groupId) { return this.authed("GET", `${groupPath(groupId)}/members`); }
  directory() { return this.authed("GET", "/api/groups"); }
  createGroup(name) { return this.authed("POST", "/api/groups", { name }); }
  join(groupId) { return this.authed("POST", `${groupPath(groupId)}/join`); }
  leave(groupId) { return this.authed("POST", `${groupPath(groupId)}/leave`); }
}
