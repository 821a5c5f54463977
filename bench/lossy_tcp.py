#!/usr/bin/env python3
"""TCP over a lossy, reordering link: vnetkit beside the kernel's own TCP and
beside pasta, the same link degraded the same way, in one invocation.

Runs inside Debian's User-Mode Linux 6.1 (the kernel of Debian 12), booted on
this machine's root file system like the Linux 6.1 tests: it has netem, ifb
and the tc actions the host kernel here lacks, and no network device leading
out of it. Each engine serves a fresh network namespace whose link is
degraded both ways (netem on the link's egress, and on its ingress through
an ifb device), and a client in it downloads and uploads SIZE bytes over HTTP
(sha256-checked) from a server in the UML's root namespace:

  kernel      a veth pair into the namespace: the kernel's TCP at both ends,
              netem on both ends of the pair
  vnetkit     `vnetkit netns --pid HOLDER` (usernet through tap0)
  pasta-2026  pasta built from ../shared/peers (upstream 2026-07)
  pasta-2023  Debian 12's pasta (passt package)

Conditions: a clean link, and 1 % loss with 10 % reordering (1 ms delay) both
ways. RUNS rounds, engines interleaved within each round; medians of
throughput (Mb/s). Writes bench/results/lossy_tcp.{json,md}.

usage: bench/lossy_tcp.py [--runs N] [--size MIB] [--engines a,b] [--build DIR]
"""
import argparse
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INTEGRATION = os.path.join(ROOT, "tests", "integration")
sys.path.insert(0, INTEGRATION)
sys.path.insert(0, HERE)
import peer_build  # noqa: E402

CONDITIONS = {"clean": None, "loss1-reorder10": "loss 1% reorder 10% delay 1ms"}
ENGINES = ("kernel", "vnetkit", "pasta-2026", "pasta-2023")
LABELS = {"kernel": "kernel TCP (veth)", "vnetkit": "vnetkit netns", "pasta-2026": "pasta 2026-07",
          "pasta-2023": "pasta 2023 (Debian 12)"}


def report(what, **kv):
    print("VNK:", what, " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)


# ---------------------------------------------------------------- inside UML

def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.stderr.strip()[-300:]}")
    return r.stdout


def degrade(ns_pid, dev, netem, host_dev=None):
    """netem on `dev` in the namespace both ways: its egress, and its ingress
    through an ifb; for a veth pair, on the root end (`host_dev`) instead."""
    if netem is None:
        return
    enter = f"nsenter -t {ns_pid} -n"
    sh(f"{enter} tc qdisc replace dev {dev} root netem {netem}")
    if host_dev:
        sh(f"tc qdisc replace dev {host_dev} root netem {netem}")
        return
    sh(f"{enter} ip link add ifb9 type ifb && {enter} ip link set ifb9 up")
    sh(f"{enter} tc qdisc add dev {dev} handle ffff: ingress")
    sh(f"{enter} tc filter add dev {dev} parent ffff: matchall action mirred egress redirect dev ifb9")
    sh(f"{enter} tc qdisc replace dev ifb9 root netem {netem}")


def wait_for(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"no {what} within {timeout}s")


def ns_link(pid):
    """The one non-loopback interface in namespace `pid`, once it has 10.0.2.15."""
    out = sh(f"nsenter -t {pid} -n ip -o -4 addr", check=False)
    m = re.search(r"^\d+: (\S+)\s+inet 10\.0\.2\.15/", out, re.M)
    return m.group(1) if m else None


