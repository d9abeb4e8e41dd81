// Debug logs: open a window for 15, 30 or 60 minutes (it closes by itself; the countdown shows
// when), captures appear as they are recorded (polling), filter them by status and outcome,
// and open one to see its headers, body, verification result, status and latency.

import { api, listenerPath } from "./api.js";
import { h, headerTable, keyValues, listenerTabs, replace, statusBadge, toast } from "./dom.js";

const POLL_MS = 2000;

function remaining(until) {
  const ms = Date.parse(until) - Date.now();
  if (!(ms > 0)) return "00:00";
  const seconds = Math.floor(ms / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(Math.floor(seconds / 60))}:${pad(seconds % 60)}`;
}

export async function render(view, id) {
  let window_ = await api("GET", listenerPath(id, "debug"));
  let captures = [];
  let selected = null;
  const countdown = h("span", { class: "countdown", id: "debug-countdown" });
  const state = h("span", { id: "debug-state" });
  const buttons = [15, 30, 60].map((minutes) => {
    const button = h("button", { type: "button", "data-minutes": minutes }, `Start ${minutes} min`);
    button.addEventListener("click", async () => {
      try {
        window_ = await api("POST", listenerPath(id, "debug"), { duration_minutes: minutes });
        showWindow();
        toast(`Recording for ${minutes} minutes`);
      } catch (error) { toast(error.message, true); }
    });
    return button;
  });
  const stop = h("button", { type: "button", class: "danger", id: "debug-stop" }, "Stop");
  stop.addEventListener("click", async () => {
    try {
      window_ = await api("DELETE", listenerPath(id, "debug"));
      showWindow();
    } catch (error) { toast(error.message, true); }
  });
  const showWindow = () => {
    const open = window_.open && Date.parse(window_.until) > Date.now();
    replace(state, open ? h("span", { class: "badge ok" }, "recording") : h("span", { class: "badge" }, "closed"));
    replace(countdown, open ? remaining(window_.until) : "");
    stop.disabled = !open;
  };

  const statusFilter = h("select", { id: "filter-status" }, ["all", "2xx", "4xx", "5xx"].map((s) => h("option", { value: s }, s)));
  const outcomeFilter = h("select", { id: "filter-outcome" }, h("option", { value: "all" }, "all outcomes"));
  const body = h("tbody", {});
  const detail = h("div", { id: "capture-detail" }, h("p", { class: "hint" }, "Open a capture to see its headers and body."));
  const showList = () => {
    const outcomes = [...new Set(captures.map((c) => c.outcome))].sort();
    const chosen = outcomeFilter.value;
    replace(outcomeFilter, h("option", { value: "all" }, "all outcomes"), outcomes.map((o) => h("option", { value: o, selected: o === chosen }, o)));
    const shown = captures.filter((c) =>
      (statusFilter.value === "all" || `${String(c.status)[0]}xx` === statusFilter.value)
      && (outcomeFilter.value === "all" || c.outcome === outcomeFilter.value));
    if (!shown.length) {
      replace(body, h("tr", {}, h("td", { colspan: 7, class: "empty" }, captures.length ? "No capture matches the filters." : "No captures yet: requests appear here while a window is open.")));
      return;
    }
    replace(body, shown.map((capture) => {
      const row = h("tr", { class: `clickable${selected === capture.request_id ? " selected" : ""}`, "data-request-id": capture.request_id },
        h("td", {}, capture.time), h("td", {}, capture.method), h("td", {}, statusBadge(capture.status)),
        h("td", {}, capture.outcome), h("td", {}, capture.verification),
        h("td", {}, capture.latency_ms === null || capture.latency_ms === undefined ? "—" : `${capture.latency_ms} ms`),
        h("td", { class: "mono" }, capture.request_id));
      row.addEventListener("click", () => { selected = capture.request_id; showDetail(capture); showList(); });
      return row;
    }));
  };
  const showDetail = (capture) => replace(detail,
    h("h2", {}, `Request ${capture.request_id}`),
    keyValues([["time", capture.time], ["instance", capture.instance], ["method", capture.method], ["path", capture.path],
      ["query", capture.query || "—"], ["status", String(capture.status)], ["outcome", capture.outcome],
      ["verification", capture.verification], ["latency", capture.latency_ms === null ? "—" : `${capture.latency_ms} ms`]]),
    h("h3", {}, "Headers (credentials redacted)"), headerTable(capture.headers),
    h("h3", {}, capture.body_truncated ? "Body (cut)" : "Body"), h("pre", { id: "capture-body" }, capture.body || "(empty)"));
  statusFilter.addEventListener("change", showList);
  outcomeFilter.addEventListener("change", showList);

  const poll = async () => {
    try {
      captures = (await api("GET", listenerPath(id, "debug", "logs"))).captures;
      showList();
    } catch (error) { /* shown on the next action */ }
  };
  replace(view, h("h1", {}, id), h("p", { class: "sub" }, "Debug logs: every request and its outcome while a window is open, secrets redacted."),
    listenerTabs(id, "debug"),
    h("div", { class: "card" }, h("div", { class: "row" }, h("h2", {}, "Debug window"), state, countdown, h("span", { class: "spacer" }), buttons, stop)),
    h("div", { class: "row" }, h("label", { class: "inline" }, "Status ", statusFilter), h("label", { class: "inline" }, "Outcome ", outcomeFilter)),
    h("table", { id: "captures" }, h("thead", {}, h("tr", {}, ["time", "method", "status", "outcome", "verification", "latency", "request id"].map((t) => h("th", {}, t)))), body),
    h("div", { class: "card" }, detail));
  showWindow();
  await poll();
  const ticker = setInterval(showWindow, 1000);
  const poller = setInterval(poll, POLL_MS);
  return () => { clearInterval(ticker); clearInterval(poller); };
}
