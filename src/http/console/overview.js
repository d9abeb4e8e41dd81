// Overview: small charts of this instance's own metrics (`/metrics`, read every 2 s and kept
// for 2 minutes in the page): requests per second by status class, verification failures,
// rate-limited requests, pages published and Kafka produce latency.

import { metricsText } from "./api.js";
import { h, replace } from "./dom.js";
import { byLabel, parseMetrics, rate, total } from "./metrics.js";

const POLL_MS = 2000;
const KEEP = 60;
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return element;
}

/** A chart of series `{label: [number|null…]}` with the latest value printed above. */
function chart(box, title, unit, series) {
  const width = 300;
  const height = 90;
  const values = Object.values(series).flat().filter((v) => v !== null);
  const max = Math.max(1e-9, ...values) * 1.1;
  const drawing = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": title });
  drawing.append(svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, stroke: "#d8dee6" }));
  const legend = [];
  Object.entries(series).forEach(([label, points], index) => {
    const coordinates = points.map((v, i) => (v === null ? null : `${(i / (KEEP - 1)) * width},${height - (v / max) * (height - 4) - 2}`)).filter(Boolean);
    if (coordinates.length > 1) drawing.append(svg("polyline", { points: coordinates.join(" "), class: `c${index % 4}` }));
    const last = [...points].reverse().find((v) => v !== null);
    legend.push(h("span", {}, h("span", { class: `swatch c${index % 4}` }), `${label} ${last === undefined ? "—" : format(last)}`));
  });
  const latest = Object.values(series).map((points) => [...points].reverse().find((v) => v !== null) ?? 0).reduce((a, b) => a + b, 0);
  replace(box, h("h3", {}, title), h("div", { class: "now" }, `${format(latest)} ${unit}`), drawing, h("div", { class: "legend" }, legend));
}

function format(value) {
  if (value === null || value === undefined) return "—";
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

export async function render(view) {
  const boxes = {};
  const names = ["requests", "verification", "limited", "pages", "latency"];
  for (const name of names) boxes[name] = h("div", { class: "chart", "data-chart": name }, h("p", { class: "hint" }, "Collecting…"));
  const gauges = h("div", { id: "gauges" });
  const problem = h("p", { class: "error-text" });
  replace(view, h("h1", {}, "Overview"),
    h("p", { class: "sub" }, "This instance, from its own /metrics (read every 2 s, last 2 minutes). Each instance of a fleet shows its own share."),
    problem, gauges, h("div", { class: "grid" }, names.map((name) => boxes[name])));

  const readings = [];
  const read = async () => {
    let samples;
    try {
      samples = parseMetrics(await metricsText());
      problem.textContent = "";
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    readings.push({ at: Date.now(), samples });
    while (readings.length > KEEP + 1) readings.shift();
    const series = (value) => {
      const points = [];
      for (let i = 1; i < readings.length; i++) {
        points.push(rate({ at: readings[i - 1].at, value: value(readings[i - 1].samples) }, { at: readings[i].at, value: value(readings[i].samples) }));
      }
      while (points.length < KEEP) points.unshift(null);
      return points;
    };
    const classes = new Set(readings.flatMap((r) => Object.keys(byLabel(r.samples, "hookpipe_http_requests_total", "status_class"))));
    const requests = {};
    for (const statusClass of [...classes].sort()) {
      requests[statusClass] = series((s) => total(s, "hookpipe_http_requests_total", { status_class: statusClass }));
    }
    chart(boxes.requests, "Requests by status", "req/s", Object.keys(requests).length ? requests : { requests: series(() => 0) });
    chart(boxes.verification, "Verification failures", "/s", { failures: series((s) => total(s, "hookpipe_verification_failures_total")) });
    chart(boxes.limited, "Rate limited", "/s", { limited: series((s) => total(s, "hookpipe_rate_limited_total")) });
    chart(boxes.pages, "Pages published", "pages/s", { published: series((s) => total(s, "hookpipe_pages_published_total")),
      failed: series((s) => total(s, "hookpipe_pages_failed_total")) });
    const latency = [];
    for (let i = 1; i < readings.length; i++) {
      const count = total(readings[i].samples, "hookpipe_kafka_produce_latency_seconds_count") - total(readings[i - 1].samples, "hookpipe_kafka_produce_latency_seconds_count");
      const sum = total(readings[i].samples, "hookpipe_kafka_produce_latency_seconds_sum") - total(readings[i - 1].samples, "hookpipe_kafka_produce_latency_seconds_sum");
      latency.push(count > 0 ? (sum / count) * 1000 : null);
    }
    while (latency.length < KEEP) latency.unshift(null);
    chart(boxes.latency, "Kafka produce latency (mean)", "ms", { mean: latency });
    const gauge = (label, name) => h("span", { class: "badge" }, `${label}: ${Math.round(total(samples, name))}`);
    replace(gauges, h("div", { class: "row" }, gauge("in flight", "hookpipe_in_flight_requests"),
      gauge("producer queue", "hookpipe_producer_queue_depth"), gauge("debug windows open", "hookpipe_debug_windows_open"),
      gauge("records published", "hookpipe_records_published_total")));
  };
  await read();
  const timer = setInterval(read, POLL_MS);
  return () => clearInterval(timer);
}
