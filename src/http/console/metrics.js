// Reading the instance's own Prometheus text exposition: samples, sums by label, and rates
// between two readings (the console's charts and requests-per-minute come from here).

/** `[{name, labels, value}]` of a text exposition; comments and malformed lines are skipped. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

/** The sum of `name`'s samples whose labels match every entry of `where`. */
export function total(samples, name, where = {}) {
  let sum = 0;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => sample.labels[k] === v)) sum += sample.value;
  }
  return sum;
}

/** `name`'s sums grouped by one label. */
export function byLabel(samples, name, label) {
  const groups = {};
  for (const sample of samples) {
    if (sample.name !== name || !(label in sample.labels)) continue;
    groups[sample.labels[label]] = (groups[sample.labels[label]] || 0) + sample.value;
  }
  return groups;
}

/** Per-second rate of a counter between two readings `{at, value}` (0 after a restart). */
export function rate(before, after) {
  if (!before || !after || after.at <= before.at) return null;
  const delta = after.value - before.value;
  return delta < 0 ? 0 : delta / ((after.at - before.at) / 1000);
}
