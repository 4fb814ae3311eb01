#!/usr/bin/env python3
"""cdnsync side by side with the peers (aws s3 sync, s5cmd, rclone, s3cmd,
hugo deploy) on the same local S3 server and corpora, in one run.

Drives the shared harness (../shared/bench/bench.py: server lifecycle,
scenarios cold / noop / touch / change, timing with wait4, server CPU,
noise detection) and adds:

* a counting proxy (`cdnsync-proxy`, tools/proxy.rs) between every tool and
  the server: requests by S3 operation are counted by the benchmark itself,
  per run, not read from each tool's output; its CPU is reported apart;
* cdnsync as a tool (defaults: fingerprinting, gzip, SSE, releases, gc);
* a verify step that fits a tool which renames and rewrites: cdnsync's own
  plan of the work dir against the bucket must be a no-op;
* a table with wall time, CPU, peak RSS, uploads, requests by type, and the
  ratio of cdnsync to the fastest peer per scenario.

Usage (benches/peers.sh wraps it):
  benches/peers.py --peers DIR --cdnsync BIN --proxy BIN [bench.py options]
"""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("CDNSYNC_SHARED_BENCH", os.path.join(HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, SHARED)
import bench  # noqa: E402  (the shared harness)


def take(argv, name):
    if name in argv:
        i = argv.index(name)
        v = argv[i + 1]
        del argv[i:i + 2]
        return v
    return None


argv = sys.argv[1:]
CDNSYNC = take(argv, "--cdnsync")
PROXY = take(argv, "--proxy")
if not CDNSYNC or not PROXY:
    sys.exit(__doc__)

OPS = ["PUT", "COPY", "GET", "HEAD", "LIST", "DELETE_OBJECTS", "DELETE", "CREATE_MULTIPART",
       "UPLOAD_PART", "COMPLETE_MULTIPART"]

_Server = bench.Server


class ProxiedServer(_Server):
    """The harness's server, with the counting proxy in front of it."""

    def __init__(self, kind, peers, data_dir, logdir):
        super().__init__(kind, peers, data_dir, logdir)
        self.upstream = self.endpoint
        pf = os.path.join(logdir, "proxy.port")
        if os.path.exists(pf):
            os.unlink(pf)
        self.proxy_log = open(os.path.join(logdir, "proxy.log"), "w")
        self.proxy = subprocess.Popen([PROXY, "--upstream", self.upstream, "--port-file", pf],
                                      stdout=self.proxy_log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(200):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        self.port = int(open(pf).read())
        self.endpoint = f"http://127.0.0.1:{self.port}"
        bench.log(f"counting proxy pid={self.proxy.pid} on {self.endpoint} -> {self.upstream}")

    def counts(self):
        with urllib.request.urlopen(self.endpoint + "/__proxy/counts", timeout=10) as r:
            return json.load(r)

    def proxy_cpu_seconds(self):
        try:
            with open(f"/proc/{self.proxy.pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return float("nan")

    def stop(self):
        self.proxy.terminate()
        self.proxy.wait()
        super().stop()


bench.Server = ProxiedServer
bench.BUILTIN["cdnsync"] = (
    CDNSYNC + " publish {dir} --to s3://{bucket} --endpoint-url {endpoint}",
    r"^(\d+) uploaded \(", None)

_run_once = bench.Bench.run_once


def run_once(self, tool, corpus, scenario, run, workdir, bucket):
    c0 = self.server.counts()
    p0 = self.server.proxy_cpu_seconds()
    res = _run_once(self, tool, corpus, scenario, run, workdir, bucket)
    c1 = self.server.counts()
    res["requests"] = {k: c1.get(k, 0) - c0.get(k, 0) for k in set(c0) | set(c1) if c1.get(k, 0) != c0.get(k, 0)}
    res["proxy_cpu_s"] = round(self.server.proxy_cpu_seconds() - p0, 3)
    # The proxy's CPU is not "other processes" noise.
    if res.get("other_cpu_s") is not None:
        res["other_cpu_s"] = round(res["other_cpu_s"] - res["proxy_cpu_s"], 2)
    return res


bench.Bench.run_once = run_once

_verify = bench.Bench.verify


def verify(self, workdir, bucket):
    if os.path.basename(workdir).startswith("cdnsync__"):
        # cdnsync renames and rewrites: the bucket is right when cdnsync's own
        # plan of the work dir against it has nothing to do.
        r = subprocess.run([CDNSYNC, "plan", workdir, "--to", f"s3://{bucket}", "--endpoint-url",
                            self.server.endpoint, "--json"], env=self.env, capture_output=True, text=True)
        try:
            plan = json.loads(r.stdout)
            ok = r.returncode == 0 and plan["noop"] and plan["uploaded"] == 0
            return {"ok": ok, "missing": plan["uploaded"], "extra": plan["deleted"], "size_mismatch": 0,
                    "content_mismatch": 0, "examples": [o["key"] for o in plan["objects"]
                                                        if o["action"] != "unchanged"][:5]}
        except (ValueError, KeyError):
            return {"ok": False, "missing": -1, "extra": -1, "size_mismatch": 0, "content_mismatch": 0,
                    "examples": [r.stderr[-300:]]}
    return _verify(self, workdir, bucket)


bench.Bench.verify = verify

_table = bench.table


def table(results, verifications, scenarios):
    out = [_table(results, verifications, scenarios), ""]
    rows = {}
    for r in results:
        if r.get("discarded") or r["scenario"] == "seed":
            continue
        rows.setdefault((r["corpus"], r["scenario"]), {}).setdefault(r["tool"], []).append(r)
    out += ["Per run (medians): wall s | tool CPU s | server CPU s | peak RSS MB | requests by type "
            "(counted by the proxy) | proxy CPU s", "",
            "| corpus | scenario | tool | wall s | CPU s | server CPU s | RSS MB | requests | proxy CPU s |",
            "|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for (corpus, scenario), tools in rows.items():
        for tool, rs in tools.items():
            med = lambda f: statistics.median(f(x) for x in rs)  # noqa: E731
            req = {}
            for op in sorted({k for x in rs for k in x.get("requests", {})}):
                if op == "TOTAL":
                    continue
                req[op] = int(statistics.median_low([x.get("requests", {}).get(op, 0) for x in rs]))
            reqs = " ".join(f"{k}={v}" for k, v in sorted(req.items(), key=lambda kv: (OPS + [kv[0]]).index(kv[0])))
            out.append(f"| {corpus} | {scenario} | {tool} | {med(lambda x: x['wall_s']):.2f} | "
                       f"{med(lambda x: x['user_s'] + x['sys_s']):.2f} | {med(lambda x: x['server_cpu_s']):.2f} | "
                       f"{med(lambda x: x['maxrss_mb']):.0f} | {reqs or '-'} | {med(lambda x: x.get('proxy_cpu_s', 0)):.2f} |")
        if "cdnsync" in tools:
            peers = {t: statistics.median(x["wall_s"] for x in rs) for t, rs in tools.items()
                     if t != "cdnsync" and all(x["rc"] == 0 for x in rs)}
            if peers:
                best = min(peers, key=peers.get)
                c = statistics.median(x["wall_s"] for x in tools["cdnsync"])
                ratios.append(f"| {corpus} | {scenario} | {c:.2f} | {best} {peers[best]:.2f} | "
                              f"**{c / peers[best]:.2f}x** |")
    if ratios:
        out += ["", "cdnsync against the fastest peer in the same run (wall time, medians):", "",
                "| corpus | scenario | cdnsync s | fastest peer s | ratio |", "|---|---|---|---|---|"] + ratios
    return "\n".join(out)


bench.table = table
sys.argv = [sys.argv[0]] + argv
bench.main()
