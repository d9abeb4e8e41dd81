// End-to-end test of the hookpipe console, as a person uses it, in Debian's headless Chromium
// driven by playwright-core. Started by tests/integration/console.rs, which runs the real
// server on a real (Tansu) broker, an import worker and an HTTP import target, and passes:
//
//   HOOKPIPE_URL          the server's base URL (http://127.0.0.1:PORT)
//   HOOKPIPE_TOKEN        its admin token
//   HOOKPIPE_TARGET_URL   the import target (POST {"control": "recover"} makes it succeed)
//   HOOKPIPE_SCREENSHOTS  where to write one PNG per page (docs/console/ for the committed set)
//   CHROMIUM              the browser (default /usr/bin/chromium)
//
// Every step prints one line; the first failure prints why, saves failure.png and exits 1.

import { execFileSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = required("HOOKPIPE_URL");
const TOKEN = required("HOOKPIPE_TOKEN");
const TARGET = required("HOOKPIPE_TARGET_URL");
const SHOTS = process.env.HOOKPIPE_SCREENSHOTS || "target/console-screenshots";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SECRET = "console-e2e-secret-1";
const LISTENER = "shop-orders";
const XSS_SCRIPT = "<script>window.__xss = 1</script>";
const XSS_IMG = "\"><img src=x onerror=\"window.__xss=2\">";
const WAIT = 30_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`e2e: ${name} is not set (run through tests/integration/console.rs)`);
    process.exit(2);
  }
  return value;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

let stepNumber = 0;
function step(text) {
  stepNumber += 1;
  console.log(`e2e step ${stepNumber}: ${text}`);
}

/** Sends a webhook with curl, as a sender would; returns the HTTP status. */
function curlPost(url, body, headers = {}) {
  const args = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url, "-H", "Content-Type: application/json", "--data-binary", body];
  for (const [name, value] of Object.entries(headers)) args.push("-H", `${name}: ${value}`);
  return Number(execFileSync("curl", args, { encoding: "utf8" }));
}

function signature(body, secret = SECRET) {
  return "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
}