class Engine:
    """One engine serving one fresh namespace; .pid names the namespace, .server the address of the host side."""

    def __init__(self, name, netem, args):
        self.name, self.procs, self.cleanup = name, [], []
        if name == "kernel":
            holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "1000000"])
            self.procs.append(holder)
            self.pid = holder.pid
            wait_for(lambda: os.readlink(f"/proc/{self.pid}/ns/net") != os.readlink("/proc/self/ns/net"), "namespace")
            sh(f"ip link add vb0 mtu 65520 type veth peer name vb1 mtu 65520 && ip link set vb1 netns {self.pid}")
            self.cleanup.append("ip link del vb0")
            sh("ip addr add 10.99.0.1/24 dev vb0 && ip link set vb0 up")
            sh(f"nsenter -t {self.pid} -n sh -c 'ip addr add 10.99.0.2/24 dev vb1 && ip link set vb1 up && ip link set lo up'")
            degrade(self.pid, "vb1", netem, host_dev="vb0")
            self.server = "10.99.0.1"
            return
        if name == "vnetkit":
            holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "1000000"])
            self.procs.append(holder)
            self.pid = holder.pid
            wait_for(lambda: os.readlink(f"/proc/{self.pid}/ns/net") != os.readlink("/proc/self/ns/net"), "namespace")
            self.procs.append(subprocess.Popen([args.vnetkit, "--log-level", "error", "netns", "--pid", str(self.pid),
                                                "--dns-upstream", "127.0.0.1:1"]))
        else:
            exe = args.pasta2026 if name == "pasta-2026" else "/usr/bin/pasta"
            p = subprocess.Popen([exe, "--runas", "0", "-f", "-q", "--config-net", "-a", "10.0.2.15", "-n", "24", "-g",
                                  "10.0.2.2", "--", "sleep", "1000000"])
            self.procs.append(p)
            kids = wait_for(lambda: sh(f"pgrep -P {p.pid}", check=False).split(), f"{name}'s command")
            self.pid = int(kids[0])
        dev = wait_for(lambda: ns_link(self.pid), "10.0.2.15 in the namespace")
        degrade(self.pid, dev, netem)
        self.server = "10.0.2.2"

    def close(self):
        for p in reversed(self.procs):
            p.kill()
            p.wait()
        for cmd in self.cleanup:
            sh(cmd, check=False)


