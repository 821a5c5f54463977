#!/usr/bin/env python3
"""Several guests on one user-mode network (`vnetkit serve --guests 2`),
measured with two User-Mode Linux guests (Linux 6.1, virtio_uml over
vhost-user, MTU 1500) driven from here (the guests' `agent` scenario fetches
each command over HTTP from the host):

  alone        each guest's iperf3 to the host (127.0.0.1 through the
               gateway), up and down, while the other is idle;
  no switch    the same guest on a plain `serve` (one guest, no switch),
               with --no-offload (whole 1500-byte frames, as through the
               switch: what the switch costs) and with offloads (what the
               switch's lack of them costs);
  together     both guests' iperf3 to the host at once: each one's share and
               Jain's fairness index (1.0: equal shares);
  guest→guest  iperf3 between the guests, both ways, through the switch;
  flooded      guest B's iperf3 to the host while guest A sends B UDP as fast
               as it can (iperf3 -u -b 0): B's throughput against B alone
               (a flood must not starve it), and the switch's drops. Both
               guests, vnetkit and the iperf3 servers share this machine's
               CPUs: compare with "both at once", where B also shares them.

Throughput is iperf3's receiver figure, the median of RUNS runs of SECONDS.
vnetkit's CPU-seconds per GiB over the phase is from /proc. Two guests and
vnetkit share this machine's CPUs: the guests' own CPU bounds the figures.

Writes bench/results/NAME.{json,md}. Only loopback traffic and the guests'
own; re-executes itself through scripts/isolated (a namespace with only lo).
"""
import argparse
import http.server
import json
import os
import platform
import queue
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import isolation  # noqa: E402

sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import Serve, Uml, kv  # noqa: E402
from servers import Iperf3Server  # noqa: E402
from proc_stats import GIB, cpu_seconds, med  # noqa: E402


class Control:
    """The guests' command source: GET /next/ADDRESS waits up to 20 s for a
    command queued for that guest (empty body: none yet)."""

    def __init__(self):
        self.queues = {}
        self.lock = threading.Lock()
        ctl = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                who = self.path.rsplit("/", 1)[-1]
                try:
                    body = ctl.queue(who).get(timeout=20).encode()
                except queue.Empty:
                    body = b""
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def queue(self, who):
        with self.lock:
            return self.queues.setdefault(who, queue.Queue())

    def send(self, who, command):
        self.queue(who).put(command)

    def close(self):
        self.server.shutdown()


class Agent:
    """One guest running the agent scenario."""

    def __init__(self, guest, control):
        self.guest, self.control = guest, control
        self.address = kv(guest.wait_for(r"VNK: agent-ready .*", 120).group(0))["address"]
        self.done = 0
        self.start = len(guest.lines)

    def run(self, command):
        """Queues `command`; returns a function that waits for it and gives its VNK lines' key=values."""
        self.control.send(self.address, command + "\n")
        self.done += 1
        n = self.done

        def wait(timeout=300):
            m = self.guest.wait_for(rf"VNK: agent-done n={n} .*", timeout, self.start)
            end = self.guest.lines.index(m.string)
            out = {}
            for line in self.guest.lines[self.start:end]:
                if line.startswith("VNK: r "):
                    out.update(kv(line))
            self.start = end + 1
            return out
        return wait

    def exit(self):
        self.control.send(self.address, "exit\n")


def iperf_cmd(target, port, seconds, reverse=False, udp=False):
    flags = ("-R " if reverse else "") + ("-u -b 0 -l 1400 " if udp else "")
    # The receiver's summary line (TCP and UDP alike): its Mbits/sec figure.
    return (f"iperf3 -c {target} -p {port} -t {seconds} {flags}-f m > /tmp/iperf.out 2>&1; "
            f"echo \"VNK: r mbps=$(grep -E 'receiver$' /tmp/iperf.out | tail -n 1 | "
            f"sed -n 's|.* \\([0-9.]*\\) Mbits/sec.*|\\1|p')\"")


def jain(xs):
    xs = [x for x in xs if x]
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs)) if xs else None


