#!/usr/bin/env python3
"""Real-guest benchmark of `vnetkit serve` (loopback backend).

For each guest (User-Mode Linux; QEMU under TCG) and each run, boots the guest
against a fresh server and:
  * times start-up: from spawning `vnetkit serve` and the guest together to
    the guest reporting eth0 up with carrier (host wall clock);
  * blasts raw Ethernet frames from the guest's AF_PACKET socket (pktcheck,
    64 frames per sendmmsg) for SECONDS per frame size; every frame comes back
    through the loopback backend and is counted by the guest;
  * samples the server's CPU time (/proc/PID/stat) around each size, giving
    the server's CPU-microseconds per frame.
Medians over RUNS are written to bench/results/vhost_user_guest.{json,md}.
All traffic stays inside the guest and the server.

Isolation: the script re-executes itself through scripts/isolated, so
every engine and peer it starts runs in a network namespace with no route
off the machine (only lo); the servers it measures against listen on that
namespace's 127.0.0.1.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import isolation  # noqa: E402
import harness  # noqa: E402
from harness import Qemu, Serve, Uml, kv  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
MAC = "02:00:00:00:be:0c"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def one_run(kind, sizes, seconds, mtu):
    t0 = time.monotonic()
    serve = Serve("--mac", MAC, "--mtu", str(mtu))
    try:
        args = [f"vnk.sizes={','.join(map(str, sizes))}", f"vnk.seconds={seconds}"]
        if kind == "uml":
            g = Uml(serve.sock, "blast", extra=args)
        else:
            g = Qemu(serve.sock, "blast", MAC, mtu=mtu, cmdline=args)
        try:
            eth = kv(g.wait_for(r"VNK: eth0-up .*", 120).group(0))
            startup = time.monotonic() - t0
            cpu = cpu_seconds(serve.proc.pid)
            results = []
            start = 0
            for size in sizes:
                m = g.wait_for(rf"pktcheck: mode=blast size={size} .*", seconds + 120, start)
                start = g.lines.index(m.string) + 1
                now_cpu = cpu_seconds(serve.proc.pid)
                r = kv(m.group(0))
                frames = int(r["sent"]) + int(r["received"])  # the server carries each frame both ways
                results.append({
                    "size": size,
                    "tx_fps": float(r["tx_fps"]),
                    "rx_fps": float(r["rx_fps"]),
                    "gbps": float(r["tx_gbps"]),
                    "lost": int(r["sent"]) - int(r["received"]),
                    "server_cpu_us_per_frame": (now_cpu - cpu) * 1e6 / max(frames, 1),
                    "server_cpu_share": (now_cpu - cpu) / float(r["seconds"]),
                })
                cpu = now_cpu
            g.status(60)
        finally:
            g.kill()
        return {"startup_s": startup, "guest_uptime_at_eth0_s": float(eth["uptime"]), "sizes": results}
    finally:
        serve.stop()
        serve.cleanup()


def summarize(runs, sizes):
    out = {
        "startup_s": statistics.median(r["startup_s"] for r in runs),
        "guest_uptime_at_eth0_s": statistics.median(r["guest_uptime_at_eth0_s"] for r in runs),
        "sizes": [],
    }
    for i, size in enumerate(sizes):
        rows = [r["sizes"][i] for r in runs]
        out["sizes"].append({k: (size if k == "size" else statistics.median(row[k] for row in rows)) for k in rows[0]})
    return out


def markdown(doc):
    lines = [
        "# vhost-user: real guests through `vnetkit serve`",
        "",
        f"Host: {doc['host']}, {doc['cpus']} CPUs; run {doc['date']}. Median of {doc['runs']} runs, "
        f"{doc['seconds']} s per frame size. Loopback backend: every frame the guest sends comes back to it, "
        "so the server moves each frame twice (TX and RX). Frames are sent from an AF_PACKET socket, "
        "64 per sendmmsg(). Gb/s counts Ethernet frame bytes one way. Server CPU is `vnetkit serve`'s "
        "user+system time per frame carried (each direction counts as one).",
        "",
        "| guest | frame | frames/s (guest TX) | frames/s (echoed back) | Gb/s | server CPU µs/frame | server CPU share |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, g in doc["guests"].items():
        for s in g["sizes"]:
            lines.append(
                f"| {name} | {s['size']} B | {s['tx_fps'] / 1e3:.1f} k | {s['rx_fps'] / 1e3:.1f} k | {s['gbps']:.2f} | "
                f"{s['server_cpu_us_per_frame']:.2f} | {s['server_cpu_share'] * 100:.0f} % |"
            )
    lines += ["", "| guest | start-up: serve + guest spawned → eth0 up (host clock) | guest uptime at eth0 up |",
              "|---|---:|---:|"]
    for name, g in doc["guests"].items():
        lines.append(f"| {name} | {g['startup_s']:.2f} s | {g['guest_uptime_at_eth0_s']:.2f} s |")
    lines += ["", "QEMU runs under TCG (software CPU emulation), so its figures are bounded by the emulated guest, "
              "not by the server; UML runs the guest kernel natively as a host process."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--guests", default="uml,qemu")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "vhost_user_guest"))
    args = ap.parse_args()
    isolation.ensure()  # every engine runs in a namespace with no route off the machine
    mtu = 9000
    sizes = [60, 1514, mtu + 14]
    doc = {"host": platform.node(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "runs": args.runs, "seconds": args.seconds, "build": harness.BUILD, "guests": {}}
    for kind in args.guests.split(","):
        runs = []
        for i in range(args.runs):
            print(f"guest_bench: {kind} run {i + 1}/{args.runs} ({len(sizes)} sizes x {args.seconds:g} s)...",
                  flush=True)
            runs.append(one_run(kind, sizes, args.seconds, mtu))
        doc["guests"][{"uml": "UML", "qemu": "QEMU (TCG)"}[kind]] = summarize(runs, sizes) | {"all_runs": runs}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(doc, f, indent=2)
    with open(args.out + ".md", "w") as f:
        f.write(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
