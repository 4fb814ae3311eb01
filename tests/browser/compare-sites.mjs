// Compares a site before and after publishing, in headless Chromium, to catch
// what a content-addressed publish can break that loading each page once does
// not show: files the site's JavaScript loads by their original name after
// client-side navigation (a navbar logo re-rendered by React, VitePress page
// chunks, search indexes, images under public/ named as strings), search boxes,
// theme toggles. The same scenario runs against BEFORE (the build directory on
// a plain static server, tests/browser/static-server.mjs) and AFTER (the copy
// published by cdnsync, `cdnsync serve`); anything that goes wrong after and
// not before is a regression. scripts/check-site.sh wires it all together.
//
//   node tests/browser/compare-sites.mjs BEFORE_URL AFTER_URL SCENARIO.json [--out FILE] [--paths FILE]
//
//   --out FILE    write the JSON report to FILE instead of stdout
//   --paths FILE  a JSON list of extra paths to load directly (first), e.g. every page
//
// Needs playwright-core (CDNSYNC_TEST_NODE_MODULES: the node_modules holding it,
// default ~/.cache/cdnsync-testenv/node/node_modules) and Chromium
// (CDNSYNC_TEST_CHROMIUM, default /usr/bin/chromium); downloads nothing.
//
// Scenario: {"name": "...", "crashText": ["This page crashed"], "crashSelector": ".NotFound",
//            "steps": [ ... ]}, each step one of
//   {"goto": "/docs/intro/"}                          direct load (status compared)
//   {"click": "CSS", "nth": 0}                        click (client-side navigation, toggles)
//   {"type": "text", "into": "CSS"}                   type, key by key, into an input
//   {"press": "Enter"}                                a key on the focused element
//   {"waitFor": "CSS"}                                wait until visible
//   {"back": true}                                    history back
//   {"clickAllLinks": "/", "within": "CSS", "max": 40} expands (on BEFORE) into a direct load
//                                                     of "/" + a click, for every distinct
//                                                     same-origin link on that page
// with optional "name", "nth" (which match, -1: the last), "ifPresent" (skip the step
// when the element does not show within 2 s; a step that ran before and is skipped
// after is a regression), "timeout" (ms, default 15000),
// "settle" (ms of network quiet to wait for, default 300) and checks:
//   "expectPath": "/blog/"  "expectPathMatches": "^/docs/"  final path after the step
//   "expectVisible": "CSS"  the page rendered this
//   "expectChange": "JS expression"  its value differs after the step (theme toggles)
//
// Recorded after every step, per site: failed requests (network errors except
// ERR_ABORTED, HTTP >= 400), console errors, uncaught exceptions, broken <img>
// (complete && naturalWidth === 0), the final path, the document status of direct
// loads, and whether the step itself failed. Requests to other origins are blocked
// (the test is hermetic) and listed as ignored. Compared by URL path, with
// cdnsync's `.<hex>` name hash removed, so other ports and renamed assets match.
//
// Output: {before: [steps], after: [steps], regressions: [...], moved: [...], ...}
// as JSON; a readable summary on stderr. Exit 0: no regressions; 1: regressions;
// 2: harness error or a broken scenario (a step failed on BEFORE).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

function usage(msg) {
  process.stderr.write(`compare-sites: ${msg}\n` +
    "usage: node compare-sites.mjs BEFORE_URL AFTER_URL SCENARIO.json [--out FILE] [--paths FILE]\n");
  process.exit(2);
}

const args = process.argv.slice(2);
const positional = [];
let outFile = null;
let pathsFile = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--out") outFile = args[++i];
  else if (args[i] === "--paths") pathsFile = args[++i];
  else if (args[i].startsWith("--")) usage(`unknown option ${args[i]}`);
  else positional.push(args[i]);
}
if (positional.length !== 3) usage("expected 3 arguments");
const [beforeUrl, afterUrl, scenarioFile] = positional;

const modules = process.env.CDNSYNC_TEST_NODE_MODULES ||
  path.join(os.homedir(), ".cache/cdnsync-testenv/node/node_modules");
let chromium;
try {
  ({ chromium } = createRequire(modules.replace(/\/?$/, "/"))("playwright-core"));
} catch (e) {
  usage(`playwright-core not found in ${modules} (set CDNSYNC_TEST_NODE_MODULES): ${e.message}`);
}

