// Errors: a listener's open import errors with filters; one record's error and retry data;
// retry one, the selected ones or all; resolve by hand. Counts update after every action.

import { api, listenerPath } from "./api.js";
import { h, jsonTree, keyValues, listenerTabs, replace, toast } from "./dom.js";

const PAGE = 200;

export async function render(view, id) {
  let errors = [];
  let total = 0;
  const selected = new Set();
  const count = h("span", { class: "badge bad", id: "errors-count" }, "…");
  const search = h("input", { type: "text", id: "errors-search", placeholder: "filter: trace key, record id or error text" });
  const statusFilter = h("select", { id: "errors-status" }, h("option", { value: "all" }, "any target status"));
  const body = h("tbody", {});
  const detail = h("div", { id: "error-detail" }, h("p", { class: "hint" }, "Open an error to see the target's answer and the record's retry data."));
  const selectAll = h("input", { type: "checkbox", id: "select-all" });
  const retrySelected = h("button", { type: "button", id: "retry-selected", disabled: true }, "Retry selected");
  const retryAll = h("button", { type: "button", class: "secondary", id: "retry-all" }, "Retry all");

  const visible = () => {
    const needle = search.value.trim().toLowerCase();
    return errors.filter((e) => (statusFilter.value === "all" || String(e.target_status ?? "none") === statusFilter.value)
      && (!needle || [e.trace_key, e.record_id, e.error].some((t) => String(t).toLowerCase().includes(needle))));
  };
  const report = (answer) => {
    const parts = [];
    if (answer.republished?.length) parts.push(`republished ${answer.republished.length}`);
    if (answer.refused?.length) parts.push(`refused ${answer.refused.length}: ${answer.refused[0].reason}`);
    if (answer.not_found?.length) parts.push(`${answer.not_found.length} no longer open`);
    toast(parts.join("; ") || "nothing to retry");
  };
  const act = async (method, path, payload) => {
    try {
      const answer = await api(method, path, payload);
      return answer;
    } catch (error) {
      toast(error.message, true);
      return null;
    } finally {
      await load();
    }
  };
  const show = async (entry) => {
    const full = await api("GET", listenerPath(id, "errors", entry.record_id));
    replace(detail, h("h2", {}, `Record ${full.record_id}`),
      keyValues([["trace key", full.trace_key], ["error", full.error], ["target status", full.target_status === null ? "none" : String(full.target_status)],
        ["attempt", String(full.attempt)], ["tries", String(full.tries)], ["failed at", full.failed_at], ["received at", full.received_at],
        ["data URI", full.data_uri], ["retry requested", full.retry_requested_at], ["can retry", full.can_retry ? "yes" : `no: ${full.retry_unavailable}`]]),
      h("h3", {}, "Retry data"), full.retry_data ? jsonTree(full.retry_data.record, { open: 3 }) : h("p", { class: "hint" }, full.retry_unavailable || "none"));
  };
  const showList = () => {
    const shown = visible();
    retrySelected.disabled = selected.size === 0;
    retrySelected.textContent = selected.size ? `Retry selected (${selected.size})` : "Retry selected";
    if (!shown.length) {
      replace(body, h("tr", {}, h("td", { colspan: 7, class: "empty" }, total ? "No error matches the filters." : "No open errors.")));
      return;
    }
    replace(body, shown.map((entry) => {
      const box = h("input", { type: "checkbox", checked: selected.has(entry.record_id), "aria-label": `select ${entry.record_id}` });
      box.addEventListener("change", () => { box.checked ? selected.add(entry.record_id) : selected.delete(entry.record_id); showList(); });
      const retry = h("button", { type: "button", class: "secondary", "data-action": "retry", disabled: !entry.can_retry }, "Retry");
      retry.addEventListener("click", async () => {
        const answer = await act("POST", listenerPath(id, "errors", entry.record_id, "retry"));
        if (answer) toast(`Republished ${entry.record_id} (attempt ${answer.attempt})`);
      });
      const resolve = h("button", { type: "button", class: "secondary", "data-action": "resolve" }, "Resolve");
      resolve.addEventListener("click", async () => {
        if (await act("POST", listenerPath(id, "errors", entry.record_id, "resolve"))) toast(`Resolved ${entry.record_id}`);
      });
      const open = h("a", { href: "#", "data-action": "open" }, entry.trace_key);
      open.addEventListener("click", (event) => { event.preventDefault(); show(entry).catch((error) => toast(error.message, true)); });
      return h("tr", { "data-record-id": entry.record_id }, h("td", {}, box), h("td", {}, open),
        h("td", { class: "error-text" }, entry.error), h("td", {}, entry.target_status === null ? "—" : String(entry.target_status)),
        h("td", {}, String(entry.attempt)), h("td", {}, entry.failed_at), h("td", {}, retry, " ", resolve));
    }));
  };
  const load = async () => {
    const page = await api("GET", `${listenerPath(id, "errors")}?limit=${PAGE}`);
    errors = page.errors;
    total = page.total;
    count.textContent = `${total} open`;
    for (const recordId of [...selected]) if (!errors.some((e) => e.record_id === recordId)) selected.delete(recordId);
    const statuses = [...new Set(errors.map((e) => String(e.target_status ?? "none")))].sort();
    const chosen = statusFilter.value;
    replace(statusFilter, h("option", { value: "all" }, "any target status"), statuses.map((s) => h("option", { value: s, selected: s === chosen }, s)));
    showList();
  };
  selectAll.addEventListener("change", () => {
    for (const entry of visible()) selectAll.checked ? selected.add(entry.record_id) : selected.delete(entry.record_id);
    showList();
  });
  retrySelected.addEventListener("click", async () => {
    const answer = await act("POST", listenerPath(id, "errors", "retry"), { record_ids: [...selected] });
    if (answer) { selected.clear(); report(answer); }
  });
  retryAll.addEventListener("click", async () => {
    if (!confirm(`Retry all ${total} open errors of ${id}?`)) return;
    const answer = await act("POST", listenerPath(id, "errors", "retry"), { all: true });
    if (answer) report(answer);
  });
  search.addEventListener("input", showList);
  statusFilter.addEventListener("change", showList);
  const reload = h("button", { type: "button", class: "secondary", id: "errors-reload" }, "Reload");
  reload.addEventListener("click", () => load().catch((error) => toast(error.message, true)));
  replace(view, h("h1", {}, id), h("p", { class: "sub" }, "Import errors: records a worker could not import. A retry sends the record again; the error closes when it imports."),
    listenerTabs(id, "errors"),
    h("div", { class: "row" }, count, h("div", { class: "spacer" }, search), statusFilter, retrySelected, retryAll, reload),
    h("table", { id: "errors-table" }, h("thead", {}, h("tr", {}, h("th", {}, selectAll), ["trace key", "error", "target status", "attempt", "failed at", ""].map((t) => h("th", {}, t)))), body),
    h("div", { class: "card" }, detail));
  await load();
}
