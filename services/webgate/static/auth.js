// The log-in / register form. It only gets a token and a user; what happens next is main's.

import { ApiError } from "./api.js";
import { $, APP_NAME } from "./dom.js";

export class AuthForm {
  /** `onLoggedIn(token, user)`: a login succeeded. */
  constructor({ api, onLoggedIn }) {
    this.api = api;
    this.onLoggedIn = onLoggedIn;
    this.mode = "login"; // "login" | "register"
    $("#auth-form").addEventListener("submit", (event) => this.submit(event));
    $("#auth-toggle").addEventListener("click", () => this.toggle());
  }

  show(message = "") {
    this.render();
    this.setError(message);
    this.setBusy(false);
    document.title = APP_NAME;
    $("#auth-username").focus();
  }

  render() {
    const register = this.mode === "register";
    $("#auth-title").textContent = register ? "Create your account" : "Log in";
    $("#auth-submit").textContent = register ? "Create account" : "Log in";
    $("#auth-display-name-field").hidden = !register;
    $("#auth-hint").hidden = !register;
    $("#auth-toggle-prompt").textContent = register ? "Already have an account?" : "New to Chorus?";
    $("#auth-toggle").textContent = register ? "Log in" : "Create an account";
    $("#auth-password").setAttribute("autocomplete", register ? "new-password" : "current-password");
  }

  toggle() {
    this.mode = this.mode === "login" ? "register" : "login";
    this.setError("");
    this.render();
    $("#auth-username").focus();
  }

  setError(message) {
    $("#auth-error").textContent = message || "";
  }

  setBusy(busy) {
    $("#auth-submit").disabled = busy;
    $("#auth-toggle").disabled = busy;
  }

  async submit(event) {
    event.preventDefault();
    const register = this.mode === "register";
    const username = $("#auth-username").value.trim();
    const password = $("#auth-password").value;
    const displayName = $("#auth-display-name").value.trim();
    this.setError("");
    this.setBusy(true);
    try {
      if (register) await this.api.register({ username, password, ...(displayName ? { display_name: displayName } : {}) });
      let login;
      try {
        login = await this.api.login(username, password);
      } catch (err) {
        if (register) { // the account exists now: let the person simply log in
          this.mode = "login";
          this.render();
          throw new ApiError(err.status, err.code, `Account created, but logging in failed: ${err.message}`);
        }
        throw err;
      }
      $("#auth-password").value = "";
      this.setBusy(false);
      this.onLoggedIn(login.token, login.user);
    } catch (err) {
      this.setBusy(false);
      this.setError(err.message);
    }
  }
}
