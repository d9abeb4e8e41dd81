// One listener: its public URL (copy, regenerate with a confirmation), its settings (response,
// page size, templates with a live preview over the current sample data, rate limit, retry
// data), and its secrets — fingerprints only, added and retired for rotation.

import { api, listenerPath } from "./api.js";
import { h, keyValues, listenerTabs, replace, toast } from "./dom.js";

const PREVIEW_DELAY_MS = 250;

/** Where a verification keeps its secrets, as the API shows them. */
function secretsOf(verification) {
  for (const key of ["secrets", "tokens", "auth_tokens", "credentials"]) {
    if (Array.isArray(verification[key])) return { key, items: verification[key] };
  }
  if (verification.type === "recipe" && Array.isArray(verification.secrets)) return { key: "secrets", items: verification.secrets };
  return null;
}

function input(id, value, attrs = {}) {
  return h("input", { type: "text", id, name: id, value: value ?? "", ...attrs });
}

function labelled(label, element, hint) {
  return h("div", {}, h("label", { for: element.id }, label, hint ? h("span", { class: "hint" }, ` — ${hint}`) : null), element);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

export async function render(view, id) {
  const listener = await api("GET", listenerPath(id));
  const readOnly = listener.source === "config";
  const urlInput = h("input", { type: "text", id: "listener-url", class: "mono", readonly: true, value: "" });
  const loadUrl = async () => { urlInput.value = (await api("GET", listenerPath(id, "url"))).url; };
  await loadUrl();
  const copy = h("button", { type: "button", id: "copy-url", class: "secondary" }, "Copy");
  copy.addEventListener("click", async () => {
    const copied = await copyText(urlInput.value);
    if (!copied) { urlInput.select(); }
    toast(copied ? "URL copied" : "Select the URL and copy it");
  });
  const regenerate = h("button", { type: "button", id: "regenerate-url", class: "danger", disabled: readOnly }, "Regenerate…");
  regenerate.addEventListener("click", async () => {
    if (!confirm("Regenerate the URL? The current URL stops working at once; senders must be given the new one.")) return;
    try {
      const answer = await api("POST", listenerPath(id, "url"));
      urlInput.value = answer.url;
      toast("New URL generated");
    } catch (error) { toast(error.message, true); }
  });

  // Settings.
  const response = listener.response || {};
  const rate = listener.rate_limit || {};
  const f = {
    name: input("name", listener.name),
    description: input("description", listener.description),
    page_size: input("page_size", listener.page_size, { type: "number", min: 1, max: 10000 }),
    status: h("select", { id: "response-status" }, ["204", "200", "201", "202"].map((s) =>
      h("option", { value: s, selected: String(response.status) === s }, s))),
    media_type: input("media_type", response.media_type),
    body: h("textarea", { id: "response_body", class: "mono", value: response.body ?? "" }),
    trace: input("trace_key_template", listener.trace_key_template, { class: "mono" }),
    uri: input("data_uri_template", listener.data_uri_template, { class: "mono" }),
    strict: h("input", { type: "checkbox", id: "strict_templates", checked: listener.strict_templates }),
    capacity: input("rl-capacity", rate.capacity, { type: "number", min: 1 }),
    refill: input("rl-refill", rate.refill_per_sec, { type: "number", min: 1 }),
    noRetry: h("input", { type: "checkbox", id: "do_not_store_retry_data", checked: listener.do_not_store_retry_data }),
  };
  const problem = h("p", { class: "error-text", "data-test": "save-error" });
  const save = h("button", { type: "submit", id: "save-listener", disabled: readOnly }, "Save");
  const settings = h("form", { class: "card", id: "listener-settings" },
    h("h2", {}, "Settings"),
    readOnly ? h("p", { class: "hint" }, "Defined in the configuration file: read-only here.") : null,
    h("div", { class: "grid" }, labelled("Name", f.name), labelled("Description", f.description),
      labelled("Page size", f.page_size, "records per page")),
    h("h3", {}, "Response overrides"),
    h("div", { class: "grid" }, labelled("Success status", f.status), labelled("Media type", f.media_type)),
    labelled("Body template", f.body, "over request_id, record_count, records, headers, query"),
    h("h3", {}, "Templates"),
    h("div", { class: "grid2" }, labelled("Trace key template", f.trace), labelled("Data URI template", f.uri)),
    h("label", { class: "inline" }, f.strict, "Strict templates"),
    h("h3", {}, "Rate limit"),
    h("div", { class: "grid" }, labelled("Bucket capacity", f.capacity), labelled("Refill per second", f.refill)),
    h("label", { class: "inline" }, f.noRetry, "Do not store retry data"),
    problem, h("div", { class: "row" }, save));
  settings.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const orNull = (v) => (v.trim() === "" ? null : v);
    const patch = {
      name: f.name.value, description: f.description.value, page_size: Number(f.page_size.value),
      response: { status: Number(f.status.value), media_type: f.media_type.value, body: orNull(f.body.value) },
      trace_key_template: orNull(f.trace.value), data_uri_template: orNull(f.uri.value),
      strict_templates: f.strict.checked,
      rate_limit: { capacity: Number(f.capacity.value), refill_per_sec: Number(f.refill.value) },
      do_not_store_retry_data: f.noRetry.checked,
    };
    try {
      await api("PATCH", listenerPath(id), patch);
      toast("Saved");
    } catch (error) { problem.textContent = error.message; }
  });

  // Live preview of the templates over the current sample data.
  const previewBox = h("div", { id: "template-preview" }, h("p", { class: "hint" }, "Rendering…"));
  let timer = null;
  let generation = 0;
  const preview = async () => {
    const mine = ++generation;
    try {
      const result = await api("POST", listenerPath(id, "preview"), {
        trace_key_template: f.trace.value, data_uri_template: f.uri.value, response_body: f.body.value,
        strict_templates: f.strict.checked,
      });
      if (mine === generation) showPreview(previewBox, result);
    } catch (error) {
      if (mine === generation) replace(previewBox, h("p", { class: "error-text" }, error.message));
    }
  };
  const schedule = () => { clearTimeout(timer); timer = setTimeout(preview, PREVIEW_DELAY_MS); };
  for (const element of [f.trace, f.uri, f.body, f.strict]) element.addEventListener("input", schedule);
  preview();

  replace(view,
    h("h1", {}, listener.name ? `${listener.name} (${listener.id})` : listener.id),
    h("p", { class: "sub" }, listener.description || `Pages go to ${listener.topic}.`),
    listenerTabs(id, ""),
    h("div", { class: "card" }, h("h2", {}, "Public URL"),
      h("p", { class: "hint" }, "Give this URL to the sender. Regenerating it makes the old one answer 404."),
      h("div", { class: "row" }, h("div", { class: "spacer" }, urlInput), copy, regenerate),
      keyValues([["verification", listener.verification.type], ["formats", (listener.content.accept || []).join(", ")],
        ["methods", (listener.content.methods || []).join(", ")], ["topic", listener.topic], ["source", listener.source]])),
    h("div", { class: "grid2" }, settings,
      h("div", { class: "card" }, h("h2", {}, "Template preview"),
        h("p", { class: "hint" }, "The templates as typed, rendered over the latest sample data with hookpipe's own helpers. Nothing is saved until you press Save."),
        previewBox)),
    secretsCard(listener, id, readOnly),
    dangerCard(id, readOnly));
  return () => clearTimeout(timer);
}

