// The form that creates a listener: every setting the API takes, grouped as the README lists
// them, with the verification scheme's own fields (secrets are write-only: typed here, shown
// afterwards as fingerprints only). Anything the form has no field for goes in "Advanced".

import { h, parseJson } from "./dom.js";

export const FORMATS = ["json", "xml", "form", "multipart", "csv", "ndjson", "query"];
const METHODS = ["POST", "PUT", "PATCH", "GET", "DELETE"];
const PRESETS = ["github", "stripe", "slack", "shopify", "standard_webhooks", "zendesk"];
const TOLERANCE = ["stripe", "slack", "standard_webhooks", "zendesk"];

/** The verification types the form offers, with a short description. */
export const VERIFICATIONS = [
  ["none", "None (accept every request)"],
  ["hmac", "HMAC signature of the body in a header"],
  ["basic", "HTTP Basic username/password"],
  ["secret_url", "Secret URL (token in the path)"],
  ["token", "Shared token in a header, query parameter or JSON field"],
  ["github", "GitHub"], ["stripe", "Stripe"], ["slack", "Slack"], ["shopify", "Shopify"],
  ["standard_webhooks", "Standard Webhooks / Svix"], ["zendesk", "Zendesk"], ["twilio", "Twilio"],
];

function field(label, input, hint) {
  return h("div", {}, h("label", { for: input.id }, label, hint ? h("span", { class: "hint" }, ` — ${hint}`) : null), input);
}

function text(id, attrs = {}) {
  return h("input", { type: "text", id, name: id, ...attrs });
}

function checks(name, values, checked) {
  return h("div", { id: name }, values.map((value) =>
    h("label", { class: "inline" }, h("input", { type: "checkbox", name, value, checked: checked.includes(value) }), value)));
}

/** The fields of one verification type. */
function verificationFields(type) {
  const secret = (label = "Secret") => field(label, h("input", { type: "password", id: "v-secret", autocomplete: "off" }),
    "write-only: shown afterwards as a fingerprint");
  switch (type) {
    case "hmac":
      return [
        field("Algorithm", h("select", { id: "v-algorithm" }, ["sha256", "sha1", "sha384", "sha512"].map((a) => h("option", { value: a }, a)))),
        field("Encoding", h("select", { id: "v-encoding" }, ["hex", "base64"].map((a) => h("option", { value: a }, a)))),
        field("Signature header", text("v-header", { value: "X-Signature" })),
        field("Prefix", text("v-prefix", { placeholder: "sha256=" }), "literal text before the signature, if any"),
        secret(),
      ];
    case "basic":
      return [field("Username", text("v-username")), field("Password", h("input", { type: "password", id: "v-secret", autocomplete: "off" }))];
    case "secret_url":
      return [h("p", { class: "hint" }, "A random token is generated and becomes the last segment of the listener's URL.")];
    case "token":
      return [
        field("Header", text("v-token-header", { placeholder: "X-Webhook-Token" })),
        field("Query parameter", text("v-token-query", { placeholder: "token" })),
        field("JSON body field", text("v-token-json", { placeholder: "auth.token" })),
        secret("Token"),
      ];
    case "twilio":
      return [secret("Auth token")];
    default:
      if (!PRESETS.includes(type)) return [];
      return [
        secret(),
        TOLERANCE.includes(type)
          ? field("Replay window (seconds)", h("input", { type: "number", id: "v-tolerance", min: 1, placeholder: "300" }))
          : null,
      ];
  }
}