/** A secret's fingerprint as the API shows it: the first 4 bytes of its SHA-256, in hex. */
function fingerprint(secret) {
  return createHash("sha256").update(secret).digest("hex").slice(0, 8);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
const page = await context.newPage();
mkdirSync(SHOTS, { recursive: true });
/** A screenshot of the page as it stands, scrolled to the top, without the passing toasts. */
async function shot(name) {
  await page.evaluate(() => {
    for (const toast of document.querySelectorAll("[data-test=toast]")) toast.remove();
    window.scrollTo(0, 0);
  });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

/** Some traffic for the metrics: `count` signed webhooks and one badly signed, to `url`. */
function traffic(url, count) {
  for (let i = 0; i < count; i++) {
    const body = JSON.stringify({ order_id: `T-${Date.now()}-${i}`, sku: `S-${i}` });
    check(curlPost(url, body, { "X-Shop-Signature": signature(body) }) === 202, "traffic accepted");
  }
  curlPost(url, "{}", { "X-Shop-Signature": "sha256=00" });
}

const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => {
  if (message.type() === "error" && !/Failed to load resource/.test(message.text())) problems.push(`console error: ${message.text()}`);
});
page.on("dialog", async (dialog) => {
  if (dialog.type() === "confirm") await dialog.accept();
  else { problems.push(`unexpected ${dialog.type()} dialog: ${dialog.message()}`); await dialog.dismiss(); }
});
const apiRequests = [];
page.on("request", (request) => {
  if (request.url().includes("/api/v1/")) apiRequests.push(request);
});

async function noXss() {
  check(await page.evaluate(() => window.__xss === undefined), "an XSS payload ran");
  check(await page.locator("main img").count() === 0, "an <img> from a payload was created");
  check(await page.locator("main script").count() === 0, "a <script> from a payload was created");
}

try {
  step("the console is served with a strict CSP, and the API wants a token");
  const response = await page.goto(`${BASE}/console`);
  const csp = response.headers()["content-security-policy"] || "";
  check(csp.includes("script-src 'self'") && csp.includes("default-src 'none'") && !csp.includes("unsafe-inline"), `CSP: ${csp}`);
  check(response.headers()["x-content-type-options"] === "nosniff", "nosniff header");

  step("sign in: a wrong token is refused, the right one is kept in sessionStorage, never a cookie");
  await page.locator("#token").fill("not-the-token");
  await page.locator("#signin button[type=submit]").click();
  await page.locator("[data-test=signin-error]").filter({ hasText: "not this instance's admin token" }).waitFor({ timeout: WAIT });
  await page.locator("#token").fill(TOKEN);
  await shot("signin");
  await page.locator("#signin button[type=submit]").click();
  await page.locator("#listeners-table").waitFor({ timeout: WAIT });
  check(await page.evaluate(() => document.cookie) === "", "no cookie");
  check((await context.cookies()).length === 0, "no cookie in the context");
  check(await page.evaluate(() => sessionStorage.getItem("hookpipe.admin_token")) !== null, "token in sessionStorage");

  step("create an HMAC listener from the form");
  await page.locator("#new-listener").click();
  await page.locator("#create-listener #id").fill(LISTENER);
  await page.locator("#create-listener #name").fill("Shop orders");
  await page.locator("#create-listener #trace_key_template").fill("{{order_id}}");
  await page.locator("#create-listener #ordering_key").fill("sku");
  await page.locator("#verification-type").selectOption("hmac");
  await page.locator("#v-header").fill("X-Shop-Signature");
  await page.locator("#v-prefix").fill("sha256=");
  await page.locator("#v-secret").fill(SECRET);
  await page.locator("#response-status").selectOption("202");
  await page.locator("#create-listener #response_body").fill("{\"received\": {{record_count}}}");
  await page.locator("#create-listener").screenshot({ path: join(SHOTS, "create-listener.png") });
  await page.locator("#create-submit").click();
  await page.locator("#listener-url").waitFor({ timeout: WAIT });
  const fingerprints = await page.locator("#secrets td.mono").allTextContents();
  check(fingerprints.length === 1 && !fingerprints[0].includes(SECRET), `secrets shown as one fingerprint: ${fingerprints}`);
  check(!(await page.content()).includes(SECRET), "the secret is nowhere on the page");
  const created = await page.evaluate(async ([base, token, id]) => {
    const answer = await fetch(`${base}/api/v1/listeners/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    return answer.json();
  }, [BASE, TOKEN, LISTENER]);
  check(created.ordering_key === "sku" && created.output_format === undefined && created.dedup === undefined,
    `the form's delivery settings: ${JSON.stringify([created.ordering_key, created.output_format, created.dedup])}`);

  step("copy the listener's URL");
  await page.locator("#copy-url").click();
  const url = await page.evaluate(() => navigator.clipboard.readText());
  check(url.startsWith(`${BASE}/hooks/`) && url === await page.locator("#listener-url").inputValue(), `copied URL: ${url}`);

  step("open a debug window; the countdown runs");
  await page.locator("[data-tab=debug]").click();
  await page.locator("button[data-minutes='15']").click();
  await page.locator("#debug-state .badge.ok").waitFor({ timeout: WAIT });
  const countdown = await page.locator("#debug-countdown").textContent();
  check(/^1[45]:[0-5]\d$/.test(countdown), `countdown ${countdown}`);

  step("a sender posts a signed webhook with curl (hostile content, and a record the target will refuse)");
  const body = JSON.stringify({ order_id: XSS_SCRIPT, note: XSS_IMG, sku: "FAIL-1", total: 12.5 });
  const status = curlPost(url, body, { "X-Shop-Signature": signature(body) });
  check(status === 202, `signed webhook answered ${status}`);
  const unsigned = curlPost(url, body, { "X-Shop-Signature": "sha256=00" });
  check(unsigned === 401, `badly signed webhook answered ${unsigned}`);

  step("the captures appear in the debug log; the payload stays text");
  await page.locator("#captures tr[data-request-id]").nth(1).waitFor({ timeout: WAIT });
  await page.locator("#filter-status").selectOption("2xx");
  check(await page.locator("#captures tr[data-request-id]").count() === 1, "the status filter keeps the 2xx capture");
  await page.locator("#captures tr[data-request-id]").first().click();
  const captured = await page.locator("#capture-body").textContent();
  // The body is the JSON the sender posted: the payloads are in it as JSON strings.
  check(captured.includes(XSS_SCRIPT) && captured.includes(JSON.stringify(XSS_IMG).slice(1, -1)), `capture body shown as text: ${captured}`);
  await noXss();
  await shot("debug-logs");
  await page.locator("#filter-status").selectOption("4xx");
  await page.locator("#captures tr[data-request-id]").first().click();
  check((await page.locator("#capture-detail").textContent()).includes("failed"), "the 401 capture says verification failed");

  step("the request is the listener's sample data, as a tree, payload as text");
  await page.locator("[data-tab=sample]").click();
  await page.locator("#sample-current [data-test=json-tree]").waitFor({ timeout: WAIT });
  const tree = await page.locator("#sample-current [data-test=json-tree]").textContent();
  check(tree.includes(JSON.stringify(XSS_SCRIPT)) && tree.includes("FAIL-1"), `sample tree: ${tree}`);
  check((await page.locator("#sample-current").textContent()).includes("x-shop-signature"), "headers are listed");
  await noXss();
  await shot("sample-data");

  step("the template preview renders edits over the sample");
  await page.locator("[data-tab=settings]").click();
  await page.locator("#data_uri_template").fill("https://shop.example/orders/{{sku}}");
  await page.locator("#template-preview td").filter({ hasText: "https://shop.example/orders/FAIL-1" }).waitFor({ timeout: WAIT });
  check((await page.locator("#template-preview").textContent()).includes(XSS_SCRIPT), "trace key preview shows the payload as text");
  check((await page.locator("#preview-body").textContent()).includes("\"received\": 1"), "response body preview");
  await page.locator("#data_uri_template").fill("{{nosuchhelper sku}}");
  await page.locator("#template-preview [data-field=data_uri_template]").waitFor({ timeout: WAIT });
  await page.locator("#data_uri_template").fill("https://shop.example/orders/{{sku}}");
  await page.locator("#template-preview td").filter({ hasText: "https://shop.example/orders/FAIL-1" }).waitFor({ timeout: WAIT });
  await page.locator("#save-listener").click();
  await page.locator("[data-test=toast]").filter({ hasText: "Saved" }).waitFor({ timeout: WAIT });
  await noXss();
  await shot("listener");

  step("the target refused the record: the error is listed, with its retry data");
  await page.locator("[data-tab=errors]").click();
  const deadline = Date.now() + 60_000;
  while ((await page.locator("#errors-table tr[data-record-id]").count()) === 0) {
    check(Date.now() < deadline, "no error appeared within 60 s");
    await page.waitForTimeout(1000);
    await page.locator("#errors-reload").click();
  }
  check((await page.locator("#errors-count").textContent()) === "1 open", "one open error");
  await page.locator("#errors-table [data-action=open]").first().click();
  await page.locator("#error-detail [data-test=json-tree]").waitFor({ timeout: WAIT });
  check((await page.locator("#error-detail").textContent()).includes("FAIL-1"), "retry data shown");
  check((await page.locator("#errors-table").textContent()).includes("<img src=x"), "the target's hostile error is text");
  await noXss();
  await shot("errors");

  step("the target recovers; retry from the console imports the record and closes the error");
  const recovered = await fetch(TARGET, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ control: "recover" }) });
  check(recovered.ok, `target control answered ${recovered.status}`);
  await page.locator("#errors-table [data-action=retry]").first().click();
  await page.locator("[data-test=toast]").filter({ hasText: "attempt 2" }).waitFor({ timeout: WAIT });
  const closeBy = Date.now() + 60_000;
  while ((await page.locator("#errors-count").textContent()) !== "0 open") {
    check(Date.now() < closeBy, "the retried error did not close within 60 s");
    await page.waitForTimeout(1000);
    await page.locator("#errors-reload").click();
  }

  step("mock output: validated as typed, saved, sent through the pipeline");
  await page.locator("[data-tab=mock]").click();
  await page.locator("#mock-editor").fill("[{\"order_id\": \"M-1\"");
  check((await page.locator("#mock-editor + p").textContent()).startsWith("Not JSON"), "invalid JSON is reported");
  await page.locator("#mock-editor").fill("[\n  {\"order_id\": \"M-1\", \"sku\": \"S-1\"},\n  {\"order_id\": \"M-2\", \"sku\": \"S-2\"}\n]");
  check((await page.locator("#mock-editor + p").textContent()) === "Valid JSON: 2 records", "valid JSON is counted");
  await page.locator("#send-mock").click();
  await page.locator("#mock-result").filter({ hasText: "Published 2 record(s)" }).waitFor({ timeout: WAIT });
  await shot("mock-output");

  step("the listeners table shows the listener's verification, traffic and errors");
  await page.goto(`${BASE}/console/#/listeners`);
  const row = page.locator(`#listeners-table tr[data-listener=${LISTENER}]`);
  await row.waitFor({ timeout: WAIT });
  check((await row.textContent()).includes("hmac"), "verification type listed");
  await row.locator("[data-col=last]").filter({ hasText: "ago" }).waitFor({ timeout: WAIT });
  await row.locator("[data-col=rate]").filter({ hasText: /^\d/ }).waitFor({ timeout: WAIT });
  traffic(url, 6);
  await row.locator("[data-col=rate]").filter({ hasText: /^([1-9]|0\.[1-9])/ }).waitFor({ timeout: WAIT });
  await shot("listeners");

  step("overview charts from the instance's metrics");
  await page.locator("[data-nav=overview]").click();
  await page.locator("[data-chart=requests] svg").waitFor({ timeout: WAIT });
  for (let second = 0; second < 9; second++) {
    traffic(url, 1 + (second % 4));
    await page.waitForTimeout(1000);
    if (second === 7) await shot("overview");
  }
  check((await page.locator("[data-chart=requests]").textContent()).includes("2xx"), "requests by status class");
  check(await page.locator("[data-chart=requests] polyline").count() > 0, "the requests chart has a line");

  step("regenerate the URL (confirmed): the old one answers 404, the new one works");
  await page.goto(`${BASE}/console/#/listeners/${LISTENER}`);
  await page.locator("#listener-url").waitFor({ timeout: WAIT });
  await page.locator("#regenerate-url").click();
  await page.locator("[data-test=toast]").filter({ hasText: "New URL" }).waitFor({ timeout: WAIT });
  const fresh = await page.locator("#listener-url").inputValue();
  check(fresh !== url && fresh.startsWith(`${BASE}/hooks/`), `new URL ${fresh}`);
  const ok = JSON.stringify({ order_id: "after-regenerate", sku: "S-3" });
  check(curlPost(url, ok, { "X-Shop-Signature": signature(ok) }) === 404, "the old URL is gone");
  check(curlPost(fresh, ok, { "X-Shop-Signature": signature(ok) }) === 202, "the new URL works");

  step("rotate the secret: add a second one, both verify; retire the first, only the new one does");
  const SECOND = "console-e2e-secret-2";
  await page.locator("#new-secret").fill(SECOND);
  await page.locator("#add-secret button[type=submit]").click();
  await page.waitForFunction(() => document.querySelectorAll("#secrets td.mono").length === 2, undefined, { timeout: WAIT });
  const shown = await page.locator("#secrets td.mono").allTextContents();
  check(JSON.stringify(shown) === JSON.stringify([fingerprint(SECRET), fingerprint(SECOND)]), `fingerprints ${shown}`);
  check(!(await page.content()).includes(SECOND), "the new secret is nowhere on the page");
  const rotated = JSON.stringify({ order_id: "rotated", sku: "S-4" });
  check(curlPost(fresh, rotated, { "X-Shop-Signature": signature(rotated, SECOND) }) === 202, "the new secret verifies");
  check(curlPost(fresh, rotated, { "X-Shop-Signature": signature(rotated) }) === 202, "the old one still does");
  await page.locator("#secrets tr", { hasText: fingerprint(SECRET) }).locator("button").click();
  // The page reloads after the retirement: wait for the reloaded list, not for the old one to go.
  await page.waitForFunction((expected) => {
    const cells = [...document.querySelectorAll("#secrets td.mono")].map((cell) => cell.textContent);
    return JSON.stringify(cells) === JSON.stringify(expected);
  }, [fingerprint(SECOND)], { timeout: WAIT });
  check(curlPost(fresh, rotated, { "X-Shop-Signature": signature(rotated) }) === 401, "the retired secret is refused");

  step("every API call carried the bearer token, and nothing broke");
  check(apiRequests.length > 10 && apiRequests.every((r) => (r.headers().authorization || "").startsWith("Bearer ")), "bearer on every call");
  check(apiRequests.every((r) => !r.headers().cookie), "no cookie sent");
  await noXss();
  check(problems.length === 0, problems.join("\n"));
  console.log(`e2e: ok (${stepNumber} steps; screenshots in ${SHOTS})`);
  await browser.close();
} catch (error) {
  console.error(`e2e: FAILED at step ${stepNumber}: ${error.message}`);
  if (problems.length) console.error(problems.join("\n"));
  await page.screenshot({ path: join(SHOTS, "failure.png"), fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
}