let scenario;
try {
  scenario = JSON.parse(fs.readFileSync(scenarioFile, "utf8"));
  if (!Array.isArray(scenario.steps)) throw new Error("no \"steps\" list");
  if (pathsFile) {
    const extra = JSON.parse(fs.readFileSync(pathsFile, "utf8"));
    scenario.steps = [...extra.map((p) => ({ goto: p })), ...scenario.steps];
  }
} catch (e) {
  usage(`cannot read the scenario: ${e.message}`);
}

const LAUNCH = {
  executablePath: process.env.CDNSYNC_TEST_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
};
const DEFAULT_TIMEOUT = 15000;

// --- URL normalisation ------------------------------------------------------

// Same-origin URLs become path + query (no fragment); others stay whole.
function norm(url, origin) {
  try {
    const u = new URL(url);
    if (u.origin === origin) return u.pathname + u.search;
    u.hash = "";
    return u.href;
  } catch {
    return url;
  }
}
// The comparison key of a URL or message: origin removed, and the `.<hex>`
// content hash cdnsync inserts before an extension (8-64 hex digits) removed,
// so `/img/logo.svg` and `/img/logo.3f9c0a1b2d4e.svg` compare equal.
const HASH = /\.[0-9a-f]{8,64}(?=\.[A-Za-z0-9]+(?:[?#:)\s"']|$))/g;
function key(text, origin) {
  return String(text).split(origin).join("").replace(HASH, "");
}

// --- one site ----------------------------------------------------------------

function describe(step) {
  if (step.name) return step.name;
  if (step.goto !== undefined) return `load ${step.goto}`;
  if (step.click) return `click ${step.click}${step.nth ? ` #${step.nth}` : ""}`;
  if (step.type !== undefined) return `type "${step.type}" into ${step.into}`;
  if (step.press) return `press ${step.press}`;
  if (step.waitFor) return `wait for ${step.waitFor}`;
  if (step.back) return "history back";
  return JSON.stringify(step);
}

// Expands clickAllLinks steps into concrete loads and clicks, by reading the
// links of the page on BEFORE; AFTER runs the very same list.
async function expand(browser, base, steps) {
  const out = [];
  for (const step of steps) {
    if (step.clickAllLinks === undefined) {
      out.push(step);
      continue;
    }
    const from = step.clickAllLinks;
    const page = await browser.newPage();
    const origin = new URL(base).origin;
    await page.route((u) => u.origin !== origin, (r) => r.abort("blockedbyclient"));
    await page.goto(base.replace(/\/$/, "") + from, { waitUntil: "load", timeout: DEFAULT_TIMEOUT });
    await page.waitForTimeout(step.settle ?? 300);
    const links = await page.$$eval(`${step.within ?? "body"} a[href]`, (els, origin) => {
      const seen = new Set();
      const found = [];
      for (const a of els) {
        const raw = a.getAttribute("href");
        // In-page anchors are skipped; hash routes (#/path, #!/path) are navigation.
        const hashRoute = /^#!?\//.test(raw);
        if (!raw || (raw.startsWith("#") && !hashRoute) || a.target === "_blank" || a.hasAttribute("download")) continue;
        const u = new URL(a.href);
        if (u.origin !== origin || !/^https?:$/.test(u.protocol)) continue;
        const r = a.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue; // not clickable (collapsed menus)
        const k = u.pathname + u.search + (hashRoute ? u.hash : "");
        if (seen.has(k)) continue;
        seen.add(k);
        found.push(raw);
      }
      return found;
    }, origin);
    await page.close();
    for (const raw of links.slice(0, step.max ?? 40)) {
      const sel = `${step.within ?? "body"} a[href=${JSON.stringify(raw)}]`;
      out.push({ goto: from, name: `load ${from} (to click ${raw})` });
      out.push({ click: sel, visibleOnly: true, name: `click link ${raw} on ${from}` });
    }
  }
  return out;
}

async function runSite(browser, base, steps, label) {
  const origin = new URL(base).origin;
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    colorScheme: "light",
    reducedMotion: "reduce",
    serviceWorkers: "block",
    locale: "en-US",
  });
  const page = await context.newPage();
  const records = [];
  let cur = null; // the record events are attributed to
  const inflight = new Map(); // request -> start time
  const STALE_MS = 5000; // a request pending longer is not waited for (it is noted)
  let lastActivity = Date.now();
  const failedUrls = new Set();
  const ignore = (item) => (cur ? cur.ignored.push(item) : null);

  await context.route((u) => u.origin !== origin, (route) => route.abort("blockedbyclient"));
  page.on("request", (r) => {
    // A new document: what the old one had in flight (prefetches, mostly) may
    // never report an end to this page; stop waiting for it.
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) inflight.clear();
    inflight.set(r, Date.now());
    lastActivity = Date.now();
  });
  page.on("requestfinished", (r) => { inflight.delete(r); lastActivity = Date.now(); });
  page.on("requestfailed", (r) => {
    inflight.delete(r);
    lastActivity = Date.now();
    const url = r.url();
    const error = r.failure()?.errorText ?? "failed";
    if (new URL(url).origin !== origin) {
      return ignore({ url, error, reason: "other origin (blocked: the test is hermetic)" });
    }
    if (error.includes("ERR_ABORTED")) {
      // Cancelled by a navigation or by the page (prefetches, media, a replaced <img>):
      // not a broken reference.
      return ignore({ url: norm(url, origin), error, reason: "ERR_ABORTED (cancelled load)" });
    }
    failedUrls.add(url);
    cur?.failures.push({ url: norm(url, origin), error, resource: r.resourceType() });
  });
  page.on("response", (r) => {
    if (r.status() < 400) return;
    failedUrls.add(r.url());
    cur?.failures.push({ url: norm(r.url(), origin), status: r.status(), resource: r.request().resourceType() });
  });
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const at = m.location()?.url ?? "";
    const text = m.text();
    // Chromium logs every failed load as a console error too; it is already
    // recorded, with its URL and status, as a failed request.
    if (/^Failed to load resource/.test(text) && (failedUrls.has(at) || (at && new URL(at, origin).origin !== origin))) {
      return ignore({ url: norm(at, origin), error: text, reason: "console echo of a failed request" });
    }
    cur?.consoleErrors.push({ text: text.split(origin).join(""), url: norm(at, origin) });
  });
  page.on("pageerror", (e) => {
    cur?.pageErrors.push({ text: `${e.name}: ${e.message}`.split(origin).join("") });
  });

  // Waits until no request has been in flight for idleMs (at most maxMs); notes
  // the requests still pending when it gives up.
  async function quiet(idleMs, maxMs) {
    const end = Date.now() + maxMs;
    const live = () => [...inflight].filter(([, t]) => Date.now() - t < STALE_MS);
    while (Date.now() < end) {
      if (live().length === 0 && Date.now() - lastActivity >= idleMs) break;
      await page.waitForTimeout(50);
    }
    const pending = [...inflight.keys()].map((r) => norm(r.url(), origin));
    if (cur && pending.length) cur.pendingAfterSettle = pending;
  }
  const pathNow = () => {
    const u = new URL(page.url());
    return u.origin === origin ? u.pathname + u.search : page.url();
  };

  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const timeout = step.timeout ?? DEFAULT_TIMEOUT;
    cur = {
      step: i, name: describe(step), ok: true, skipped: false, error: null, status: null,
      path: null, failures: [], consoleErrors: [], pageErrors: [], brokenImages: [], ignored: [],
    };
    records.push(cur);
    const t0 = Date.now();
    try {
      const sel = step.click ?? step.into ?? step.waitFor;
      let target = null;
      if (sel) {
        target = page.locator(step.visibleOnly ? `${sel} >> visible=true` : sel).nth(step.nth ?? 0);
        if (step.ifPresent) {
          try {
            await target.waitFor({ state: "visible", timeout: 2000 });
          } catch {
            cur.skipped = true;
          }
        }
      }
      if (!cur.skipped) {
        const before = step.expectChange ? await page.evaluate(step.expectChange) : undefined;
        if (step.goto !== undefined) {
          const resp = await page.goto(base.replace(/\/$/, "") + step.goto, { waitUntil: "load", timeout });
          cur.status = resp ? resp.status() : null;
        } else if (step.click) {
          const from = page.url();
          await target.click({ timeout });
          // Client-side navigation changes the URL without a load event; give it
          // time to, and to load what the new route needs.
          if (step.expectPath || step.expectPathMatches) {
            await page.waitForURL((u) => matchesPath(step, u.pathname + u.search), { timeout }).catch(() => {});
          } else {
            await page.waitForURL((u) => u.href !== from, { timeout: 1500 }).catch(() => {});
          }
          await page.waitForLoadState("load", { timeout });
        } else if (step.type !== undefined) {
          await target.click({ timeout });
          await target.pressSequentially(String(step.type), { delay: 40, timeout });
        } else if (step.press) {
          await page.keyboard.press(step.press);
          await page.waitForLoadState("load", { timeout });
        } else if (step.waitFor) {
          await target.waitFor({ state: "visible", timeout });
        } else if (step.back) {
          await page.goBack({ waitUntil: "load", timeout });
        } else {
          throw new Error(`unknown step ${JSON.stringify(step)}`);
        }
        await quiet(step.settle ?? 300, timeout);
        const problems = [];
        if (step.expectVisible) {
          await page.locator(step.expectVisible).first().waitFor({ state: "visible", timeout: Math.min(timeout, 5000) })
            .catch(() => problems.push(`${step.expectVisible} not visible`));
        }
        if ((step.expectPath || step.expectPathMatches) && !matchesPath(step, pathNow())) {
          problems.push(`ended at ${pathNow()}, expected ${step.expectPath ?? step.expectPathMatches}`);
        }
        if (step.expectChange) {
          const after = await page.evaluate(step.expectChange);
          if (after === before) problems.push(`${step.expectChange} stayed ${JSON.stringify(after)}`);
        }
        const text = await page.evaluate(() => document.body?.innerText ?? "");
        if (!text.trim()) problems.push("blank page (no text rendered)");
        for (const t of scenario.crashText ?? []) {
          if (text.toLowerCase().includes(t.toLowerCase())) problems.push(`error page: "${t}"`);
        }
        if (scenario.crashSelector && await page.locator(scenario.crashSelector).count()) {
          problems.push(`error page: ${scenario.crashSelector} shown`);
        }
        if (problems.length) throw new Error(problems.join("; "));
      }
    } catch (e) {
      cur.ok = false;
      cur.error = String(e.message ?? e).split("\n")[0].split(origin).join("");
    }
    try {
      cur.path = pathNow();
      const broken = await page.evaluate(() => [...document.images]
        .filter((i) => i.complete && i.naturalWidth === 0 && (i.currentSrc || i.getAttribute("src")))
        .map((i) => i.currentSrc || i.src));
      for (const u of new Set(broken)) {
        if (new URL(u, origin).origin === origin) cur.brokenImages.push(norm(u, origin));
        else cur.ignored.push({ url: u, reason: "broken <img> from another origin (blocked)" });
      }
    } catch (e) {
      cur.ok = false;
      cur.error ??= `after the step: ${String(e.message ?? e).split("\n")[0]}`;
    }
    cur.ms = Date.now() - t0;
  }
  // Late events (after the last step settled) still land in the last record.
  await quiet(300, 3000);
  cur = null;
  await context.close();
  process.stderr.write(`compare-sites: ${label}: ${records.length} steps done\n`);
  return records;
}