/** The create form; `onSubmit(body)` is called with the API body. */
export function createForm(onSubmit) {
  const verificationType = h("select", { id: "verification-type" }, VERIFICATIONS.map(([value, label]) => h("option", { value }, label)));
  const verificationBox = h("div", { class: "grid", id: "verification-fields" });
  const showVerification = () => verificationBox.replaceChildren(...verificationFields(verificationType.value).filter(Boolean));
  verificationType.addEventListener("change", showVerification);
  showVerification();
  const status = h("select", { id: "response-status" }, ["204", "200", "201", "202"].map((s) => h("option", { value: s }, s)));
  const problem = h("p", { class: "error-text", "data-test": "create-error" });
  const outputFormat = h("select", { id: "output_format" },
    [["", "server default"], ["page", "pages"], ["cloudevents_binary", "CloudEvents, binary mode"],
      ["cloudevents_structured", "CloudEvents, structured mode"]].map(([v, label]) => h("option", { value: v }, label)));
  const form = h("form", { class: "card", id: "create-listener" },
    h("h2", {}, "Create a listener"),
    h("div", { class: "grid" },
      field("Id", text("id", { required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", placeholder: "orders" }), "letters, digits, - and _"),
      field("Name", text("name", { placeholder: "Shop orders" })),
      field("Description", text("description")),
      field("Topic", text("topic", { placeholder: "default: kafka.pages_topic" }))),
    h("h3", {}, "Content"),
    h("label", {}, "Formats accepted"), checks("accept", FORMATS, ["json", "xml", "form"]),
    h("label", {}, "Methods accepted"), checks("methods", METHODS, ["POST", "PUT"]),
    h("div", { class: "grid" },
      field("Resource path", text("resource_path", { placeholder: "data.items" }), "where the records are in the body"),
      field("Max body bytes", h("input", { type: "number", id: "max_body_bytes", min: 1, placeholder: "server default" })),
      field("Page size", h("input", { type: "number", id: "page_size", min: 1, max: 10000, value: "20" }))),
    h("h3", {}, "Templates"),
    h("div", { class: "grid" },
      field("Trace key template", text("trace_key_template", { class: "mono", placeholder: "{{order_id}}" })),
      field("Data URI template", text("data_uri_template", { class: "mono", placeholder: "{{base_url}}/orders/{{id}}" }))),
    h("label", { class: "inline" }, h("input", { type: "checkbox", id: "strict_templates" }), "Strict templates (a failure refuses the request)"),
    h("h3", {}, "Delivery"),
    h("div", { class: "grid" },
      field("Ordering key", text("ordering_key", { class: "mono", placeholder: "customer.id or {{region}}/{{customer_id}}" }),
        "records with one key are imported in order; different keys in parallel"),
      field("Output format", outputFormat, "CloudEvents: one event per record (not with an ordering key)"),
      field("Dedup window (seconds)", h("input", { type: "number", id: "dedup-window", min: 1, placeholder: "the provider's horizon" }),
        "with deduplication on")),
    h("label", { class: "inline" }, h("input", { type: "checkbox", id: "dedup" }),
      "Deduplicate deliveries by the provider's delivery id (a repeat is answered, not published)"),
    h("h3", {}, "Response"),
    h("div", { class: "grid" },
      field("Success status", status),
      field("Media type", text("media_type", { value: "json" }), "json, xml, text or type/subtype"),
      field("Body template", text("response_body", { class: "mono", placeholder: "{\"received\": {{record_count}}}" }), "not with 204")),
    h("h3", {}, "Verification"),
    field("Type", verificationType), verificationBox,
    h("h3", {}, "Rate limit and retry data"),
    h("div", { class: "grid" },
      field("Bucket capacity", h("input", { type: "number", id: "rl-capacity", min: 1, value: "1000" })),
      field("Refill per second", h("input", { type: "number", id: "rl-refill", min: 1, value: "300" }))),
    h("label", { class: "inline" }, h("input", { type: "checkbox", id: "do_not_store_retry_data" }), "Do not store retry data"),
    h("details", {}, h("summary", {}, "Advanced (JSON merged into the settings: content.csv, content.multipart, recipes, …)"),
      h("textarea", { id: "advanced", placeholder: "{\"content\": {\"csv\": {\"delimiter\": \";\"}}}" })),
    problem,
    h("div", { class: "row" }, h("button", { type: "submit", id: "create-submit" }, "Create listener")));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    problem.textContent = "";
    const built = buildBody(form, verificationType.value);
    if (built.error) {
      problem.textContent = built.error;
      return;
    }
    onSubmit(built.body, problem);
  });
  return form;
}

const value = (form, id) => form.querySelector(`#${id}`)?.value.trim() ?? "";
const number = (form, id) => (value(form, id) === "" ? undefined : Number(value(form, id)));
const checked = (form, name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((c) => c.value);

function verificationBody(form, type) {
  const secret = value(form, "v-secret");
  switch (type) {
    case "none":
      return { type };
    case "hmac":
      return { type, algorithm: value(form, "v-algorithm"), encoding: value(form, "v-encoding"), header: value(form, "v-header"),
        prefix: value(form, "v-prefix") || undefined, secrets: secret ? [secret] : [] };
    case "basic":
      return { type, credentials: [{ username: value(form, "v-username"), password: secret }] };
    case "secret_url":
      return { type };
    case "token":
      return { type, tokens: secret ? [secret] : [], header: value(form, "v-token-header") || undefined,
        query: value(form, "v-token-query") || undefined, json_path: value(form, "v-token-json") || undefined };
    case "twilio":
      return { type, auth_tokens: secret ? [secret] : [] };
    default:
      return { type, secrets: secret ? [secret] : [], tolerance_secs: number(form, "v-tolerance") };
  }
}

function buildBody(form, type) {
  const body = {
    id: value(form, "id"),
    name: value(form, "name") || undefined,
    description: value(form, "description") || undefined,
    topic: value(form, "topic") || undefined,
    content: { accept: checked(form, "accept"), methods: checked(form, "methods"), max_body_bytes: number(form, "max_body_bytes") },
    resource_path: value(form, "resource_path") || undefined,
    page_size: number(form, "page_size"),
    trace_key_template: value(form, "trace_key_template") || undefined,
    data_uri_template: value(form, "data_uri_template") || undefined,
    strict_templates: form.querySelector("#strict_templates").checked,
    ordering_key: value(form, "ordering_key") || undefined,
    output_format: value(form, "output_format") || undefined,
    dedup: form.querySelector("#dedup").checked ? { window_secs: number(form, "dedup-window") } : undefined,
    response: { status: Number(value(form, "response-status")), media_type: value(form, "media_type") || "json",
      body: value(form, "response_body") || undefined },
    verification: verificationBody(form, type),
    rate_limit: { capacity: number(form, "rl-capacity"), refill_per_sec: number(form, "rl-refill") },
    do_not_store_retry_data: form.querySelector("#do_not_store_retry_data").checked,
  };
  const advanced = value(form, "advanced");
  if (advanced) {
    const parsed = parseJson(advanced);
    if (parsed.error || typeof parsed.value !== "object" || Array.isArray(parsed.value)) {
      return { error: `Advanced: not a JSON object (${parsed.error || "wrong type"})` };
    }
    merge(body, parsed.value);
  }
  return { body: JSON.parse(JSON.stringify(body)) };
}

/** RFC 7396 merge of `patch` into `target`. */
export function merge(target, patch) {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete target[key];
    else if (typeof value === "object" && !Array.isArray(value) && typeof target[key] === "object" && target[key]) merge(target[key], value);
    else target[key] = value;
  }
  return target;
}
