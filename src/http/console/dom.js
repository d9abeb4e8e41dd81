// Building the page: every piece of text goes through textContent (or a text node), never
// through HTML parsing, so webhook content — headers, bodies, records, error messages — is
// always shown as text, whatever it contains.

/** An element: `h("a", {href: "#/x", class: "b"}, "text", child)`. Strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "value") {
      element.value = value;
    } else if (name === "checked" || name === "disabled" || name === "selected" || name === "hidden") {
      element[name] = Boolean(value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A short message at the bottom right; `bad` for failures. */
export function toast(message, bad = false) {
  const box = h("div", { class: bad ? "toast bad" : "toast", "data-test": "toast" }, message);
  document.getElementById("flash").append(box);
  setTimeout(() => box.remove(), bad ? 8000 : 4000);
}

/** A collapsible JSON tree; every key and value is text. */
export function jsonTree(value, { open = 2 } = {}) {
  return h("div", { class: "tree", "data-test": "json-tree" }, node(null, value, 0, open));
}

function node(key, value, depth, open) {
  const label = key === null ? [] : [h("span", { class: "key" }, JSON.stringify(key)), ": "];
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
    const details = h("details", { open: depth < open }, h("summary", {}, ...label, summary));
    for (const [k, v] of entries) details.append(node(Array.isArray(value) ? null : k, v, depth + 1, open));
    return details;
  }
  const kind = typeof value === "string" ? "str" : typeof value === "number" ? "num" : "lit";
  return h("div", { class: "leaf" }, ...label, h("span", { class: kind }, JSON.stringify(value)));
}

/** A table of a header map (already redacted by the server). */
export function headerTable(headers) {
  const rows = Object.entries(headers || {}).map(([name, value]) =>
    h("tr", {}, h("td", { class: "mono" }, name), h("td", { class: "mono" }, Array.isArray(value) ? value.join(", ") : String(value))));
  if (!rows.length) return h("p", { class: "hint" }, "No headers.");
  return h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "header"), h("th", {}, "value"))), h("tbody", {}, rows));
}

/** `dt`/`dd` pairs. */
export function keyValues(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

/** A status badge coloured by class. */
export function statusBadge(status) {
  const kind = status < 300 ? "ok" : status < 500 ? "warn" : "bad";
  return h("span", { class: `badge ${kind}` }, String(status));
}

/** "3 s ago", "5 min ago", or the time. */
export function ago(time) {
  if (!time) return "never";
  const ms = Date.now() - Date.parse(time);
  if (Number.isNaN(ms)) return time;
  if (ms < 60_000) return `${Math.max(0, Math.round(ms / 1000))} s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min ago`;
  if (ms < 86_400_000) return `${Math.round(ms / 3_600_000)} h ago`;
  return new Date(time).toLocaleString();
}

/** Tabs of one listener's pages. */
export function listenerTabs(id, active) {
  const tab = (page, text) => h("a", { href: `#/listeners/${encodeURIComponent(id)}${page ? "/" + page : ""}`,
    class: active === page ? "active" : "" , "data-tab": page || "settings" }, text);
  return h("nav", { class: "tabs" }, tab("", "Settings"), tab("sample", "Sample data"), tab("mock", "Mock output"),
    tab("debug", "Debug logs"), tab("errors", "Errors"));
}

/** Parses JSON typed by hand: `{value}` or `{error}` with where it went wrong. */
export function parseJson(text) {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: error.message };
  }
}
