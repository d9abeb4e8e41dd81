// The console's entry point: signing in, the hash router, and the one rule that a page's
// timers stop when the user leaves it.

import { api, setToken, token } from "./api.js";
import { h, replace, toast } from "./dom.js";
import * as debug from "./debug.js";
import * as errors from "./errors.js";
import * as listener from "./listener.js";
import * as listeners from "./listeners.js";
import * as overview from "./overview.js";
import * as sample from "./sample.js";

const view = document.getElementById("view");
let cleanup = () => {};

const routes = [
  [/^#\/overview$/, () => overview.render(view)],
  [/^#\/listeners$/, () => listeners.render(view)],
  [/^#\/listeners\/([^/]+)$/, (id) => listener.render(view, id)],
  [/^#\/listeners\/([^/]+)\/sample$/, (id) => sample.renderSample(view, id)],
  [/^#\/listeners\/([^/]+)\/mock$/, (id) => sample.renderMock(view, id)],
  [/^#\/listeners\/([^/]+)\/debug$/, (id) => debug.render(view, id)],
  [/^#\/listeners\/([^/]+)\/errors$/, (id) => errors.render(view, id)],
];

function signIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true,
    placeholder: "server.admin_token" });
  const problem = h("p", { class: "error-text", "data-test": "signin-error" }, message || "");
  const form = h("form", { class: "card signin", id: "signin" },
    h("h1", {}, "Sign in"),
    h("p", { class: "sub" }, "The console calls this instance's management API with its admin token. The token stays in this tab (sessionStorage) and is sent as a bearer header; no cookie is set."),
    h("label", { for: "token" }, "Admin token"), input, problem,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setToken(input.value);
    try {
      await api("GET", "/listeners", undefined, { signingIn: true });
      if (!location.hash || location.hash === "#/signin") location.hash = "#/listeners"; // routes on hashchange
      else route();
    } catch (error) {
      setToken(null);
      replace(problem, error.status === 401 ? "That token is not this instance's admin token." : error.message);
    }
  });
  replace(view, form);
  input.focus();
}

function route() {
  cleanup();
  cleanup = () => {};
  if (!token()) return signIn();
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  const hash = location.hash || "#/listeners";
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", hash.startsWith(`#/${link.dataset.nav}`));
  }
  for (const [pattern, page] of routes) {
    const match = pattern.exec(hash);
    if (match) {
      const params = match.slice(1).map(decodeURIComponent);
      Promise.resolve(page(...params)).then((stop) => {
        if (typeof stop === "function") cleanup = stop;
      }).catch((error) => toast(error.message, true));
      return;
    }
  }
  location.hash = "#/listeners";
}

document.getElementById("sign-out").addEventListener("click", () => {
  setToken(null);
  route();
});
window.addEventListener("hookpipe:unauthorized", () => {
  setToken(null);
  signIn("The token was refused; sign in again.");
});
window.addEventListener("hashchange", route);
route();
