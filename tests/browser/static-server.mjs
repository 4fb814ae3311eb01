// Serves a build directory the way a plain static host (nginx, GitHub Pages,
// `npx serve`) would, with no dependencies: the "BEFORE" side of
// compare-sites.mjs, against which the site published by cdnsync ("AFTER",
// `cdnsync serve`) is compared. Rules:
//   /dir/  -> dir/index.html          /dir -> 301 /dir/ when dir/index.html exists
//   /x     -> x.html when x is missing and x.html exists
//   exact-path redirects of a `_redirects` file at the root (`/from /to [status]`,
//     as Netlify and Cloudflare Pages apply them: only where no file answers)
//   otherwise 404.html (or a plain text body) with status 404
// GET and HEAD only; Content-Type from the extension; no caching.
//
//   node tests/browser/static-server.mjs BUILD_DIR PORT     # PORT 0: any free port
//
// Prints the port it listens on (127.0.0.1), alone on one line, on stdout;
// logs nothing else. Stops on SIGTERM/SIGINT.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

const [dirArg, portArg = "0"] = process.argv.slice(2);
if (!dirArg) {
  process.stderr.write("usage: node static-server.mjs DIR PORT\n");
  process.exit(2);
}
const root = fs.realpathSync(dirArg);
if (!fs.statSync(root).isDirectory()) {
  process.stderr.write(`static-server: ${dirArg} is not a directory\n`);
  process.exit(2);
}

const TYPES = {
  html: "text/html; charset=utf-8", htm: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8", js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8", cjs: "text/javascript; charset=utf-8",
  json: "application/json", map: "application/json",
  webmanifest: "application/manifest+json", xml: "application/xml",
  xsl: "application/xml", rss: "application/rss+xml", atom: "application/atom+xml",
  txt: "text/plain; charset=utf-8", md: "text/markdown; charset=utf-8",
  csv: "text/csv; charset=utf-8", wasm: "application/wasm", pdf: "application/pdf",
  svg: "image/svg+xml", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg",
  gif: "image/gif", webp: "image/webp", avif: "image/avif", ico: "image/x-icon",
  bmp: "image/bmp", woff: "font/woff", woff2: "font/woff2", ttf: "font/ttf",
  otf: "font/otf", eot: "application/vnd.ms-fontobject", mp4: "video/mp4",
  webm: "video/webm", ogg: "audio/ogg", mp3: "audio/mpeg", wav: "audio/wav",
  zip: "application/zip", gz: "application/gzip",
};
const typeOf = (file) =>
  TYPES[path.extname(file).slice(1).toLowerCase()] ?? "application/octet-stream";

// The regular file under root that a URL path names, or null. Refuses `..`,
// empty segments and NUL, so nothing outside root is ever read.
function fileFor(rel) {
  if (rel.split("/").some((s) => s === ".." || s === "." || s.includes("\0"))) return null;
  const full = path.join(root, rel);
  if (full !== root && !full.startsWith(root + path.sep)) return null;
  try {
    return fs.statSync(full).isFile() ? full : null;
  } catch {
    return null;
  }
}

// `_redirects`: exact paths only (placeholders and splats are left out).
const redirects = new Map();
try {
  for (const line of fs.readFileSync(path.join(root, "_redirects"), "utf8").split("\n")) {
    const [from, to, status] = line.trim().split(/\s+/);
    if (!from || from.startsWith("#") || !to || /[:*]/.test(from)) continue;
    redirects.set(from, { to, status: Number.parseInt(status ?? "301", 10) || 301 });
  }
} catch {
  // No _redirects: nothing to apply.
}

function send(req, res, status, file, extra = {}) {
  const body = file ? fs.readFileSync(file) : Buffer.from(status === 404 ? "not found\n" : "");
  res.writeHead(status, {
    "Content-Type": file ? typeOf(file) : "text/plain; charset=utf-8",
    "Content-Length": body.length,
    "Cache-Control": "no-cache",
    ...extra,
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

const server = http.createServer((req, res) => {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain" });
    return res.end("method not allowed\n");
  }
  const url = new URL(req.url, "http://localhost");
  let rel;
  try {
    rel = decodeURIComponent(url.pathname).replace(/^\/+/, "");
  } catch {
    return send(req, res, 400, null);
  }
  if (rel === "" || rel.endsWith("/")) {
    const f = fileFor(rel + "index.html");
    if (f) return send(req, res, 200, f);
  } else {
    const f = fileFor(rel);
    if (f) return send(req, res, 200, f);
    if (fileFor(rel + "/index.html")) {
      return send(req, res, 301, null, { Location: url.pathname + "/" + url.search });
    }
    const html = fileFor(rel + ".html");
    if (html) return send(req, res, 200, html);
  }
  const r = redirects.get(url.pathname);
  if (r && r.status >= 300 && r.status < 400) {
    return send(req, res, r.status, null, { Location: r.to + url.search });
  }
  send(req, res, 404, fileFor("404.html"));
});

server.listen(Number(portArg), "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