def transfer(pid, server, port, direction, size, timeout):
    """Runs one download or upload in namespace `pid`; returns seconds, or None when it failed."""
    client = os.path.join(INTEGRATION, "netns_client.py")
    code = (f"import sys; sys.path.insert(0, {INTEGRATION!r}); import netns_client as c; c.GATEWAY = {server!r}; "
            f"c.{'download' if direction == 'down' else 'upload'}({port}{', ' + str(size) if direction == 'up' else ''})")
    try:
        r = subprocess.run(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", code], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    del client
    m = re.search(r"VNK: (download|upload) (.*)", r.stdout)
    if not m:
        return None, (r.stderr.strip().splitlines() or ["no output"])[-1][:120]
    kv = dict(w.split("=", 1) for w in m.group(2).split())
    return float(kv["seconds"]), kv


def inside(args):
    from servers import HttpServer  # noqa: E402
    for module in ("sch_netem", "sch_ingress", "ifb", "act_mirred", "cls_matchall", "veth", "tun"):
        subprocess.run(["modprobe", module], check=False)
    # pasta needs an interface with a default route; this one leads nowhere.
    sh("ip link add vnkup0 type dummy && ip addr add 192.0.2.1/24 dev vnkup0 && ip link set vnkup0 up && "
       "ip route add default via 192.0.2.2")
    web = HttpServer(args.size, "0.0.0.0")  # 127.0.0.1 for the user-mode engines, 10.99.0.1 for the veth
    report("server", port=web.port, sha256=web.sha256)
    engines = [e for e in args.engines.split(",") if e]
    for run in range(args.runs):
        for condition, netem in CONDITIONS.items():
            for name in engines:
                try:
                    engine = Engine(name, netem, args)
                except (RuntimeError, OSError) as e:
                    report("result", engine=name, condition=condition, run=run, direction="setup",
                           error=str(e).replace(" ", "_")[:160])
                    continue
                try:
                    for direction in ("down", "up"):
                        seconds, detail = transfer(engine.pid, engine.server, web.port, direction, args.size, 120)
                        ok = seconds is not None and (
                            detail.get("sha256") == web.sha256 if direction == "down"
                            else detail.get("sha256") == detail.get("sent_sha256"))
                        report("result", engine=name, condition=condition, run=run, direction=direction,
                               seconds=seconds if seconds is not None else "-", ok=int(bool(ok)),
                               **({} if ok else {"error": str(detail).replace(" ", "_")[:160]}))
                finally:
                    engine.close()
    web.close()


# ------------------------------------------------------------------ the host

def boot(args):
    import test_linux61  # noqa: E402
    argv = [test_linux61.UML, "mem=1500M", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "rw", "quiet",
            f"init={os.path.join(INTEGRATION, 'linux61_init.sh')}", f"VNK_DIR={INTEGRATION}",
            f"VNK_BUILD={os.path.abspath(args.build)}", "VNK_SCENARIO=bench-lossy",
            f"VNK_BENCH_ARGS={args.runs}:{args.size}:{args.engines}:{os.path.abspath(args.pasta2026 or '-')}",
            "con=null", "con0=null,fd:1"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    return r.stdout


def summarise(out, args):
    rows = [dict(w.split("=", 1) for w in m.group(1).split()) for m in re.finditer(r"VNK: result (.*)", out)]
    results = {}
    for r in rows:
        key = (r["engine"], r["condition"], r["direction"])
        entry = results.setdefault(key, {"seconds": [], "failures": []})
        if r.get("ok") == "1":
            entry["seconds"].append(float(r["seconds"]))
        else:
            entry["failures"].append(r.get("error", "?"))
    size_bits = args.size * 8
    doc = {"kernel_host": platform.release(), "guest_kernel": "Linux 6.1 (Debian user-mode-linux)",
           "size_bytes": args.size, "runs": args.runs, "conditions": CONDITIONS, "results": []}
    for (engine, condition, direction), e in sorted(results.items()):
        mbps = [size_bits / s / 1e6 for s in e["seconds"]]
        doc["results"].append({"engine": engine, "condition": condition, "direction": direction,
                               "seconds": e["seconds"], "mbps": mbps,
                               "median_mbps": statistics.median(mbps) if mbps else None, "failures": e["failures"]})
    return doc


def markdown(doc):
    med = {(r["engine"], r["condition"], r["direction"]): r for r in doc["results"]}
    engines = [e for e in ENGINES if any(k[0] == e for k in med)]
    lines = [f"# TCP over a lossy link: vnetkit, the kernel's TCP, pasta", "",
             f"{doc['guest_kernel']} in User-Mode Linux; {doc['size_bytes'] >> 20} MiB over HTTP each way, "
             f"{doc['runs']} runs, medians (Mb/s). Degraded: netem `{CONDITIONS['loss1-reorder10']}` on both "
             "directions of the namespace's link. Host kernel " + doc["kernel_host"] + ".", ""]
    for condition in CONDITIONS:
        lines += [f"## {condition}", "", "| engine | down Mb/s | up Mb/s | vnetkit / engine (down, up) | failures |",
                  "|---|---:|---:|---:|---|"]
        for e in engines:
            d, u = med.get((e, condition, "down")), med.get((e, condition, "up"))
            vd, vu = med.get(("vnetkit", condition, "down")), med.get(("vnetkit", condition, "up"))

            def fmt(x):
                return f"{x['median_mbps']:.0f}" if x and x["median_mbps"] else "—"

            def ratio(v, x):
                return f"{v['median_mbps'] / x['median_mbps']:.2f}×" if v and x and v["median_mbps"] and x["median_mbps"] else "—"
            fails = sum(len(x["failures"]) for x in (d, u) if x)
            lines.append(f"| {LABELS[e]} | {fmt(d)} | {fmt(u)} | {ratio(vd, d)}, {ratio(vu, u)} | {fails or ''} |")
        lines.append("")
    lines += ["Each round starts every engine afresh on a fresh namespace; within a round the engines run one after",
              "another, so drift in the machine's load spreads over all of them.", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="MiB each way")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--build", default="build-release", help="build directory with vnetkit")
    ap.add_argument("--name", default="lossy_tcp")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pasta2026", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--vnetkit", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:  # size in bytes here
        inside(args)
        return
    import isolation  # noqa: E402
    isolation.ensure()
    args.vnetkit = os.path.join(args.build, "vnetkit")
    if not os.path.exists(args.vnetkit):
        sys.exit(f"bench/lossy_tcp: {args.vnetkit} not found (build it first)")
    if "pasta-2026" in args.engines:
        args.pasta2026 = peer_build.build_passt(args.build, "pasta")
        if not args.pasta2026:
            print("bench/lossy_tcp: pasta 2026 could not be built; leaving it out", flush=True)
            args.engines = ",".join(e for e in args.engines.split(",") if e != "pasta-2026")
    args.size <<= 20
    print(f"bench/lossy_tcp: booting Linux 6.1 (UML); {args.runs} runs of {args.engines}", flush=True)
    out = boot(args)
    if "VNK: server" not in out:
        sys.exit("bench/lossy_tcp: the UML guest did not run the benchmark:\n" + out[-3000:])
    doc = summarise(out, args)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    base = os.path.join(HERE, "results", args.name)
    with open(base + ".json", "w") as f:
        json.dump(doc, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(markdown(doc))
    print(markdown(doc), flush=True)


if __name__ == "__main__":
    main()
