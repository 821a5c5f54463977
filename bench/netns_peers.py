#!/usr/bin/env python3
"""Engine against engine, at native speed: the same workloads in a network
namespace served by each user-mode stack in turn, and by a kernel veth pair
as the ceiling, in one invocation.

  vnetkit       `vnetkit netns --pid HOLDER` (usernet through a TAP device)
  vnetkit-no-peek-off
                the same with VNETKIT_PRETEND_MISSING=tcp-peek-off: TCP as on
                kernels before 6.9 (no SO_PEEK_OFF), beside the normal path
  vnetkit-no-sandbox
                the same with --no-sandbox: what the sandbox costs (vnetkit
                is otherwise sandboxed: nobody, seccomp, no capabilities)
  vnetkit-1500, vnetkit-1500-no-offload
                the namespace at MTU 1500, with the TAP's checksum and TCP
                segmentation offloads (the default) and without them
  pasta         Debian's pasta (passt package, 2023), `pasta --config-net HOLDER`
  pasta-2026    pasta built from ../shared/peers (upstream 2026-07), the same way
  slirp4netns   Debian's slirp4netns at MTU 65520 and at MTU 1500
  veth          a veth pair, MTU 65520: no user-mode stack at all
  ...-v6        the same engine measured over IPv6 (vnetkit-v6, vnetkit-1500-v6,
                pasta-2026-v6, pasta-v6, veth-v6): the namespace's SLAAC (or
                pasta's copied) address, servers on the host's ::1 reached
                through the engine's IPv6 gateway (vnetkit fd00::2, pasta the
                uplink's 2001:db8::2, both mapped to ::1; veth fd99::1)

Each engine serves a fresh namespace held by `unshare --net sleep`; the
workloads run in it with nsenter and reach servers on the host's 127.0.0.1
through the gateway address 10.0.2.2, which every user-mode engine maps to
host loopback (veth: the host end's own address). Before measuring, a
connection to a server listening only on 127.0.0.1 proves the mapping, so
nothing leaves the machine.

Workloads: iperf3 TCP namespace→host and host→namespace (RUNS × SECONDS,
medians); iperf3 UDP with 64-byte datagrams namespace→host (datagrams/s
received); TCP request/response latency (bench/tcp_rr: 1-byte ping-pong,
median and 99th percentile); TCP connections per second (bench/tcp_rr
connect: connect, 64 bytes each way, close; 5000 in a row). The backend process's CPU-seconds per GiB moved
(utime+stime around each TCP transfer) and its peak RSS (VmHWM).

Writes bench/results/netns_peers.{json,md} and, with matplotlib,
netns_peers.png. Needs root (namespaces held by root, veth).

Isolation: the script re-executes itself through scripts/isolated --uplink, so
every engine and peer it starts runs in a network namespace with no route
off the machine (only lo, and a veth pair that leads nowhere, since passt and pasta
refuse to start without a default route); the servers it measures against listen on that
namespace's 127.0.0.1.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import isolation  # noqa: E402
sys.path.insert(0, HERE)
from harness import Process  # noqa: E402
from servers import free_port  # noqa: E402
from proc_stats import GIB, cpu_seconds, med, peak_rss_mib  # noqa: E402
import plotting  # noqa: E402
import peer_build  # noqa: E402

GATEWAY = "10.0.2.2"
VETH_HOST, VETH_NS = "10.99.0.1", "10.99.0.2"
VETH6_HOST, VETH6_NS = "fd99::1", "fd99::2"
GATEWAY6 = "fd00::2"           # vnetkit's IPv6 gateway, mapped to ::1
PASTA_GATEWAY6 = "2001:db8::2"  # the uplink's IPv6 default route (scripts/isolated --uplink), which pasta maps to ::1
LABELS = {
    "veth": "veth pair (kernel, ceiling)",
    "vnetkit": "vnetkit netns",
    "vnetkit-no-peek-off": "vnetkit netns, no SO_PEEK_OFF (< 6.9)",
    "vnetkit-no-sandbox": "vnetkit netns --no-sandbox",
    "vnetkit-1500": "vnetkit netns MTU 1500 (TAP offloads)",
    "vnetkit-1500-no-offload": "vnetkit netns MTU 1500 --no-offload",
    "pasta": "pasta 2023 (Debian 12)",
    "pasta-2026": "pasta 2026-07",
    "slirp4netns-65520": "slirp4netns MTU 65520",
    "slirp4netns-1500": "slirp4netns MTU 1500",
    "veth-v6": "veth pair over IPv6",
    "vnetkit-v6": "vnetkit netns over IPv6",
    "vnetkit-1500-v6": "vnetkit netns MTU 1500 over IPv6",
    "pasta-v6": "pasta 2023 over IPv6",
    "pasta-2026-v6": "pasta 2026-07 over IPv6",
}


def run(argv, timeout=120, check=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return r


class Namespace:
    """A network namespace held by `unshare --net sleep`; commands run in it via nsenter."""

    def __init__(self, pid=None):
        """A new namespace, or (pid) the one a process already stands in."""
        self.holder = None if pid else Process(["unshare", "--net", "--", "sleep", "1000000"], "netns holder")
        self.pid = pid or self.holder.proc.pid
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{self.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            if time.monotonic() > deadline:
                raise RuntimeError("no separate network namespace appeared")
            time.sleep(0.02)

    def cmd(self, *argv):
        return ["nsenter", "-t", str(self.pid), "-n", *argv]

    def wait_address(self, address, timeout=10):
        """Until `address` (IPv4, or an IPv6 prefix such as "fd00:") is configured and past DAD."""
        v6 = ":" in address
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = run(self.cmd("ip", "-o", "-6" if v6 else "-4", "addr", "show", "-tentative"), check=False).stdout
            if (f"inet6 {address}" if v6 else f"inet {address}/") in out:
                return
            time.sleep(0.05)
        raise RuntimeError(f"no {address} in the namespace after {timeout}s")

    def close(self):
        if self.holder:
            self.holder.kill()


def start_engine(name, ns, vnetkit, pasta2026=None):
    """Starts `name` for `ns`; returns (backend Process or None, the address the servers are reached at)."""
    if name.endswith("-v6"):
        backend, _ = start_engine(name[:-3], ns, vnetkit, pasta2026)
        if name == "veth-v6":
            run(["ip", "-6", "addr", "add", f"{VETH6_HOST}/64", "dev", f"vnkb{ns.pid % 100000}", "nodad"])
            run(ns.cmd("ip", "-6", "addr", "add", f"{VETH6_NS}/64", "dev", "vnkbns", "nodad"))
            return None, VETH6_HOST
        if name.startswith("vnetkit"):
            ns.wait_address("fd00:")  # SLAAC from usernet's Router Advertisement
            return backend, GATEWAY6
        ns.wait_address("2001:db8:")  # pasta copies the uplink's address
        return backend, PASTA_GATEWAY6
    if name == "veth":
        host_if, ns_if = f"vnkb{ns.pid % 100000}", "vnkbns"
        run(["ip", "link", "add", host_if, "mtu", "65520", "type", "veth", "peer", "name", ns_if, "mtu", "65520"])
        run(["ip", "link", "set", ns_if, "netns", str(ns.pid)])
        run(["ip", "addr", "add", f"{VETH_HOST}/24", "dev", host_if])
        run(["ip", "link", "set", host_if, "up"])
        run(ns.cmd("ip", "addr", "add", f"{VETH_NS}/24", "dev", ns_if))
        run(ns.cmd("ip", "link", "set", ns_if, "up"))
        run(ns.cmd("ip", "link", "set", "lo", "up"))
        return None, VETH_HOST
    if name.startswith("vnetkit"):
        env = dict(os.environ)
        if name == "vnetkit-no-peek-off":
            env["VNETKIT_PRETEND_MISSING"] = "tcp-peek-off"
        extra = {"vnetkit-no-sandbox": ["--no-sandbox"], "vnetkit-1500": ["--mtu", "1500"],
                 "vnetkit-1500-no-offload": ["--mtu", "1500", "--no-offload"]}.get(name, [])
        p = Process([vnetkit, "--log-level", "error", "netns", *extra, "--pid", str(ns.pid), "--dns-upstream",
                     "127.0.0.1:1"], name, env=env)
        ns.wait_address("10.0.2.15")
        return p, GATEWAY
    if name in ("pasta", "pasta-2026"):
        # pasta creates the namespace itself (it cannot attach to one owned by
        # root after dropping privileges); its command holds it. --runas 0:
        # as root pasta would otherwise switch to nobody.
        p = Process([pasta2026 if name == "pasta-2026" else "pasta", "--runas", "0", "-f", "-q", "--config-net", "-a", "10.0.2.15", "-n", "24", "-g", GATEWAY,
                     "--", "sleep", "1000000"], "pasta")
        deadline = time.monotonic() + 10
        while not (kids := run(["pgrep", "-P", str(p.proc.pid)], check=False).stdout.split()):
            if time.monotonic() > deadline:
                raise RuntimeError("pasta started no command: " + p.tail())
            time.sleep(0.05)
        ns.close()
        ns.__init__(int(kids[0]))
        ns.wait_address("10.0.2.15")
        return p, GATEWAY
    if name.startswith("slirp4netns-"):
        mtu = name.split("-")[1]
        p = Process(["slirp4netns", "--configure", f"--mtu={mtu}", "--disable-dns", str(ns.pid), "tap0"], "slirp4netns")
        ns.wait_address("10.0.2.100")
        return p, GATEWAY
    raise ValueError(name)


def iperf_json(ns, server, port, args, seconds):
    r = run(ns.cmd("iperf3", "-c", server, "-p", str(port), "-t", str(seconds), "-J", *args), timeout=seconds + 60,
            check=False)
    try:
        return json.loads(r.stdout)["end"]
    except (ValueError, KeyError):
        raise RuntimeError(f"iperf3 {' '.join(args)}: {r.stdout[-400:]} {r.stderr[-400:]}")


def measure(name, ns, backend, server, tools, runs, seconds):
    v6 = name.endswith("-v6")
    bind = {"veth": VETH_HOST, "veth-v6": VETH6_HOST}.get(name, "::1" if v6 else "127.0.0.1")
    iperf_port, rr_port = free_port(), free_port()
    iperf = Process(["iperf3", "-s", "--forceflush", "-B", bind, "-p", str(iperf_port)], "iperf3 -s")
    rr = Process([tools["tcp_rr"], "server", bind, str(rr_port)], "tcp_rr server")
    try:
        iperf.wait_for(r"Server listening", 10)
        rr.wait_for(r"listening", 10)
        # The gateway must reach the host's loopback: a server that listens
        # only there answers, or nothing is measured.
        probe = run(ns.cmd(tools["tcp_rr"], "client", server, str(rr_port), "100"), timeout=30, check=False)
        if probe.returncode != 0:
            raise RuntimeError(f"{server}:{rr_port} does not reach the host's {bind}: {probe.stderr.strip()}")
        pid = backend.proc.pid if backend else None
        out = {"up": [], "down": [], "cpu_up": [], "cpu_down": [], "retransmits_up": [], "retransmits_down": []}
        for _ in range(runs):
            for direction, args in (("up", []), ("down", ["-R"])):
                c0 = cpu_seconds(pid) if pid else None
                end = iperf_json(ns, server, iperf_port, args, seconds)
                c1 = cpu_seconds(pid) if pid else None
                out[direction].append(end["sum_received"]["bits_per_second"] / 1e9)
                out[f"retransmits_{direction}"].append(end["sum_sent"].get("retransmits", 0))
                moved = end["sum_received"]["bytes"]
                if pid and moved:
                    out[f"cpu_{direction}"].append((c1 - c0) / (moved / GIB))
        udp = iperf_json(ns, server, iperf_port, ["-u", "-b", "0", "-l", "64"], seconds)["sum"]
        out["udp_pps"] = (udp["packets"] - udp["lost_packets"]) / udp["seconds"]
        out["udp_lost_percent"] = udp.get("lost_percent")
        r = run(ns.cmd(tools["tcp_rr"], "client", server, str(rr_port), "20000"), timeout=120)
        out["rr"] = json.loads(r.stdout)
        r = run(ns.cmd(tools["tcp_rr"], "connect", server, str(rr_port), "5000", "64"), timeout=120)
        out["crr_per_second"] = json.loads(r.stdout)["per_second"]
        out["rss_mib"] = peak_rss_mib(pid) if pid else None
        return out
    finally:
        rr.kill()
        iperf.kill()


def summary(r):
    return {"up_gbps": med(r["up"]), "down_gbps": med(r["down"]), "udp_kpps": r["udp_pps"] / 1e3,
            "rr_p50_us": r["rr"]["p50_us"], "rr_p99_us": r["rr"]["p99_us"],
            "crr_kps": r["crr_per_second"] / 1e3 if r.get("crr_per_second") else None, "cpu_up": med(r["cpu_up"]),
            "cpu_down": med(r["cpu_down"]), "rss_mib": r["rss_mib"]}


COLUMNS = [  # key, heading, format, higher is better
    ("up_gbps", "ns→host Gb/s", ".2f", True),
    ("down_gbps", "host→ns Gb/s", ".2f", True),
    ("udp_kpps", "UDP 64 B kpps", ".0f", True),
    ("rr_p50_us", "TCP RR p50 µs", ".1f", False),
    ("rr_p99_us", "TCP RR p99 µs", ".1f", False),
    ("crr_kps", "TCP conn/s (k)", ".2f", True),
    ("cpu_up", "CPU-s/GiB ns→host", ".2f", False),
    ("cpu_down", "CPU-s/GiB host→ns", ".2f", False),
    ("rss_mib", "peak RSS MiB", ".1f", False),
]


def markdown(doc):
    rows = doc["results"]
    ref = rows.get("vnetkit", {})

    def cell(v, spec):
        return "—" if v is None else format(v, spec)

    lines = [
        "# usernet engines in a network namespace",
        "",
        f"{doc['host']}. iperf3 {doc['runs']} × {doc['seconds']} s each way (medians) to servers on the host's "
        "127.0.0.1 through the gateway address (veth: the host end's address); UDP: iperf3 `-u -b 0 -l 64` "
        f"namespace→host for {doc['seconds']} s, datagrams received per second; TCP RR: 20000 one-byte "
        "round trips (bench/tcp_rr); TCP conn/s: 5000 connections in a row, each 64 bytes each way "
        "(bench/tcp_rr connect). CPU is the backend process's utime+stime per GiB moved, RSS its VmHWM "
        "(veth has no process: —). All engines run as root against a namespace held by `unshare --net`; vnetkit then sandboxes itself (nobody, seccomp, no capabilities) unless `--no-sandbox`.",
        "",
        "| engine | " + " | ".join(c[1] for c in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for name, r in rows.items():
        lines.append(f"| {LABELS[name]} | " + " | ".join(cell(r.get(k), f) for k, _, f, _ in COLUMNS) + " |")
    lines += ["", "Ratios vnetkit / engine (throughput and kpps: higher is better; latency, CPU, RSS: lower is better):",
              "", "| engine | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, r in rows.items():
        if name == "vnetkit" or not ref:
            continue
        cells = []
        for k, _, _, _ in COLUMNS:
            a, b = ref.get(k), r.get(k)
            cells.append("—" if a is None or b is None or b == 0 else f"{a / b:.2f}")
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(doc, path):
    plt = plotting.pyplot()
    if plt is None:
        return False
    rows = doc["results"]
    names = list(rows)
    x = list(range(len(names)))
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    panels = [
        (("up_gbps", "ns→host"), ("down_gbps", "host→ns"), "iperf3 TCP Gb/s (median)"),
        (("cpu_up", "ns→host"), ("cpu_down", "host→ns"), "backend CPU-s per GiB"),
        (("udp_kpps", "ns→host"), None, "UDP 64 B, thousand datagrams/s"),
        (("rr_p50_us", "p50"), ("rr_p99_us", "p99"), "TCP request/response µs"),
    ]
    for ax, (a, b, title) in zip(axes, panels):
        width = 0.4 if b else 0.6
        ax.bar([i - (0.2 if b else 0) for i in x], [rows[n].get(a[0]) or 0 for n in names], width, label=a[1])
        if b:
            ax.bar([i + 0.2 for i in x], [rows[n].get(b[0]) or 0 for n in names], width, label=b[1])
        ax.set_xticks(x)
        ax.set_xticklabels([LABELS[n].replace(" (kernel, ceiling)", "") for n in names], rotation=25, fontsize=7,
                           ha="right")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--engines", default="veth,vnetkit,vnetkit-1500,pasta-2026,pasta,slirp4netns-65520")
    ap.add_argument("--name", default="netns_peers", help="results file name (without extension)")
    ap.add_argument("--build", default="build-release", help="build directory with vnetkit and bench/tcp_rr")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/netns_peers: run as root (it creates namespaces and a veth pair)")
    isolation.ensure(uplink=True)  # every engine runs in a namespace with no route off the machine
    vnetkit = os.path.join(args.build, "vnetkit")
    tools = {"tcp_rr": os.path.join(args.build, "bench", "tcp_rr")}
    for exe in [vnetkit, tools["tcp_rr"], "iperf3", "nsenter", "unshare"]:
        if not shutil.which(exe):
            sys.exit(f"bench/netns_peers: {exe} not found (build it, or run scripts/setup)")
    pasta2026 = None
    if {"pasta-2026", "pasta-2026-v6"} & set(args.engines.split(",")):
        pasta2026 = peer_build.build_passt(args.build, "pasta")
        if not pasta2026:
            print("bench/netns_peers: pasta 2026 could not be built from ../shared/peers; left out", flush=True)
    results, raw = {}, {}
    for name in args.engines.split(","):
        if name in ("pasta-2026", "pasta-2026-v6") and not pasta2026:
            continue
        if name not in LABELS:
            sys.exit(f"bench/netns_peers: unknown engine {name}; known: {', '.join(LABELS)}")
        exe = {"pasta": "pasta", "pasta-v6": "pasta", "slirp4netns-65520": "slirp4netns",
               "slirp4netns-1500": "slirp4netns"}.get(name)
        if exe and not shutil.which(exe):
            print(f"bench/netns_peers: {exe} not installed; {name} skipped", flush=True)
            continue
        print(f"bench/netns_peers: {LABELS[name]}: iperf3 {args.runs} × {args.seconds} s each way, UDP, RR ...",
              flush=True)
        ns = Namespace()
        backend = None
        try:
            backend, server = start_engine(name, ns, vnetkit, pasta2026)
            raw[name] = measure(name, ns, backend, server, tools, args.runs, args.seconds)
            results[name] = summary(raw[name])
            s = results[name]
            print(f"  ns→host {s['up_gbps']:.2f} Gb/s, host→ns {s['down_gbps']:.2f} Gb/s, UDP {s['udp_kpps']:.0f} kpps, "
                  f"RR p50 {s['rr_p50_us']:.1f} µs, {s['crr_kps'] or 0:.2f} k conn/s", flush=True)
        except (RuntimeError, AssertionError, subprocess.TimeoutExpired) as e:
            print(f"bench/netns_peers: {name} failed: {str(e)[-800:]}", flush=True)
        finally:
            if backend:
                backend.kill()
            ns.close()
    doc = {"host": f"{platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}", "runs": args.runs,
           "seconds": args.seconds, "results": results, "raw": raw}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, args.name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
    md = markdown(doc)
    with open(os.path.join(args.out, args.name + ".md"), "w") as f:
        f.write(md)
    png = chart(doc, os.path.join(args.out, args.name + ".png"))
    print(md)
    print(f"bench/netns_peers: wrote {args.out}/{args.name}.json, {args.name}.md" +
          (f", {args.name}.png" if png else " (no matplotlib: no PNG)"))


if __name__ == "__main__":
    main()
