// Listeners: every listener with its verification, formats, requests per minute (this
// instance's metrics), last request (its sample data) and open errors; and the create form.

import { api, listenerPath, metricsText } from "./api.js";
import { ago, h, replace, toast } from "./dom.js";
import { createForm } from "./listener_form.js";
import { parseMetrics, total } from "./metrics.js";

const POLL_MS = 5000;

export async function render(view) {
  const body = h("tbody", {});
  const table = h("table", { id: "listeners-table" },
    h("thead", {}, h("tr", {}, ["id", "name", "verification", "formats", "requests/min", "last request", "errors open"].map((t) => h("th", {}, t)))),
    body);
  const showForm = h("button", { type: "button", id: "new-listener" }, "New listener");
  const formBox = h("div", {});
  replace(view,
    h("div", { class: "row" }, h("div", {}, h("h1", {}, "Listeners"),
      h("p", { class: "sub" }, "Endpoints senders post webhooks to. Requests per minute are this instance's; the rest is the fleet's.")),
      h("span", { class: "spacer" }), showForm),
    formBox, table);
  showForm.addEventListener("click", () => {
    formBox.replaceChildren(createForm(async (listener, problem) => {
      try {
        const created = await api("POST", "/listeners", listener);
        toast(`Created listener ${created.id}`);
        location.hash = `#/listeners/${encodeURIComponent(created.id)}`;
      } catch (error) {
        problem.textContent = error.field ? `${error.message}` : error.message;
      }
    }));
    showForm.hidden = true;
  });

  const readings = [];
  let listeners = [];
  const cells = new Map();
  const refreshRates = async () => {
    try {
      const samples = parseMetrics(await metricsText());
      const at = Date.now();
      readings.push({ at, samples });
      while (readings.length > 1 && at - readings[0].at > 60_000) readings.shift();
      for (const listener of listeners) {
        const row = cells.get(listener.id);
        if (!row) continue;
        const first = readings[0];
        if (readings.length < 2) { row.rate.textContent = "…"; continue; }
        const now = total(samples, "hookpipe_http_requests_total", { listener: listener.id });
        const then = total(first.samples, "hookpipe_http_requests_total", { listener: listener.id });
        const perMinute = (Math.max(0, now - then) * 60_000) / (at - first.at);
        row.rate.textContent = perMinute.toFixed(perMinute < 10 ? 1 : 0);
      }
    } catch (error) { /* metrics are best effort */ }
  };
  const load = async () => {
    ({ listeners } = await api("GET", "/listeners"));
    if (!listeners.length) {
      replace(body, h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No listeners yet: create one.")));
      return;
    }
    replace(body, listeners.map((listener) => {
      const rate = h("td", { "data-col": "rate" }, "…");
      const last = h("td", { "data-col": "last" }, "…");
      const open = h("td", { "data-col": "errors" }, "…");
      cells.set(listener.id, { rate, last, open });
      const link = h("a", { href: `#/listeners/${encodeURIComponent(listener.id)}` }, listener.id);
      api("GET", listenerPath(listener.id, "sample")).then(
        (sample) => replace(last, sample.source === "webhook" ? ago(sample.received_at) : `${ago(sample.received_at)} (by hand)`),
        () => replace(last, "never"));
      api("GET", `${listenerPath(listener.id, "errors")}?limit=1`).then(
        (errors) => replace(open, errors.total ? h("a", { href: `#/listeners/${encodeURIComponent(listener.id)}/errors`, class: "badge bad" }, String(errors.total)) : "0"),
        () => replace(open, "?"));
      return h("tr", { "data-listener": listener.id },
        h("td", {}, link, listener.source === "config" ? h("span", { class: "hint" }, " (file)") : null),
        h("td", {}, listener.name || "—"),
        h("td", {}, h("span", { class: "badge" }, listener.verification.type || "none")),
        h("td", {}, (listener.content.accept || []).join(", ")),
        rate, last, open);
    }));
    refreshRates();
  };
  await load();
  const timer = setInterval(refreshRates, POLL_MS);
  return () => clearInterval(timer);
}