def phase(serve, waits):
    """Runs the waits (started commands) and returns their results and vnetkit's CPU-seconds."""
    cpu0 = cpu_seconds(serve.proc.pid)
    results = [w() for w in waits]
    return results, cpu_seconds(serve.proc.pid) - cpu0


def mbps(r):
    try:
        return float(r.get("mbps", ""))
    except ValueError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--name", default="guests", help="results file name (without extension)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--build", default=None, help="build directory (default: build)")
    args = ap.parse_args()
    isolation.ensure()
    if args.build:
        harness.use_build(args.build)
    control = Control()
    servers = [Iperf3Server.start(), Iperf3Server.start()]
    if not all(servers):
        sys.exit("bench/guests: iperf3 is not installed (scripts/setup installs it)")
    procs = []
    res = {}
    S, R = args.seconds, args.runs
    gib = lambda mb_s, secs: mb_s * 1e6 / 8 * secs / GIB  # noqa: E731
    try:
        # The baselines: one guest, no switch, with the frames the switch
        # carries (whole, 1500 bytes: --no-offload) and with offloads.
        cpu = {}
        for name, extra in (("no_switch", ["--no-offload"]), ("no_switch_offload", [])):
            print(f"bench/guests: one guest without the switch ({name}) ...", flush=True)
            serve = Serve("--net", "user", "--user-mtu", "1500", "--host-only", *extra)
            procs.append(serve)
            g = Uml(serve.sock, "agent", extra=[f"vnk.ctl={control.port}"])
            procs.append(g)
            a = Agent(g, control)
            res[name] = {}
            for d in ("up", "down"):
                runs, secs = [], 0.0
                for _ in range(R):
                    (r,), c = phase(serve, [a.run(iperf_cmd("10.0.2.2", servers[0].port, S, d == "down"))])
                    runs.append(mbps(r))
                    secs += c
                res[name][d] = med(runs)
                cpu[f"{name}_{d}"] = secs / max(1e-9, sum(gib(x or 0, S) for x in runs))
            a.exit()
            g.status(30)
            serve.kill()
            print(f"  {res[name]}", flush=True)

        print("bench/guests: two guests on one switch ...", flush=True)
        serve = Serve("--net", "user", "--user-mtu", "1500", "--host-only", "--guests", "2")
        procs.append(serve)
        guests = [Uml(serve.sock, "agent", extra=[f"vnk.ctl={control.port}"]) for _ in range(2)]
        procs += guests
        agents = sorted((Agent(g, control) for g in guests), key=lambda x: x.address)
        A, B = agents
        for name, ag, srv in (("alone_a", A, servers[0]), ("alone_b", B, servers[1])):
            res[name] = {}
            for d in ("up", "down"):
                runs, secs = [], 0.0
                for _ in range(R):
                    (r,), c = phase(serve, [ag.run(iperf_cmd("10.0.2.2", srv.port, S, d == "down"))])
                    runs.append(mbps(r))
                    secs += c
                res[name][d] = med(runs)
                cpu[f"{name}_{d}"] = secs / max(1e-9, sum(gib(x or 0, S) for x in runs))
        print(f"  alone: A {res['alone_a']}, B {res['alone_b']}", flush=True)
        res["together"] = {}
        for d in ("up", "down"):
            a_runs, b_runs = [], []
            for _ in range(R):
                (ra, rb), _ = phase(serve, [A.run(iperf_cmd("10.0.2.2", servers[0].port, S, d == "down")),
                                            B.run(iperf_cmd("10.0.2.2", servers[1].port, S, d == "down"))])
                a_runs.append(mbps(ra))
                b_runs.append(mbps(rb))
            res["together"][d] = {"a": med(a_runs), "b": med(b_runs), "jain": jain([med(a_runs), med(b_runs)])}
        print(f"  together: {res['together']}", flush=True)
        B.run("iperf3 -s -D -p 5300; sleep 0.5")()
        res["guest_to_guest"] = {}
        for d in ("a_to_b", "b_to_a"):
            runs = []
            for _ in range(R):
                (r,), _ = phase(serve, [A.run(iperf_cmd(B.address, 5300, S, d == "b_to_a"))])
                runs.append(mbps(r))
            res["guest_to_guest"][d] = med(runs)
        print(f"  guest to guest: {res['guest_to_guest']}", flush=True)
        before = serve.metrics()["switch"]
        res["flooded"] = {}
        for d in ("up", "down"):
            b_runs, flood = [], []
            for _ in range(R):
                # A's flood runs a second longer on each side of B's transfer.
                wf = A.run(iperf_cmd(B.address, 5300, S + 2, udp=True))
                time.sleep(1)
                (rb,), _ = phase(serve, [B.run(iperf_cmd("10.0.2.2", servers[1].port, S, d == "down"))])
                b_runs.append(mbps(rb))
                flood.append(mbps(wf()))
            res["flooded"][d] = {"b": med(b_runs), "flood_mbps": med(flood),
                                 "b_vs_alone": (med(b_runs) or 0) / res["alone_b"][d] if res["alone_b"][d] else None}
        after = serve.metrics()["switch"]
        res["flooded"]["switch_drops"] = {k: after[k] - before[k] for k in after if k.startswith("drop_")}
        print(f"  flooded: {res['flooded']}", flush=True)
        res["cpu_s_per_gib"] = cpu
        for ag in agents:
            ag.exit()
        for g in guests:
            g.status(30)
        res["switch"] = serve.metrics()["switch"]
    finally:
        for p in reversed(procs):
            p.kill()
        for s in servers:
            s.kill()
        control.close()
    doc = {"host": f"{platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
           "runs": R, "seconds": S, "results": res}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, args.name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
    md = markdown(doc)
    with open(os.path.join(args.out, args.name + ".md"), "w") as f:
        f.write(md)
    print(md)
    print(f"bench/guests: wrote {args.out}/{args.name}.json, {args.name}.md")