function matchesPath(step, p) {
  if (step.expectPath) return p === step.expectPath || p.split("?")[0] === step.expectPath;
  return new RegExp(step.expectPathMatches).test(p);
}

// --- comparison --------------------------------------------------------------

function items(rec, origin) {
  const out = [];
  for (const f of rec.failures) {
    out.push({ kind: "request", key: `request ${key(f.url, origin)} ${f.status ?? f.error}`, url: f.url,
               detail: f.status ? `HTTP ${f.status}` : f.error, resource: f.resource });
  }
  for (const c of rec.consoleErrors) {
    out.push({ kind: "console", key: `console ${key(c.text, origin)} @ ${key(c.url, origin)}`, url: c.url, detail: c.text });
  }
  for (const e of rec.pageErrors) out.push({ kind: "exception", key: `exception ${key(e.text, origin)}`, detail: e.text });
  for (const u of rec.brokenImages) out.push({ kind: "broken-image", key: `img ${key(u, origin)}`, url: u, detail: "broken <img>" });
  return out;
}

function compare(before, after, beforeOrigin, afterOrigin) {
  const regressions = [];
  const moved = [];
  const beforeAll = new Set(before.flatMap((r) => items(r, beforeOrigin).map((x) => x.key)));
  for (let i = 0; i < after.length; i++) {
    const a = after[i];
    const b = before[i];
    const at = { step: i, name: a.name };
    if (!a.ok && b.ok) regressions.push({ ...at, kind: "step-failed", detail: a.error });
    if (a.skipped && !b.skipped) regressions.push({ ...at, kind: "step-failed", detail: "element missing (the step ran before, was skipped after)" });
    if (b.status !== null && a.status !== b.status) {
      regressions.push({ ...at, kind: "status", detail: `document status ${a.status}, before ${b.status}` });
    }
    if (a.path !== null && b.path !== null && key(a.path, afterOrigin) !== key(b.path, beforeOrigin)) {
      regressions.push({ ...at, kind: "path", detail: `ended at ${a.path}, before at ${b.path}` });
    }
    const here = new Set(items(b, beforeOrigin).map((x) => x.key));
    const seen = new Set();
    for (const x of items(a, afterOrigin)) {
      if (here.has(x.key) || seen.has(x.key)) continue;
      seen.add(x.key);
      const { key: _k, ...rest } = x;
      if (beforeAll.has(x.key)) moved.push({ ...at, ...rest, note: "also failed before, at another step" });
      else regressions.push({ ...at, ...rest });
    }
  }
  return { regressions, moved };
}

