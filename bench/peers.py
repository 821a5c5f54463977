#!/usr/bin/env python3
"""vnetkit's user-mode network beside its peers, in one invocation.

The same QEMU guest (Debian cloud kernel, the test initramfs, 1 vCPU, 256 MiB,
the same accelerator) boots with each network backend in turn:
  1. vnetkit: `vnetkit serve --net user`, attached over vhost-user;
  2. libslirp: QEMU's own `-netdev user`;
  3. passt: Debian's passt, attached with `-netdev stream` on a Unix socket;
  4. passt upstream 2026-07 (built from ../shared/peers) in vhost-user mode,
     the same QEMU command line as vnetkit's;
  5. vnetkit-stream and passt-2026-stream: `vnetkit serve --stream` and
     passt 2026 on QEMU's `-netdev stream`, the attachment without vhost-user
     (plain frames, no offloads), beside Debian's passt row; vnetkit-dgram:
     `vnetkit serve --dgram` on QEMU's `-netdev dgram` (--no-sandbox, so the
     answers reach QEMU's socket without changing its permissions);
and the User-Mode Linux guest with vnetkit (at MTU 65520 and, as
`vnetkit-uml-1500`, at MTU 1500; as `vnetkit-uml-no-offload`, without
GUEST_CSUM/GUEST_TSO4 offered). In each, the
guest takes a DHCP lease, pings the gateway 10 times, then runs iperf3 to an
iperf3 server on the host's 127.0.0.1 (reached through the gateway address,
which every backend maps to host loopback) RUNS times each way.

Reported per backend: lease time and ping RTT (guest clock), iperf3 medians
both ways, the backend process's CPU-seconds per GiB moved (utime+stime from
/proc/PID/stat sampled around each transfer) and its peak RSS (VmHWM).
libslirp runs inside QEMU, so its cost cannot be told apart from the
emulated guest's: those cells say so. Under TCG the emulated CPU limits the
QEMU rows' throughput; the cost columns and the UML row show the backends.

Writes bench/results/peers.{json,md} and, when matplotlib is installed,
peers.png. Only loopback traffic.

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
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import isolation  # noqa: E402
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import Process, Qemu, Serve, Uml, kv  # noqa: E402
from servers import Iperf3Server  # noqa: E402
from proc_stats import GIB, cpu_seconds, med, peak_rss_mib  # noqa: E402
import plotting  # noqa: E402
import peer_build  # noqa: E402

MAC = "02:00:00:00:be:0d"


def drive(guest, backend_pid, runs, seconds):
    """Reads the guest's peer scenario; returns the measurements."""
    out = {"iperf": {"up": [], "down": []}, "cpu_per_gib": {"up": [], "down": []}}
    lt = kv(guest.wait_for(r"VNK: lease-time .*", 180).group(0))
    out["lease_s"] = float(lt["end"]) - float(lt["start"])
    ping = kv(guest.wait_for(r"VNK: ping.*", 60).group(0))
    out["rtt_ms"] = float(ping["rtt-avg"]) if "rtt-avg" in ping else None
    start = 0
    for _ in range(runs * 2):
        m = guest.wait_for(r"VNK: iperf-start .*", 120, start)
        start = guest.lines.index(m.string) + 1
        cpu0 = cpu_seconds(backend_pid) if backend_pid else None
        r = guest.wait_for(r"VNK: iperf-result .*", seconds + 120, start)
        start = guest.lines.index(r.string) + 1
        cpu1 = cpu_seconds(backend_pid) if backend_pid else None
        res = kv(r.group(0))
        d = res["dir"]
        if "mbps" not in res:
            continue
        out["iperf"][d].append(float(res["mbps"]))
        moved = float(res["mbytes"]) * (1 << 20)
        if backend_pid and moved > 0:
            out["cpu_per_gib"][d].append((cpu1 - cpu0) / (moved / GIB))
    guest.status(60)
    out["peak_rss_mib"] = peak_rss_mib(backend_pid) if backend_pid else None
    return out


