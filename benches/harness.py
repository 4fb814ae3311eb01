#!/usr/bin/env python3
"""The peer benchmark of cdnsync: cdnsync and the usual "sync a directory to S3"
tools (aws s3 sync, s5cmd sync, rclone sync, s3cmd sync, hugo deploy) publish
the same corpora to the same local S3 server, and the harness times them.

Why it exists: a claim such as "cdnsync re-publishes a site faster than X" is
only worth something when anyone can re-run it from this repository. So this
file reads nothing outside the repository and $PEERS (which benches/setup.sh
fills), uses only the Python standard library, and measures every tool the
same way.

How it measures:
  * one S3 server on a free 127.0.0.1 port: `rclone serve s3` on tmpfs
    (default), `s3s-fs` on tmpfs, or `moto_server` (in memory);
  * the counting proxy (target/release/cdnsync-proxy, tools/proxy.rs) in front
    of it, for every tool alike: requests are counted by S3 operation by the
    harness, not read from each tool's output; `--latency-ms N` makes the proxy
    hold every request back N ms (real S3 answers in roughly 20-60 ms, a local
    server in well under 1 ms, which flatters tools that send many requests in
    sequence);
  * scenarios, each prepared untimed: cold (a new empty bucket per run), noop
    (nothing changed), touch (every mtime set to now, content unchanged:
    a fresh CI checkout), change (`gen_site.py mutate --fraction 0.01`);
  * per run, from os.wait4 on the tool's own process: wall time, user+sys CPU,
    peak RSS; from /proc: the server's and the proxy's CPU, and the CPU other
    processes used meanwhile (noise on a shared machine); for cdnsync also the
    fields of its --json report (timings, phases; waves / critical path when
    the report has them);
  * afterwards each bucket is checked: a peer's bucket must equal the work
    dir by key, size and content (read back with GET); cdnsync renames and
    rewrites files, so its bucket is checked by `cdnsync plan --json`, which
    must report `noop: true`.

Output in --out: results.json (every run), table.md (one table per latency:
median wall per tool, cdnsync against the fastest peer, RSS, requests), and
logs/ (stdout and stderr of every run, the server's and the proxy's logs).

Normally started by benches/peers.sh. Directly:
  python3 benches/harness.py --peers ~/.cache/cdnsync-peers \\
      --cdnsync target/release/cdnsync --proxy target/release/cdnsync-proxy \\
      --server s3s --corpora vite --tools s5cmd,cdnsync --runs 3 --latency-ms 0,30
"""
import argparse
import base64
import concurrent.futures
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN_SITE = os.path.join(REPO, "tests", "fixtures", "gen_site.py")
KEY, SECRET, REGION = "benchkey", "benchsecret", "us-east-1"
SERVERS = ("rclone", "s3s", "moto")
ON_DISK = ("rclone", "s3s")  # servers that keep DATA/BUCKET/KEY as plain files
SCENARIOS = ("cold", "noop", "touch", "change")
CORPORA = ("vite", "synth-small", "synth-plain", "synth-large", "synth-100k")
DEFAULT_CORPORA = ("vite", "synth-small", "synth-large")

# Tools as command templates. {bin} is $PEERS/bin; {dir} the work dir, {bucket},
# {endpoint} (the proxy), {s3cfg} and {hugo_src} are written by the harness.
# Every sync mirrors with deletion and otherwise keeps the tool's defaults.
TOOLS = {
    "aws": "{bin}/aws s3 sync {dir} s3://{bucket} --endpoint-url {endpoint} --no-progress --delete",
    "s5cmd": "{bin}/s5cmd --endpoint-url {endpoint} sync --delete {dir}/ s3://{bucket}/",
    "rclone": "{bin}/rclone sync {dir} bench:{bucket} -v --stats 0",
    "s3cmd": "{bin}/s3cmd -c {s3cfg} sync --delete-removed --no-progress {dir}/ s3://{bucket}/",
    "hugo": "{bin}/hugo deploy --source {hugo_src} --target bench --maxDeletes -1",
    "cdnsync": "{cdnsync} publish {dir} --to s3://{bucket} --endpoint-url {endpoint} --json {cdnsync_flags}",
}
DEFAULT_TOOLS = ("aws", "s5cmd", "rclone", "s3cmd", "hugo", "cdnsync")
# Placeholders substituted as they are (several words or none), not as one argument.
RAW_PLACEHOLDERS = ("cdnsync_flags",)
# Tools that cannot work on a server; left out of the default list there (named in --tools they run anyway).
INCOMPATIBLE = {
    ("s3s", "s3cmd"): "s3s-fs 0.14.1 lists objects without <ETag>, which `s3cmd sync` 2.4.0 requires "
                      "(KeyError: 'ETag' once the bucket is not empty)",
}
# cdnsync flags per server: s3s-fs rejects the SSE header cdnsync sends by default.
CDNSYNC_FLAGS = {"s3s": "--sse none"}
# The order of operations in the tables; others follow alphabetically.
OPS = ("LIST", "HEAD", "GET", "PUT", "COPY", "CREATE_MULTIPART", "UPLOAD_PART", "COMPLETE_MULTIPART",
       "DELETE", "DELETE_OBJECTS", "HEAD_BUCKET", "CREATE_BUCKET")