function showPreview(box, result) {
  const parts = [];
  for (const problem of result.invalid || []) {
    parts.push(h("p", { class: "error-text", "data-field": problem.field }, `${problem.field}: ${problem.error}`));
  }
  if (result.records_from === "none") {
    parts.push(h("p", { class: "hint" }, "No sample data yet: send a request to the URL, or enter a sample by hand."));
  } else {
    const cell = (text, error) => (error ? h("td", { class: "error-text" }, error) : h("td", {}, text ?? "—"));
    parts.push(h("table", { class: "preview", "data-test": "preview-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "trace key"), h("th", {}, "data URI"))),
      h("tbody", {}, result.records.map((r) => h("tr", {}, h("td", {}, String(r.index)),
        cell(r.trace_key, r.trace_key_error), cell(r.data_uri, r.data_uri_error))))));
    parts.push(h("h3", {}, "Response body"));
    parts.push(result.response_body_error
      ? h("p", { class: "error-text" }, result.response_body_error)
      : h("pre", { id: "preview-body" }, result.response_body ?? "(no body template)"));
  }
  replace(box, parts);
}

function secretsCard(listener, id, readOnly) {
  const secrets = secretsOf(listener.verification);
  if (!secrets) return h("div", { class: "card" }, h("h2", {}, "Secrets"), h("p", { class: "hint" }, "This verification type has no secrets."));
  const basic = secrets.key === "credentials";
  const rows = secrets.items.map((item) => {
    const retire = h("button", { type: "button", class: "danger", disabled: readOnly || secrets.items.length < 2 }, "Retire");
    retire.addEventListener("click", async () => {
      if (!confirm("Retire this secret? Senders still signing with it will be refused.")) return;
      try {
        await api("DELETE", listenerPath(id, "secrets", item.fingerprint));
        toast("Secret retired");
        location.reload();
      } catch (error) { toast(error.message, true); }
    });
    return h("tr", {}, h("td", {}, basic ? item.username : "—"), h("td", { class: "mono" }, item.fingerprint), h("td", {}, retire));
  });
  const username = h("input", { type: "text", id: "new-username", placeholder: "username" });
  const secret = h("input", { type: "password", id: "new-secret", autocomplete: "off", placeholder: basic ? "password" : "new secret" });
  const add = h("form", { class: "row", id: "add-secret" }, basic ? username : null, h("div", { class: "spacer" }, secret),
    h("button", { type: "submit", disabled: readOnly }, "Add secret"));
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", listenerPath(id, "secrets"), basic ? { username: username.value, password: secret.value } : { secret: secret.value });
      toast("Secret added; retire the old one once senders use the new one");
      location.reload();
    } catch (error) { toast(error.message, true); }
  });
  return h("div", { class: "card", id: "secrets" }, h("h2", {}, "Secrets"),
    h("p", { class: "hint" }, "Write-only: only fingerprints are shown. Add the new secret, switch the sender, then retire the old one."),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "username"), h("th", {}, "fingerprint"), h("th", {}, ""))), h("tbody", {}, rows)),
    add);
}

function dangerCard(id, readOnly) {
  const remove = h("button", { type: "button", class: "danger", id: "delete-listener", disabled: readOnly }, "Delete listener…");
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete listener ${id}? Its URL stops working at once.`)) return;
    try {
      await api("DELETE", listenerPath(id));
      location.hash = "#/listeners";
    } catch (error) { toast(error.message, true); }
  });
  return h("div", { class: "card" }, remove);
}