def run_backend(name, iperf_port, runs, seconds, workdir, passt2026=None):
    cmdline = [f"vnk.iperf={iperf_port}", f"vnk.runs={runs}", f"vnk.seconds={seconds}"]
    procs = []
    try:
        if name in ("vnetkit", "vnetkit-uml", "vnetkit-uml-no-offload", "vnetkit-uml-1500"):
            extra = ["--no-offload"] if name.endswith("no-offload") else []
            if name.endswith("-1500"):
                extra += ["--user-mtu", "1500"]
            serve = Serve("--net", "user", "--mac", MAC, "--host-only", *extra)
            procs.append(serve)
            if name == "vnetkit":
                guest = Qemu(serve.sock, "peer", MAC, mtu=65520, cmdline=cmdline)
            else:
                guest = Uml(serve.sock, "peer", extra=cmdline)
            pid = serve.proc.pid
        elif name == "vnetkit-stream":
            # The same usernet over QEMU's -netdev stream (plain frames, no
            # offloads), as passt's row is attached.
            serve = Serve("--net", "user", "--host-only", attach="--stream")
            procs.append(serve)
            guest = Qemu(None, "peer", MAC, cmdline=cmdline,
                         netdev=f"stream,id=n0,server=off,addr.type=unix,addr.path={serve.sock}")
            pid = serve.proc.pid
        elif name == "vnetkit-dgram":
            # QEMU's -netdev dgram: one frame per datagram between two unixgram paths.
            serve = Serve("--net", "user", "--host-only", "--no-sandbox", attach="--dgram")
            procs.append(serve)
            qemu_side = os.path.join(serve.dir, "qemu.sock")
            guest = Qemu(None, "peer", MAC, cmdline=cmdline,
                         netdev=f"dgram,id=n0,local.type=unix,local.path={qemu_side},remote.type=unix,remote.path={serve.sock}")
            pid = serve.proc.pid
        elif name == "passt-2026-stream":
            sock = f"/tmp/vnk-peers-passt2026-{os.getpid()}.sock"
            passt = Process([passt2026, "-f", "-s", sock], "passt 2026")
            procs.append(passt)
            passt.wait_for(r"You can (now )?start qemu", 10)
            guest = Qemu(None, "peer", MAC, cmdline=cmdline,
                         netdev=f"stream,id=n0,server=off,addr.type=unix,addr.path={sock}")
            pid = passt.proc.pid
        elif name == "slirp":
            guest = Qemu(None, "peer", MAC, cmdline=cmdline, netdev="user,id=n0")
            pid = None
        elif name == "passt-2026-vhost-user":
            # passt upstream 2026-07 (built from ../shared/peers) in its
            # vhost-user mode: the same QEMU command line as vnetkit's row.
            sock = os.path.join(workdir, "passt-vu.sock")
            passt = Process([passt2026, "-f", "--vhost-user", "-s", sock], "passt 2026 vhost-user")
            procs.append(passt)
            passt.wait_for(r"You can (now )?start qemu", 10)
            guest = Qemu(sock, "peer", MAC, mtu=65520, cmdline=cmdline)
            pid = passt.proc.pid
        elif name == "passt":
            # passt drops root for nobody: its socket must not sit in our
            # private (0700) work directory, or the guest's DHCP gets no answer.
            sock = f"/tmp/vnk-peers-passt-{os.getpid()}.sock"
            passt = Process(["passt", "-f", "-s", sock], "passt")
            procs.append(passt)
            # The socket file appears before passt accepts on it; QEMU must
            # not connect earlier (its NIC would then have no backend).
            passt.wait_for(r"You can now start qemu", 10)
            guest = Qemu(None, "peer", MAC, cmdline=cmdline,
                         netdev=f"stream,id=n0,server=off,addr.type=unix,addr.path={sock}")
            pid = passt.proc.pid
        procs.append(guest)
        return drive(guest, pid, runs, seconds)
    finally:
        for p in reversed(procs):
            p.kill()
        for stale in (f"/tmp/vnk-peers-passt-{os.getpid()}.sock", f"/tmp/vnk-peers-passt2026-{os.getpid()}.sock"):
            if os.path.exists(stale):
                os.unlink(stale)