def markdown(doc):
    r = doc["results"]
    f = lambda v: "—" if v is None else f"{v:.0f}"  # noqa: E731
    lines = [
        "# Several guests on one usernet",
        "",
        f"{doc['host']}. Two UML guests (Linux 6.1, virtio_uml over vhost-user, MTU 1500) on "
        f"`vnetkit serve --guests 2`; iperf3 receiver Mb/s, median of {doc['runs']} × {doc['seconds']} s. "
        "Generated by bench/guests.py.",
        "",
        "| case | up Mb/s | down Mb/s |",
        "|---|---:|---:|",
        f"| one guest, no switch, with offloads | {f(r['no_switch_offload']['up'])} | {f(r['no_switch_offload']['down'])} |",
        f"| one guest, no switch, `--no-offload` | {f(r['no_switch']['up'])} | {f(r['no_switch']['down'])} |",
        f"| guest A alone on the switch | {f(r['alone_a']['up'])} | {f(r['alone_a']['down'])} |",
        f"| guest B alone on the switch | {f(r['alone_b']['up'])} | {f(r['alone_b']['down'])} |",
        f"| both at once: A | {f(r['together']['up']['a'])} | {f(r['together']['down']['a'])} |",
        f"| both at once: B | {f(r['together']['up']['b'])} | {f(r['together']['down']['b'])} |",
        f"| B while A floods B with UDP | {f(r['flooded']['up']['b'])} | {f(r['flooded']['down']['b'])} |",
        "",
        f"Jain's fairness index, both at once: up {r['together']['up']['jain']:.3f}, "
        f"down {r['together']['down']['jain']:.3f} (1.0: equal shares).",
        "",
        f"Guest to guest through the switch: A→B {f(r['guest_to_guest']['a_to_b'])} Mb/s, "
        f"B→A {f(r['guest_to_guest']['b_to_a'])} Mb/s.",
        "",
        "Flooded: B keeps "
        + ", ".join(f"{d} {r['flooded'][d]['b_vs_alone']:.2f}×" for d in ("up", "down") if r['flooded'][d]['b_vs_alone'])
        + " of its throughput alone while A's UDP flood to B runs at "
        + ", ".join(f"{f(r['flooded'][d]['flood_mbps'])}" for d in ("up", "down"))
        + " Mb/s (received by B); switch drops meanwhile: "
        + (", ".join(f"{k} {v}" for k, v in r["flooded"]["switch_drops"].items() if v) or "none") + ".",
        "",
        "vnetkit CPU-s per GiB (one guest at a time): "
        + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_s_per_gib"].items()) + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