# The parts of cdnsync's --json report kept per run (the object list is left out).
REPORT_FIELDS = ("noop", "uploaded", "unchanged", "deleted", "bytes_uploaded", "bodies_stored", "phases",
                 "gc_deleted", "timings", "fingerprint", "waves", "critical_path")


def say(*msg):
    print(time.strftime("%H:%M:%S"), *msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """User+system CPU seconds of a running process (not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_busy():
    """CPU seconds all cores have spent busy since boot (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:8]]
    return (t[0] + t[1] + t[2] + t[5] + t[6]) / os.sysconf("SC_CLK_TCK")


def noisy(run, max_noise):
    """Other processes used more than max_noise cores on average during the run."""
    return run["other_cpu_s"] > max_noise * max(run["wall_s"], 0.2)


def wait_quiet(max_noise, limit):
    """Wait (at most limit s) until the machine is busy for less than max_noise cores."""
    deadline = time.time() + limit
    while time.time() < deadline:
        b0 = machine_busy()
        time.sleep(0.5)
        if (machine_busy() - b0) / 0.5 < max_noise:
            return


class Child:
    """A long-running process we started (server, proxy); stopped by its PID only."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        say(f"started {name} (pid {self.proc.pid})")

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        say(f"stopped {self.name} (pid {self.proc.pid})")


# ---------------------------------------------------------------- a small S3 client
class S3:
    """Just enough S3 (path style, SigV4) to prepare buckets and read them back
    for verification, talking to the server directly (not through the proxy)."""

    def __init__(self, endpoint):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port

    def _sign(self, method, path, query, headers, payload_hash):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
        headers.update({"host": f"{self.host}:{self.port}", "x-amz-date": amz_date,
                        "x-amz-content-sha256": payload_hash})
        names = sorted(k.lower() for k in headers)
        lower = {k.lower(): str(v).strip() for k, v in headers.items()}
        canonical = "\n".join([
            method, path,
            "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                     for k, v in sorted(query)),
            "".join(f"{n}:{lower[n]}\n" for n in names), ";".join(names), payload_hash])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("AWS4" + SECRET).encode()
        for part in (amz_date[:8], REGION, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={sig}")

    def request(self, method, bucket, key="", query=(), body=b"", headers=None, stream=False):
        path = "/" + urllib.parse.quote(bucket, safe="") + ("/" + urllib.parse.quote(key, safe="/-_.~") if key else "")
        headers = dict(headers or {})
        self._sign(method, path, list(query), headers, hashlib.sha256(body).hexdigest())
        qs = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in query)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        conn.request(method, path + ("?" + qs if qs else ""), body=body, headers=headers)
        resp = conn.getresponse()
        if stream:
            return resp, conn
        data = resp.read()
        conn.close()
        if resp.status >= 300:
            raise RuntimeError(f"S3 {method} {path}: HTTP {resp.status} {data[:300]!r}")
        return data

    def create_bucket(self, bucket):
        self.request("PUT", bucket)

    def list(self, bucket):
        """key -> size, every object in the bucket."""
        out, token = {}, None
        while True:
            q = [("list-type", "2"), ("max-keys", "1000")] + ([("continuation-token", token)] if token else [])
            root = ET.fromstring(self.request("GET", bucket, query=q))
            for el in root.iter():
                el.tag = el.tag.rsplit("}", 1)[-1]
            for c in root.findall("Contents"):
                out[c.findtext("Key")] = int(c.findtext("Size"))
            token = root.findtext("NextContinuationToken")
            if root.findtext("IsTruncated") != "true" or not token:
                return out

    def sha256(self, bucket, key):
        resp, conn = self.request("GET", bucket, key, stream=True)
        h = hashlib.sha256()
        try:
            if resp.status != 200:
                return f"HTTP {resp.status}"
            while chunk := resp.read(1 << 20):
                h.update(chunk)
            return h.hexdigest()
        finally:
            conn.close()

    def delete_bucket(self, bucket):
        keys = list(self.list(bucket))
        for i in range(0, len(keys), 1000):
            xml = "<Delete><Quiet>true</Quiet>" + "".join(
                f"<Object><Key>{esc(k)}</Key></Object>" for k in keys[i:i + 1000]) + "</Delete>"
            body = xml.encode()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            self.request("POST", bucket, query=[("delete", "")], body=body, headers={"Content-MD5": md5})
        self.request("DELETE", bucket)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- server + proxy
class Stack:
    """The S3 server and the counting proxy in front of it."""

    def __init__(self, kind, peers, proxy_bin, logdir):
        self.kind = kind
        self.data = f"/dev/shm/cdnsync-bench-{os.getpid()}" if kind in ON_DISK else None
        port = free_port()
        self.upstream = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(RCLONE_CONFIG="/dev/null", RUST_LOG="error")
        if kind == "rclone":
            argv = [f"{peers}/bin/rclone", "serve", "s3", "--addr", f"127.0.0.1:{port}",
                    "--auth-key", f"{KEY},{SECRET}", self.data]
        elif kind == "s3s":
            argv = [f"{peers}/bin/s3s-fs", "--host", "127.0.0.1", "--port", str(port),
                    "--access-key", KEY, "--secret-key", SECRET, self.data]
        else:
            argv = [f"{peers}/bin/moto_server", "-H", "127.0.0.1", "-p", str(port)]
        if not os.access(argv[0], os.X_OK):
            raise SystemExit(f"{argv[0]} is missing: run benches/setup.sh")
        if self.data:
            shutil.rmtree(self.data, ignore_errors=True)
            os.makedirs(self.data)
        self.server = Child(f"{kind} server on {self.upstream}", argv, os.path.join(logdir, "server.log"), env)
        self.proxy = None
        try:
            self._wait_http(self.upstream, self.server)
            port_file = os.path.join(logdir, "proxy.port")
            if os.path.exists(port_file):
                os.unlink(port_file)
            self.proxy = Child("counting proxy", [proxy_bin, "--upstream", self.upstream, "--port-file", port_file],
                               os.path.join(logdir, "proxy.log"), env)
            deadline = time.time() + 30
            while not (os.path.exists(port_file) and open(port_file).read().strip()):
                if not self.proxy.alive() or time.time() > deadline:
                    raise SystemExit(f"the proxy did not start, see {logdir}/proxy.log")
                time.sleep(0.05)
            self.endpoint = f"http://127.0.0.1:{int(open(port_file).read())}"
            self._wait_http(self.endpoint, self.proxy)
        except BaseException:
            self.stop()
            raise
        self.s3 = S3(self.upstream)
        say(f"S3 endpoint for the tools: {self.endpoint} (proxy) -> {self.upstream} ({kind})")

    @staticmethod
    def _wait_http(url, child, limit=60):
        deadline = time.time() + limit
        while time.time() < deadline:
            if not child.alive():
                raise SystemExit(f"{child.name} exited at start, see {child.log.name}")
            try:
                urllib.request.urlopen(url + "/", timeout=2).close()
                return
            except urllib.error.HTTPError:  # any S3 answer (403, 400...) means it is up
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{child.name} not answering after {limit} s")

    def _control(self, method, path):
        req = urllib.request.Request(self.endpoint + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def counts(self):
        return json.loads(self._control("GET", "/__proxy/counts"))

    def set_latency(self, ms):
        spec = f"delay=1&delay_ms={ms}" if ms > 0 else ""
        answer = self._control("POST", "/__proxy/faults?" + spec)
        if answer.strip() != b"ok":
            raise SystemExit(f"the proxy refused the delay {spec!r}: {answer!r}")

    def drop_bucket(self, bucket):
        if self.kind in ON_DISK:
            # Faster than deleting object by object, and leaves no request in the counts.
            shutil.rmtree(os.path.join(self.data, bucket), ignore_errors=True)
            if self.kind == "s3s":  # s3s-fs keeps two JSON sidecars per object in the data dir root
                tag = base64.urlsafe_b64encode(bucket.encode()).decode().rstrip("=")
                for e in os.scandir(self.data):
                    if e.is_file() and e.name.startswith(f".bucket-{tag}."):
                        os.unlink(e.path)
        else:
            self.s3.delete_bucket(bucket)

    def stop(self):
        for c in (self.proxy, self.server):
            if c:
                c.stop()
        if self.data:
            shutil.rmtree(self.data, ignore_errors=True)


# ---------------------------------------------------------------- one timed run
def timed(argv, env, out_path, err_path, limit):
    """Run argv in its own process group; return (exit status, wall s, rusage)."""
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True)
        expired = threading.Event()

        def kill():
            expired.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)  # only the group this run started
            except OSError:
                pass

        timer = threading.Timer(limit, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            kill()
            p.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    return ("timeout" if expired.is_set() else p.returncode), wall, ru


# ---------------------------------------------------------------- the matrix
class Bench:
    def __init__(self, a):
        self.a = a
        self.logs = os.path.join(a.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.stack = Stack(a.server, a.peers, a.proxy, self.logs)
        self.runs, self.checks = [], []
        self.n_buckets = 0
        self.workdirs = set()  # removed at the end even when interrupted (unless --keep-work)
        self.env = {k: v for k, v in os.environ.items()
                    if not (k.lower().endswith("_proxy") or k.startswith(("AWS_", "CDNSYNC_", "RCLONE_")))}
        ep = self.stack.endpoint
        self.env.update({
            "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": ep, "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "NO_PROXY": "127.0.0.1,localhost",
            "RCLONE_CONFIG": "/dev/null", "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": "Other", "RCLONE_CONFIG_BENCH_ENDPOINT": ep,
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": KEY, "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SECRET,
            "RCLONE_CONFIG_BENCH_REGION": REGION,
        })
        self.s3cfg = os.path.join(a.out, "s3cfg")
        hp = urllib.parse.urlsplit(ep).netloc
        with open(self.s3cfg, "w") as f:
            f.write(f"[default]\naccess_key = {KEY}\nsecret_key = {SECRET}\nhost_base = {hp}\n"
                    f"host_bucket = {hp}\nuse_https = False\nbucket_location = {REGION}\n"
                    "signature_v2 = False\n")
        self.tools = {t: TOOLS[t] for t in a.tools}
        self.tools.update(a.extra_tools)
        for name, tmpl in self.tools.items():
            exe = self.argv(tmpl, "/x", "b", name)[0]
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                raise SystemExit(f"{name}: {exe} is not an executable (run benches/setup.sh)")

    def argv(self, tmpl, workdir, bucket, tool):
        values = {
            "bin": f"{self.a.peers}/bin", "cdnsync": self.a.cdnsync, "dir": workdir, "bucket": bucket,
            "endpoint": self.stack.endpoint, "region": REGION, "s3cfg": self.s3cfg,
            "hugo_src": os.path.join(self.a.out, "hugo", tool),
            "cdnsync_flags": CDNSYNC_FLAGS.get(self.a.server, ""),
        }
        return shlex.split(tmpl.format(**{k: v if k in RAW_PLACEHOLDERS else shlex.quote(str(v))
                                          for k, v in values.items()}))

    def hugo_config(self, tool, workdir, bucket):
        d = os.path.join(self.a.out, "hugo", tool)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "hugo.toml"), "w") as f:
            f.write(f'publishDir = "{workdir}"\n\n[deployment]\n[[deployment.targets]]\nname = "bench"\n'
                    f'url = "s3://{bucket}?endpoint={self.stack.endpoint}&use_path_style=true&region={REGION}"\n')

    def new_bucket(self, tool, corpus):
        self.n_buckets += 1
        name = re.sub(r"[^a-z0-9-]+", "-", f"b{self.n_buckets:04d}-{tool}-{corpus}".lower())[:63].strip("-")
        self.stack.s3.create_bucket(name)
        return name

    def run(self, ctx, scenario, i, bucket, timed_run=True):
        lat, corpus, tool, workdir = ctx
        tmpl = self.tools[tool]
        if "{hugo_src}" in tmpl:
            self.hugo_config(tool, workdir, bucket)
        argv = self.argv(tmpl, workdir, bucket, tool)
        d = os.path.join(self.logs, f"lat{lat}", corpus)
        os.makedirs(d, exist_ok=True)
        base = os.path.join(d, f"{tool}.{scenario}.{i}")
        with open(base + ".cmd", "w") as f:
            f.write(shlex.join(argv) + "\n")
        c0, s0, p0, b0 = self.stack.counts(), self.stack.server.cpu(), self.stack.proxy.cpu(), machine_busy()
        rc, wall, ru = timed(argv, self.env, base + ".out", base + ".err", self.a.timeout)
        b1, s1, p1, c1 = machine_busy(), self.stack.server.cpu(), self.stack.proxy.cpu(), self.stack.counts()
        requests = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1
                    if not k.startswith("FAULT_") and k != "TOTAL" and c1.get(k, 0) != c0.get(k, 0)}
        cpu = ru.ru_utime + ru.ru_stime
        r = {
            "latency_ms": lat, "corpus": corpus, "tool": tool, "scenario": scenario, "run": i, "rc": rc,
            "wall_s": round(wall, 3), "user_s": round(ru.ru_utime, 3), "sys_s": round(ru.ru_stime, 3),
            "cpu_s": round(cpu, 3), "maxrss_mb": round(ru.ru_maxrss / 1024, 1),
            "server_cpu_s": round(s1 - s0, 3), "proxy_cpu_s": round(p1 - p0, 3),
            "other_cpu_s": round((b1 - b0) - cpu - (s1 - s0) - (p1 - p0), 3),
            "requests": requests, "requests_total": sum(requests.values()), "bucket": bucket,
            "log": os.path.relpath(base, self.a.out),
        }
        if tool == "cdnsync":
            try:
                with open(base + ".out") as f:
                    rep = json.load(f)
                r["report"] = {k: rep[k] for k in rep
                               if k in REPORT_FIELDS or "wave" in k or "critical" in k}
            except (OSError, ValueError) as e:
                r["report_error"] = str(e)
        say(f"  {lat:>3} ms {corpus:12} {tool:8} {scenario:6} #{i} {wall:7.2f} s  cpu {cpu:6.2f} s  "
            f"rss {r['maxrss_mb']:6.0f} MB  {r['requests_total']:6} req  rc={rc}")
        if rc != 0:
            with open(base + ".err", errors="replace") as f:
                say("    failed; end of its stderr:\n" + f.read()[-1200:])
        if timed_run:
            self.runs.append(r)
        return r

    def verify(self, ctx, bucket):
        lat, corpus, tool, workdir = ctx
        if tool == "cdnsync":
            argv = [self.a.cdnsync, "plan", workdir, "--to", f"s3://{bucket}", "--endpoint-url",
                    self.stack.upstream, "--json"] + CDNSYNC_FLAGS.get(self.a.server, "").split()
            p = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=self.a.timeout)
            try:
                plan = json.loads(p.stdout)
                ok = p.returncode == 0 and plan.get("noop") is True
                todo = [f"{o.get('action')} {o.get('key')}" for o in plan.get("objects", [])
                        if o.get("action") not in (None, "unchanged", "keep")]
                return {"ok": ok, "method": "cdnsync plan: noop", "noop": plan.get("noop"),
                        "pending": todo[:5], "rc": p.returncode}
            except ValueError:
                return {"ok": False, "method": "cdnsync plan: noop", "rc": p.returncode,
                        "error": p.stderr[-500:]}
        local = {}
        for root, _, files in os.walk(workdir):
            for n in files:
                path = os.path.join(root, n)
                local[os.path.relpath(path, workdir)] = os.path.getsize(path)
        remote = self.stack.s3.list(bucket)
        missing = sorted(set(local) - set(remote))
        extra = sorted(set(remote) - set(local))
        size = sorted(k for k in local if k in remote and local[k] != remote[k])
        same_size = [k for k in local if k in remote and local[k] == remote[k]]

        def differs(k):
            return self.stack.s3.sha256(bucket, k) != file_sha256(os.path.join(workdir, k))

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            content = sorted(k for k, bad in zip(same_size, ex.map(differs, same_size)) if bad)
        return {"ok": not (missing or extra or size or content), "method": "keys, sizes, content (GET)",
                "objects": len(remote), "missing": len(missing), "extra": len(extra),
                "size_mismatch": len(size), "content_mismatch": len(content),
                "examples": (missing + extra + size + content)[:5]}

    def matrix(self):
        for lat in self.a.latencies:
            self.stack.set_latency(lat)
            say(f"latency {lat} ms per request")
            for corpus in self.a.corpora:
                for tool in self.tools:
                    self.one(lat, corpus, tool, os.path.join(self.a.peers, "corpora", corpus))

    def one(self, lat, corpus, tool, src):
        workdir = os.path.join(self.a.peers, "work", f"{tool}__{corpus}")
        self.workdirs.add(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(os.path.dirname(workdir), exist_ok=True)
        subprocess.run(["cp", "-a", src, workdir], check=True)  # -a keeps the generator's fixed mtimes
        ctx = (lat, corpus, tool, workdir)
        st = {"bucket": None}

        def fresh_bucket(_attempt):
            if st["bucket"]:
                self.stack.drop_bucket(st["bucket"])
            st["bucket"] = self.new_bucket(tool, corpus)

        def touch(_attempt):
            subprocess.run([sys.executable, GEN_SITE, "touch", workdir], check=True, capture_output=True)

        def change(i):
            def prepare(attempt):
                seed = str(7919 * i + 31 * attempt + lat)  # a new pick of files every run
                out = subprocess.run([sys.executable, GEN_SITE, "mutate", workdir, "--fraction",
                                      str(self.a.change_fraction), "--seed", seed],
                                     check=True, capture_output=True, text=True).stdout
                return {"mutated": int(out.split()[0])}
            return prepare

        def measured(scenario, i, prepare):
            """Prepare, then time; with --retries, again (freshly prepared) while other processes were busy."""
            for attempt in range(self.a.retries + 1):
                extra = prepare(attempt) or {}
                r = self.run(ctx, scenario, i, st["bucket"])
                r.update(extra, attempt=attempt + 1)
                if not noisy(r, self.a.max_noise) or attempt == self.a.retries:
                    return
                r["discarded"] = True
                say(f"    other processes used {r['other_cpu_s']:.2f} CPU s meanwhile: run again")
                wait_quiet(self.a.max_noise, self.a.quiet_wait)

        try:
            if "cold" in self.a.scenarios:
                for i in range(1, self.a.runs + 1):
                    measured("cold", i, fresh_bucket)
            else:  # the other scenarios start from a published site
                fresh_bucket(0)
                self.run(ctx, "seed", 1, st["bucket"], timed_run=False)
            for scenario, prepare in (("noop", lambda i: (lambda _a: None)), ("touch", lambda i: touch),
                                      ("change", change)):
                if scenario in self.a.scenarios:
                    for i in range(1, self.a.runs + 1):
                        measured(scenario, i, prepare(i))
            bucket = st["bucket"]
            v = self.verify(ctx, bucket)
            v.update(latency_ms=lat, corpus=corpus, tool=tool)
            self.checks.append(v)
            say(f"  verify {tool} {corpus}: {'ok' if v['ok'] else 'MISMATCH ' + json.dumps(v)}")
        finally:
            if st["bucket"]:
                self.stack.drop_bucket(st["bucket"])
            if not self.a.keep_work:
                shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- the report
def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_requests(req):
    order = {op: i for i, op in enumerate(OPS)}
    return " ".join(f"{k} {v}" for k, v in sorted(req.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))) or "-"


def tables(runs, checks, a, tools):
    out = []
    runs = [r for r in runs if not r.get("discarded")]
    for lat in a.latencies:
        cells = {}
        for r in runs:
            if r["latency_ms"] == lat:
                cells.setdefault((r["corpus"], r["scenario"]), {}).setdefault(r["tool"], []).append(r)
        peers = [t for t in tools if t != "cdnsync"]
        out += [f"## {a.server} server, {lat} ms added per request", "",
                f"Median wall seconds of {a.runs} run(s). `cdnsync / best` = cdnsync's median over the "
                "fastest peer's that exited 0. `FAIL` = a non-zero exit; `~` = other processes were busy "
                f"(> {a.max_noise} cores) during most runs.", "",
                "| corpus | scenario | " + " | ".join(tools) + " | cdnsync / best |",
                "|---|---|" + "---:|" * (len(tools) + 1)]
        for (corpus, scenario), by_tool in cells.items():
            row, walls = [], {}
            for t in tools:
                rs = by_tool.get(t)
                if not rs:
                    row.append("-")
                    continue
                w = med([x["wall_s"] for x in rs])
                cell = f"{w:.2f}"
                if any(x["rc"] != 0 for x in rs):
                    cell += " FAIL"
                elif t != "cdnsync":
                    walls[t] = w
                if sum(noisy(x, a.max_noise) for x in rs) * 2 > len(rs):
                    cell += " ~"
                row.append(cell)
            ratio = "-"
            if "cdnsync" in by_tool and walls:
                best = min(walls, key=walls.get)
                ratio = f"**{med([x['wall_s'] for x in by_tool['cdnsync']]) / walls[best]:.2f}x** ({best})"
            out.append(f"| {corpus} | {scenario} | " + " | ".join(row) + f" | {ratio} |")
        out += ["", "Per tool (medians): wall s, the tool's CPU s (user+sys), peak RSS, the server's and the "
                "proxy's CPU s, S3 requests by operation as the proxy counted them.", "",
                "| corpus | scenario | tool | wall s | CPU s | RSS MB | server CPU s | proxy CPU s | requests | total |",
                "|---|---|---|---:|---:|---:|---:|---:|---|---:|"]
        for (corpus, scenario), by_tool in cells.items():
            for t in tools:
                rs = by_tool.get(t)
                if not rs:
                    continue
                ops = sorted({k for x in rs for k in x["requests"]})
                req = {k: statistics.median_low([x["requests"].get(k, 0) for x in rs]) for k in ops}
                out.append(f"| {corpus} | {scenario} | {t} | {med([x['wall_s'] for x in rs]):.2f} | "
                           f"{med([x['cpu_s'] for x in rs]):.2f} | {med([x['maxrss_mb'] for x in rs]):.0f} | "
                           f"{med([x['server_cpu_s'] for x in rs]):.2f} | {med([x['proxy_cpu_s'] for x in rs]):.2f} | "
                           f"{fmt_requests(req)} | {statistics.median_low([x['requests_total'] for x in rs])} |")
        cd = [(k, v["cdnsync"]) for k, v in cells.items() if "cdnsync" in v]
        if cd:
            keys = []
            for _, rs in cd:
                for x in rs:
                    for k in x.get("report", {}).get("timings", {}):
                        if k not in keys:
                            keys.append(k)
            extra = sorted({k for _, rs in cd for x in rs for k in x.get("report", {})
                            if "wave" in k or "critical" in k})
            out += ["", "cdnsync's own timings (ms, medians, from `--json`)" +
                    (f"; also reported: {', '.join(extra)} (see results.json)" if extra else "") + ":", "",
                    "| corpus | scenario | uploaded | " + " | ".join(k.removesuffix("_ms") for k in keys) + " |",
                    "|---|---|---:|" + "---:|" * len(keys)]
            for (corpus, scenario), rs in cd:
                vals = [med([x["report"]["timings"][k] for x in rs
                             if k in x.get("report", {}).get("timings", {})]) for k in keys]
                up = statistics.median_low([x.get("report", {}).get("uploaded", -1) for x in rs])
                out.append(f"| {corpus} | {scenario} | {up} | " + " | ".join(f"{v:.0f}" for v in vals) + " |")
        vs = [v for v in checks if v["latency_ms"] == lat]
        if vs:
            out += ["", "Buckets after the scenarios:", "", "| corpus | tool | check | result |", "|---|---|---|---|"]
            for v in vs:
                detail = "ok" if v["ok"] else "**MISMATCH** " + json.dumps(
                    {k: v[k] for k in v if k not in ("ok", "method", "latency_ms", "corpus", "tool")})
                out.append(f"| {v['corpus']} | {v['tool']} | {v['method']} | {detail} |")
        out.append("")
    return "\n".join(out)


def versions(a):
    cmds = {"cdnsync": [a.cdnsync, "--version"], "aws": [f"{a.peers}/bin/aws", "--version"],
            "s5cmd": [f"{a.peers}/bin/s5cmd", "version"], "rclone": [f"{a.peers}/bin/rclone", "version"],
            "s3cmd": [f"{a.peers}/bin/s3cmd", "--version"], "hugo": [f"{a.peers}/bin/hugo", "version"],
            "s3s-fs": [f"{a.peers}/bin/s3s-fs", "--version"],
            "moto": [f"{a.peers}/venv/bin/python", "-c", "import moto; print(moto.__version__)"],
            "git": ["git", "-C", REPO, "describe", "--always", "--dirty"]}
    out = {}
    for k, argv in cmds.items():
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            out[k] = ((p.stdout or p.stderr).strip().splitlines() or ["?"])[0]
        except (OSError, subprocess.SubprocessError) as e:
            out[k] = f"? ({e})"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=os.environ.get("PEERS", os.path.expanduser("~/.cache/cdnsync-peers")),
                    help="what benches/setup.sh installed (default $PEERS or ~/.cache/cdnsync-peers)")
    ap.add_argument("--cdnsync", default=os.path.join(REPO, "target", "release", "cdnsync"))
    ap.add_argument("--proxy", default=os.path.join(REPO, "target", "release", "cdnsync-proxy"))
    ap.add_argument("--server", choices=SERVERS, default="rclone")
    ap.add_argument("--corpora", default=",".join(DEFAULT_CORPORA), help="comma list of " + ", ".join(CORPORA))
    ap.add_argument("--tools", default=None,
                    help=f"comma list of {', '.join(TOOLS)} (default: all that work on the server)")
    ap.add_argument("--tool", action="append", default=[], metavar="NAME=TEMPLATE",
                    help="one more tool, e.g. 'mine=/path/mine push {dir} s3://{bucket} --endpoint {endpoint}'")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-ms", default="0", help="comma list: one pass over the matrix per value")
    ap.add_argument("--change-fraction", type=float, default=0.01)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per command")
    ap.add_argument("--max-noise", type=float, default=0.25,
                    help="a run is noisy when other processes used more cores than this on average (marked '~')")
    ap.add_argument("--retries", type=int, default=0,
                    help="run a noisy run again, freshly prepared, up to N times (shared machines)")
    ap.add_argument("--quiet-wait", type=float, default=30,
                    help="before running again, wait up to S seconds for the machine to go quiet")
    ap.add_argument("--keep-work", action="store_true", help="keep the work dirs under PEERS/work")
    ap.add_argument("--out", default=None, help="results dir (default PEERS/results/TIMESTAMP)")
    a = ap.parse_args()

    a.peers = os.path.abspath(a.peers)
    a.cdnsync, a.proxy = os.path.abspath(a.cdnsync), os.path.abspath(a.proxy)
    a.corpora = [c for c in a.corpora.split(",") if c]
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.latencies = [int(x) for x in a.latency_ms.split(",") if x != ""]
    for s in a.scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    left_out = {}
    if a.tools is None:
        a.tools = [t for t in DEFAULT_TOOLS if (a.server, t) not in INCOMPATIBLE]
        left_out = {t: INCOMPATIBLE[(a.server, t)] for t in DEFAULT_TOOLS if (a.server, t) in INCOMPATIBLE}
    else:
        a.tools = [t for t in a.tools.split(",") if t]
    for t in a.tools:
        if t not in TOOLS:
            ap.error(f"unknown tool {t} (known: {', '.join(TOOLS)}; others with --tool NAME=TEMPLATE)")
        if (a.server, t) in INCOMPATIBLE:
            say(f"warning: {t} is expected to fail on {a.server}: {INCOMPATIBLE[(a.server, t)]}")
    a.extra_tools = {}
    for spec in a.tool:
        name, sep, tmpl = spec.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            ap.error(f"--tool {spec!r}: expected NAME=TEMPLATE")
        a.extra_tools[name] = tmpl
    for t, why in left_out.items():
        say(f"note: {t} left out on {a.server}: {why}")
    for c in a.corpora:
        if not os.path.isdir(os.path.join(a.peers, "corpora", c)):
            ap.error(f"no corpus {a.peers}/corpora/{c}: run benches/setup.sh" +
                     (" --with-100k" if c == "synth-100k" else ""))
    a.out = os.path.abspath(a.out or os.path.join(a.peers, "results", time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(a.out, exist_ok=True)

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "server": a.server, "runs": a.runs,
            "latencies_ms": a.latencies, "corpora": a.corpora, "scenarios": a.scenarios,
            "change_fraction": a.change_fraction, "left_out": left_out, "nproc": os.cpu_count(),
            "loadavg_start": os.getloadavg(), "versions": versions(a)}
    b = Bench(a)
    tools = list(b.tools)
    meta["commands"] = b.tools
    t0 = time.time()
    try:
        b.matrix()
    finally:
        b.stack.stop()
        if not a.keep_work:
            for d in b.workdirs:
                shutil.rmtree(d, ignore_errors=True)
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        meta["elapsed_s"] = round(time.time() - t0, 1)
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump({"meta": meta, "runs": b.runs, "verify": b.checks}, f, indent=1)
        md = tables(b.runs, b.checks, a, tools)
        head = (f"# Peer benchmark, {meta['started']}\n\nserver {a.server}; corpora {', '.join(a.corpora)}; "
                f"{a.runs} run(s) per scenario; {os.cpu_count()} CPUs; cdnsync {meta['versions']['cdnsync']} "
                f"({meta['versions']['git']})\n" +
                "".join(f"\n{t} left out: {why}\n" for t, why in left_out.items()) + "\n")
        with open(os.path.join(a.out, "table.md"), "w") as f:
            f.write(head + md)
        print(head + md)
        print(f"results: {a.out}/results.json  table: {a.out}/table.md  logs: {a.out}/logs/")
    failed = [v for v in b.checks if not v["ok"]] or [r for r in b.runs if r["rc"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