def markdown(doc):
    rows = doc["results"]
    ref = rows.get("vnetkit", {})

    def fmt(v, spec):
        return "—" if v is None else format(v, spec)

    def ratio(key, peer, mine=None):
        a, b = (mine or ref).get(key), rows[peer].get(key)
        return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"

    lines = [
        "# usernet beside its peers",
        "",
        f"{doc['host']}. QEMU {doc['qemu']} under `-accel {doc['accel']}`, 1 vCPU, 256 MiB, Debian cloud kernel; "
        f"iperf3 {doc['runs']} × {doc['seconds']} s each way to 127.0.0.1 through the gateway address; medians. "
        "CPU is the backend process's utime+stime per GiB moved; RSS its VmHWM. "
        "libslirp runs inside QEMU, so its cost is not separable (—). An RTT of — means the guest's pings "
        "got no answer: Debian's 2023 passt sends pings for the gateway out through the default route, which "
        "here (scripts/isolated --uplink) leads nowhere.",
        "",
        "| backend | guest→host Mb/s | host→guest Mb/s | gateway RTT ms | lease s | CPU-s/GiB up | CPU-s/GiB down | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(f"| {doc['labels'][name]} | {fmt(r.get('up_mbps'), '.0f')} | {fmt(r.get('down_mbps'), '.0f')} | "
                     f"{fmt(r.get('rtt_ms'), '.3f')} | {fmt(r.get('lease_s'), '.2f')} | {fmt(r.get('cpu_up'), '.2f')} | "
                     f"{fmt(r.get('cpu_down'), '.2f')} | {fmt(r.get('rss'), '.1f')} |")
    lines += ["", "Ratios vnetkit (QEMU) / peer (throughput: higher is better; RTT, lease, CPU, RSS: lower is better):", "",
              "| peer | up | down | RTT | lease | CPU up | CPU down | RSS |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for peer in ("slirp", "passt", "passt-2026-vhost-user"):
        if peer in rows:
            lines.append(f"| {doc['labels'][peer]} | {ratio('up_mbps', peer)} | {ratio('down_mbps', peer)} | "
                         f"{ratio('rtt_ms', peer)} | {ratio('lease_s', peer)} | {ratio('cpu_up', peer)} | "
                         f"{ratio('cpu_down', peer)} | {ratio('rss', peer)} |")
    # The same attachment on both sides: -netdev stream, plain frames.
    stream = rows.get("vnetkit-stream")
    peers = [p for p in ("passt", "passt-2026-stream") if p in rows]
    if stream and peers:
        lines += ["", "Ratios vnetkit (QEMU -netdev stream) / peer on -netdev stream:", "",
                  "| peer | up | down | RTT | lease | CPU up | CPU down | RSS |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for peer in peers:
            lines.append(f"| {doc['labels'][peer]} | " + " | ".join(
                ratio(k, peer, stream) for k in ("up_mbps", "down_mbps", "rtt_ms", "lease_s", "cpu_up", "cpu_down", "rss"))
                + " |")
    return "\n".join(lines) + "\n"


def chart(doc, path):
    plt = plotting.pyplot()
    if plt is None:
        return False
    rows = doc["results"]
    names = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (key, title) in zip(axes, (("up", "iperf3 Mb/s (median)"), ("cpu", "backend CPU-s per GiB"))):
        a = [rows[n].get("up_mbps" if key == "up" else "cpu_up") or 0 for n in names]
        b = [rows[n].get("down_mbps" if key == "up" else "cpu_down") or 0 for n in names]
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], a, 0.4, label="guest→host")
        ax.bar([i + 0.2 for i in x], b, 0.4, label="host→guest")
        ax.set_xticks(list(x))
        ax.set_xticklabels([doc["labels"][n] for n in names], rotation=15, fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--name", default="peers", help="results file name (without extension)")
    ap.add_argument("--backends", default="vnetkit,passt-2026-vhost-user,slirp,passt,vnetkit-uml,vnetkit-uml-1500")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--build", default=None, help="build directory (default: build)")
    args = ap.parse_args()
    isolation.ensure(uplink=True)  # every engine runs in a namespace with no route off the machine
    if args.build:
        harness.use_build(args.build)

    labels = {"vnetkit": "vnetkit (QEMU, vhost-user)", "slirp": "libslirp (QEMU -netdev user)",
              "passt": "passt (QEMU -netdev stream)", "vnetkit-uml": "vnetkit (UML)",
              "vnetkit-uml-no-offload": "vnetkit (UML, --no-offload)", "vnetkit-uml-1500": "vnetkit (UML, MTU 1500)",
              "passt-2026-vhost-user": "passt 2026-07 (QEMU, vhost-user)",
              "vnetkit-stream": "vnetkit (QEMU -netdev stream)", "vnetkit-dgram": "vnetkit (QEMU -netdev dgram)", "passt-2026-stream": "passt 2026-07 (QEMU -netdev stream)"}
    iperf = Iperf3Server.start()
    if not iperf:
        sys.exit("bench/peers: iperf3 is not installed (scripts/setup installs it)")
    workdir = tempfile.mkdtemp(prefix="vnk-peers-")
    results = {}
    try:
        passt2026 = None
        if {"passt-2026-vhost-user", "passt-2026-stream"} & set(args.backends.split(",")):
            passt2026 = peer_build.build_passt(args.build or harness.BUILD, "passt")
        for name in args.backends.split(","):
            if name in ("passt-2026-vhost-user", "passt-2026-stream") and not passt2026:
                print("bench/peers: passt 2026 could not be built from ../shared/peers; left out", flush=True)
                continue
            if name == "passt" and not shutil.which("passt"):
                print("bench/peers: passt not installed; skipped", flush=True)
                continue
            print(f"bench/peers: {labels[name]}: {args.runs} × {args.seconds} s each way ...", flush=True)
            try:
                r = run_backend(name, iperf.port, args.runs, args.seconds, workdir, passt2026)
            except AssertionError as e:
                print(f"bench/peers: {name} failed: {str(e)[-1500:]}", flush=True)
                continue
            results[name] = {"up_mbps": med(r["iperf"]["up"]), "down_mbps": med(r["iperf"]["down"]),
                             "rtt_ms": r["rtt_ms"], "lease_s": r["lease_s"],
                             "cpu_up": med(r["cpu_per_gib"]["up"]), "cpu_down": med(r["cpu_per_gib"]["down"]),
                             "rss": r["peak_rss_mib"], "raw": r}
            print(f"  up {results[name]['up_mbps']} Mb/s, down {results[name]['down_mbps']} Mb/s, "
                  f"rtt {r['rtt_ms']} ms, lease {r['lease_s']:.2f} s", flush=True)
    finally:
        iperf.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    doc = {"host": f"{platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
           "qemu": qemu.replace("QEMU emulator version ", ""), "accel": os.environ.get("VNETKIT_QEMU_ACCEL", "tcg"),
           "runs": args.runs, "seconds": args.seconds, "labels": labels, "results": results}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, args.name + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
    md = markdown(doc)
    with open(os.path.join(args.out, args.name + ".md"), "w") as f:
        f.write(md)
    png = chart(doc, os.path.join(args.out, args.name + ".png"))
    print(md)
    print(f"bench/peers: wrote {args.out}/{args.name}.json, {args.name}.md" +
          (f", {args.name}.png" if png else " (no matplotlib: no PNG)"))


if __name__ == "__main__":
    main()
