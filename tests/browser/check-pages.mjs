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
  while (next < paths.length) {
    const p = paths[next++];
    const page = await context.newPage();
    const failures = [];
    const errors = [];
    page.on("requestfailed", (r) => {
      const err = r.failure()?.errorText ?? "failed";
      // Media loads are cancelled when a page closes; that is not a broken reference.
      if (!err.includes("ERR_ABORTED")) failures.push({ url: r.url(), error: err });
    });
    page.on("response", (r) => {
      if (r.status() >= 400) failures.push({ url: r.url(), status: r.status() });
    });
    page.on("console", (m) => {
      if (m.type() === "error") errors.push({ text: m.text(), url: m.location()?.url ?? "" });
    });
    page.on("pageerror", (e) => errors.push({ text: String(e), url: p }));
    let status = 0;
    try {
      const resp = await page.goto(base + p, { waitUntil: "load", timeout: 30000 });
      status = resp ? resp.status() : 0;
      await page.waitForTimeout(200); // dynamic imports, lazy modules
    } catch (e) {
      errors.push({ text: "navigation: " + String(e), url: p });
    }
    results.push({ page: p, status, failures, errors });
    await page.close();
  }
}

await Promise.all(Array.from({ length: Number(conc) }, worker));
await browser.close();
process.stdout.write(JSON.stringify(results));
