// Loads pages of a site in headless Chromium (Debian's, via playwright-core)
// and reports, per page, failed requests (network errors and HTTP >= 400),
// console errors and uncaught exceptions, as JSON on stdout.
//
//   node check-pages.mjs BASE_URL PATHS.json [CONCURRENCY]
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.CDNSYNC_TEST_NODE_MODULES + "/");
const { chromium } = require("playwright-core");

const [base, listFile, conc = "2"] = process.argv.slice(2);
const paths = JSON.parse(fs.readFileSync(listFile, "utf8"));
const browser = await chromium.launch({
  executablePath: process.env.CDNSYNC_TEST_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext();
const results = [];
let next = 0;

async function worker() {
  // One tab per worker, reused: opening a tab per page costs more than the page.
  const page = await context.newPage();
  let current = null;
  page.on("requestfailed", (r) => {
    const err = r.failure()?.errorText ?? "failed";
    // Media loads are cancelled when a page is left; that is not a broken reference.
    if (current && !err.includes("ERR_ABORTED")) current.failures.push({ url: r.url(), error: err });
  });
  page.on("response", (r) => {
    if (current && r.status() >= 400) current.failures.push({ url: r.url(), status: r.status() });
  });
  page.on("console", (m) => {
    if (current && m.type() === "error") current.errors.push({ text: m.text(), url: m.location()?.url ?? "" });
  });
  page.on("pageerror", (e) => current && current.errors.push({ text: String(e), url: current.page }));
  while (next < paths.length) {
    const p = paths[next++];
    current = { page: p, status: 0, failures: [], errors: [] };
    try {
      const resp = await page.goto(base + p, { waitUntil: "load", timeout: 30000 });
      current.status = resp ? resp.status() : 0;
      await page.waitForTimeout(100); // dynamic imports, lazy modules
    } catch (e) {
      current.errors.push({ text: "navigation: " + String(e), url: p });
    }
    results.push(current);
  }
  current = null;
  await page.close();
}

await Promise.all(Array.from({ length: Number(conc) }, worker));
await browser.close();
process.stdout.write(JSON.stringify(results));
