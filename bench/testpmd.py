#!/usr/bin/env python3
"""Small frames through vhost-user, without a VM: DPDK's testpmd as the
frontend (net_virtio_user, io forwarding, --tx-first, 64-byte frames) bounces
frames off each backend in turn, in one invocation:

  dpdk-vhost      DPDK's own vhost backend (testpmd with net_vhost, io mode):
                  the ceiling, polling one core for ever
  vnetkit         `vnetkit serve --net loopback` (sleeps in epoll_wait, woken
                  by the frontend's kicks)
  vnetkit-poll    the same with --poll-us POLL_US (busy-polls the rings after
                  work before sleeping)

The backend runs on CPU 0 and the frontend on CPU 1 (both pinned). Reported:
frames per second the frontend receives (testpmd's Rx-pps, the median of
its per-second figures after WARMUP seconds), RUNS runs each, medians, and
each as a ratio of dpdk-vhost's; plus the backend's CPU share.

Writes bench/results/testpmd.{json,md} (and a PNG with matplotlib). All
traffic is on Unix sockets and shared memory; the script still re-executes
itself in a network namespace with only lo (scripts/isolated).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import isolation  # noqa: E402
import harness  # noqa: E402
from harness import Serve, Testpmd  # noqa: E402
from proc_stats import cpu_seconds  # noqa: E402
import plotting  # noqa: E402

LABELS = {"dpdk-vhost": "DPDK vhost (testpmd net_vhost)", "vnetkit": "vnetkit serve --net loopback",
          "vnetkit-poll": "vnetkit serve --net loopback --poll-us"}


def one_run(engine, seconds, warmup, poll_us):
    workdir = tempfile.mkdtemp(prefix="vnk-testpmd-")
    procs = []
    try:
        if engine == "dpdk-vhost":
            sock = os.path.join(workdir, "vhost.sock")
            backend = Testpmd(vdev=f"net_vhost0,iface={sock}", cpus=0, tx_first=False, stats_period=100)
            procs.append(backend)
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            pid = backend.proc.pid
        else:
            extra = ["--poll-us", str(poll_us)] if engine == "vnetkit-poll" else []
            serve = Serve("--net", "loopback", *extra, workdir=workdir)
            procs.append(serve)
            os.sched_setaffinity(serve.proc.pid, {0})
            sock, pid = serve.sock, serve.proc.pid
        front = Testpmd(sock, cpus=1)
        procs.append(front)
        time.sleep(warmup)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        rates = front.rates()
        front.stop()
        samples = rates[int(warmup):] or rates
        return {"pps": statistics.median(samples) if samples else 0.0, "cpu_share": (cpu1 - cpu0) / (t1 - t0)}
    finally:
        for p in reversed(procs):
            p.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def markdown(doc):
    rows = doc["results"]
    ref = rows.get("dpdk-vhost", {}).get("pps")
    lines = ["# Small frames through vhost-user: testpmd against each backend", "",
             f"{doc['host']}; DPDK {doc['dpdk']}. testpmd (net_virtio_user, io forwarding, --tx-first, "
             f"{doc['frame']}-byte frames) on CPU 1, the backend on CPU 0. {doc['runs']} runs × {doc['seconds']} s "
             f"after {doc['warmup']} s warm-up; medians of testpmd's per-second Rx-pps. --poll-us {doc['poll_us']}.", "",
             "| backend | Mframes/s | × DPDK vhost | backend CPU share |", "|---|---:|---:|---:|"]
    for name, r in rows.items():
        ratio = f"{r['pps'] / ref:.2f}" if ref else "—"
        lines.append(f"| {LABELS[name]} | {r['pps'] / 1e6:.2f} | {ratio} | {r['cpu_share'] * 100:.0f} % |")
    return "\n".join(lines) + "\n"


def chart(doc, path):
    plt = plotting.pyplot()
    if plt is None:
        return False
    names = list(doc["results"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(range(len(names)), [doc["results"][n]["pps"] / 1e6 for n in names])
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([LABELS[n] for n in names], rotation=10, fontsize=8)
    ax.set_ylabel("Mframes/s (64 B)")
    ax.set_title("testpmd io forwarding through each vhost-user backend")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--poll-us", type=int, default=50)
    ap.add_argument("--engines", default="dpdk-vhost,vnetkit,vnetkit-poll")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--build", default=None, help="build directory (default: build)")
    args = ap.parse_args()
    if not shutil.which("dpdk-testpmd"):
        sys.exit("bench/testpmd: dpdk-testpmd is not installed (scripts/setup installs dpdk-dev)")
    if os.cpu_count() < 2:
        sys.exit("bench/testpmd: needs two CPUs (backend and frontend pinned apart)")
    isolation.ensure()
    if args.build:
        harness.use_build(args.build)
    results = {}
    for engine in args.engines.split(","):
        runs = []
        for i in range(args.runs):
            r = one_run(engine, args.seconds, args.warmup, args.poll_us)
            print(f"bench/testpmd: {engine} run {i + 1}: {r['pps'] / 1e6:.2f} Mframes/s, "
                  f"backend CPU {r['cpu_share'] * 100:.0f} %", flush=True)
            runs.append(r)
        results[engine] = {"pps": statistics.median(r["pps"] for r in runs),
                           "cpu_share": statistics.median(r["cpu_share"] for r in runs), "runs": runs}
    dpdk = os.popen("dpkg-query -W -f '${Version}' dpdk 2>/dev/null").read() or "?"
    doc = {"host": f"{platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}", "dpdk": dpdk,
           "frame": 64, "runs": args.runs, "seconds": args.seconds, "warmup": args.warmup, "poll_us": args.poll_us,
           "date": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "testpmd.json"), "w") as f:
        json.dump(doc, f, indent=2)
    md = markdown(doc)
    with open(os.path.join(args.out, "testpmd.md"), "w") as f:
        f.write(md)
    chart(doc, os.path.join(args.out, "testpmd.png"))
    print(md)


if __name__ == "__main__":
    main()
