// Sample data ("Generate sample data": send a request to the listener and its latest request
// appears here, records as a collapsible tree, headers redacted — or type a sample by hand)
// and mock output (a JSON editor that validates as you type, save, send through the pipeline).

import { api, listenerPath } from "./api.js";
import { ago, h, headerTable, jsonTree, keyValues, listenerTabs, parseJson, replace, toast } from "./dom.js";

const POLL_MS = 3000;

/** Checks the editor's text: `{records}` or an array of records. */
function recordsFrom(text) {
  const parsed = parseJson(text);
  if (parsed.error) return { error: `Not JSON: ${parsed.error}` };
  const value = parsed.value;
  if (Array.isArray(value)) return { records: value };
  if (value && typeof value === "object" && Array.isArray(value.records)) return { records: value.records };
  if (value && typeof value === "object") return { records: [value] };
  return { error: "Give a record (object), an array of records, or {\"records\": [...]}" };
}

function editor(id, initial, status) {
  const area = h("textarea", { id, class: "tall", spellcheck: "false", value: initial });
  const check = () => {
    const result = recordsFrom(area.value);
    status.className = result.error ? "error-text" : "ok-text";
    status.textContent = result.error || `Valid JSON: ${result.records.length} record${result.records.length === 1 ? "" : "s"}`;
    return result;
  };
  area.addEventListener("input", check);
  check();
  return { area, check };
}

export async function renderSample(view, id) {
  const current = h("div", { id: "sample-current" }, h("p", { class: "hint" }, "Loading…"));
  let shownAt = null;
  const load = async () => {
    let sample;
    try {
      sample = await api("GET", listenerPath(id, "sample"));
    } catch (error) {
      if (error.status === 404) {
        replace(current, h("p", { class: "empty", "data-test": "no-sample" },
          "No sample yet. Send a request to the listener's URL (see Settings); it appears here within seconds."));
        return;
      }
      throw error;
    }
    const stamp = `${sample.received_at}/${sample.request_id}`;
    if (stamp === shownAt) return;
    shownAt = stamp;
    replace(current,
      keyValues([["source", sample.source === "webhook" ? "latest request" : "entered by hand"],
        ["received", `${sample.received_at} (${ago(sample.received_at)})`], ["request id", sample.request_id],
        ["content type", sample.content_type], ["records", String(sample.records_total)]]),
      h("h3", {}, "Records"), jsonTree(sample.records),
      sample.source === "webhook" ? [h("h3", {}, "Headers (credentials redacted)"), headerTable(sample.headers)] : null,
      sample.body !== null && sample.body !== undefined
        ? [h("h3", {}, sample.body_truncated ? "Body (cut)" : "Body"), h("pre", { id: "sample-body" }, sample.body)]
        : null);
  };
  const status = h("p", {});
  const { area, check } = editor("sample-editor", "[\n  {\"id\": \"1\"}\n]", status);
  const save = h("button", { type: "button", id: "save-sample" }, "Save as sample");
  save.addEventListener("click", async () => {
    const result = check();
    if (result.error) return;
    try {
      await api("PUT", listenerPath(id, "sample"), { records: result.records });
      toast("Sample saved");
      await load();
    } catch (error) { toast(error.message, true); }
  });
  const refresh = h("button", { type: "button", class: "secondary", id: "refresh-sample" }, "Refresh");
  refresh.addEventListener("click", () => load().catch((error) => toast(error.message, true)));
  replace(view, h("h1", {}, id), h("p", { class: "sub" }, "Sample data: what templates and imports are built against."),
    listenerTabs(id, "sample"),
    h("div", { class: "card" }, h("div", { class: "row" }, h("h2", {}, "Generate sample data"), h("span", { class: "spacer" }), refresh),
      h("p", { class: "hint" }, "Send a webhook to the listener; the latest request becomes its sample (this page refreshes by itself)."),
      current),
    h("div", { class: "card" }, h("h2", {}, "Enter sample data by hand"), area, status, h("div", { class: "row" }, save)));
  await load();
  const timer = setInterval(() => load().catch(() => {}), POLL_MS);
  return () => clearInterval(timer);
}

export async function renderMock(view, id) {
  let initial = "[\n  {\"id\": \"mock-1\"}\n]";
  let savedAt = "never";
  try {
    const mock = await api("GET", listenerPath(id, "mock"));
    initial = JSON.stringify(mock.records, null, 2);
    savedAt = mock.updated_at;
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  const status = h("p", {});
  const { area, check } = editor("mock-editor", initial, status);
  const saved = h("span", { class: "hint", id: "mock-saved" }, `Saved: ${savedAt}`);
  const result = h("div", { id: "mock-result" });
  const save = h("button", { type: "button", id: "save-mock" }, "Save");
  const send = h("button", { type: "button", id: "send-mock", class: "secondary" }, "Send through the pipeline");
  const doSave = async () => {
    const records = check();
    if (records.error) throw new Error(records.error);
    const mock = await api("PUT", listenerPath(id, "mock"), { records: records.records });
    saved.textContent = `Saved: ${mock.updated_at}`;
    return mock;
  };
  save.addEventListener("click", () => doSave().then(() => toast("Mock output saved"), (error) => toast(error.message, true)));
  send.addEventListener("click", async () => {
    try {
      await doSave();
      const sent = await api("POST", listenerPath(id, "mock", "send"));
      replace(result, h("p", { class: "ok-text" }, `Published ${sent.records} record(s), request id ${sent.request_id}.`));
    } catch (error) {
      replace(result, h("p", { class: "error-text" }, error.message));
    }
  });
  replace(view, h("h1", {}, id),
    h("p", { class: "sub" }, "Mock output: records sent through the pipeline as if a sender had posted them (marked as mock)."),
    listenerTabs(id, "mock"),
    h("div", { class: "card" }, h("h2", {}, "Mock output"), area, status, h("div", { class: "row" }, save, send, saved), result));
}