// --- main --------------------------------------------------------------------

let browser;
let code = 0;
let report;
try {
  browser = await chromium.launch(LAUNCH);
  const steps = await expand(browser, beforeUrl, scenario.steps);
  const before = await runSite(browser, beforeUrl, steps, "BEFORE");
  const after = await runSite(browser, afterUrl, steps, "AFTER");
  const { regressions, moved } = compare(before, after, new URL(beforeUrl).origin, new URL(afterUrl).origin);
  const brokenScenario = before.filter((r) => !r.ok).map((r) => ({ step: r.step, name: r.name, error: r.error }));
  code = brokenScenario.length ? 2 : regressions.length ? 1 : 0;
  report = {
    scenario: scenario.name ?? path.basename(scenarioFile),
    beforeUrl, afterUrl, exit: code, brokenScenario, regressions, moved, before, after,
  };
} catch (e) {
  process.stderr.write(`compare-sites: harness error: ${e.stack ?? e}\n`);
  await browser?.close().catch(() => {});
  process.exit(2);
}
await browser.close();

const json = JSON.stringify(report, null, 2) + "\n";
if (outFile) fs.writeFileSync(outFile, json);
else process.stdout.write(json);

// Summary on stderr.
const count = (recs, f) => recs.reduce((n, r) => n + f(r), 0);
const summarise = (label, recs) => {
  const bad = (r) => r.failures.length + r.consoleErrors.length + r.pageErrors.length + r.brokenImages.length;
  process.stderr.write(`  ${label}: ${recs.length} steps, ${count(recs, (r) => (r.ok ? 0 : 1))} failed, ` +
    `${count(recs, (r) => r.failures.length)} failed requests, ${count(recs, (r) => r.consoleErrors.length)} console errors, ` +
    `${count(recs, (r) => r.pageErrors.length)} exceptions, ${count(recs, (r) => r.brokenImages.length)} broken images, ` +
    `${count(recs, (r) => r.ignored.length)} ignored\n`);
  return bad;
};
process.stderr.write(`compare-sites: ${report.scenario}\n`);
summarise("BEFORE", report.before);
summarise("AFTER ", report.after);
for (const b of report.brokenScenario) {
  process.stderr.write(`  BROKEN SCENARIO: step ${b.step} (${b.name}) fails before publishing: ${b.error}\n`);
}
// One line per distinct problem, with the steps it showed up at (the full list,
// step by step, is in the JSON report).
const groups = new Map();
for (const r of report.regressions) {
  const k = `${r.kind}${r.url ? ` ${r.url}` : ""} — ${r.detail}`;
  if (!groups.has(k)) groups.set(k, []);
  groups.get(k).push(r);
}
for (const [k, rs] of groups) {
  const first = `step ${rs[0].step} (${rs[0].name})`;
  const more = rs.length > 1 ? `; also steps ${rs.slice(1).map((r) => r.step).join(", ")}` : "";
  process.stderr.write(`  REGRESSION ${k}\n      at ${first}${more}\n`);
}
if (report.moved.length) process.stderr.write(`  (${report.moved.length} failures also seen before at another step: not counted)\n`);
process.stderr.write(code === 0 ? "  no regressions\n"
  : code === 1 ? `  ${report.regressions.length} regression(s), ${groups.size} distinct\n` : "  harness/scenario error\n");
process.exit(code);
