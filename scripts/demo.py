#!/usr/bin/env python3
"""The driver behind `vnetkit demo`: boots the User-Mode Linux test guest on
`vnetkit serve --net user` and prints what the guest got.

It starts, all on 127.0.0.1 with ports the kernel picks: a DNS server that
answers demo.vnetkit, an HTTP server with a random blob to download and an
upload endpoint that hashes what it receives, and (when installed) an iperf3
server. The guest reaches them through the gateway address 10.0.2.2, which
usernet maps to the host's loopback, and its resolver 10.0.2.3, which
usernet forwards to the demo's DNS server, and the metadata service at
169.254.169.254 (with IMDSv2 tokens). Nothing leaves this machine.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vnetkit", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--megabytes", type=int, default=100)
    ap.add_argument("--keep-log", action="store_true")
    args = ap.parse_args()

    os.environ["VNETKIT_BUILD_DIR"] = args.build
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
    import harness  # noqa: E402
    from servers import DnsServer, HttpServer, Iperf3Server  # noqa: E402
    harness.VNETKIT = args.vnetkit

    if not (shutil.which("linux.uml") or os.path.exists("/usr/bin/linux.uml")):
        sys.exit("vnetkit demo: User-Mode Linux is not installed (scripts/setup installs it)")

    t_start = time.monotonic()
    steps = 7

    def progress(n, what):
        print(f"[{n}/{steps}] {what} ({time.monotonic() - t_start:.1f} s)", flush=True)

    progress(1, "starting the demo's DNS, HTTP and iperf3 servers on 127.0.0.1")
    dns = DnsServer({"demo.vnetkit": "192.0.2.80"})
    web = HttpServer(args.megabytes << 20)
    iperf = Iperf3Server.start()
    serve = guest = None
    scratch = tempfile.mkdtemp(prefix="vnk-demo-")
    try:
        progress(2, "starting vnetkit serve --net user")
        mmds_doc = os.path.join(scratch, "metadata.json")
        with open(mmds_doc, "w") as f:
            json.dump({"latest": {"meta-data": {"instance-id": "i-vnetkit-demo", "hostname": "demo"}}}, f)
        serve = harness.Serve("--net", "user", "--dns-upstream", f"127.0.0.1:{dns.port}",
                              "--mmds", mmds_doc, "--mmds-require-token")
        extra = ["vnk.name=demo.vnetkit", f"vnk.http={web.port}", f"vnk.seconds={args.seconds}", "vnk.mmds=1"]
        if iperf:
            extra.append(f"vnk.iperf={iperf.port}")
        progress(3, "booting the User-Mode Linux guest")
        guest = harness.Uml(serve.sock, "net", mem="512M", extra=extra)
        lease = harness.kv(guest.wait_for(r"VNK: lease event=bound .*", 60).group(0))
        lease_time = harness.kv(guest.wait_for(r"VNK: lease-time .*", 10).group(0))
        progress(4, f"lease {lease['ip']}; ping and DNS")
        ping = harness.kv(guest.wait_for(r"VNK: ping.*", 30).group(0))
        dns_line = harness.kv(guest.wait_for(r"VNK: dns.*", 30).group(0))
        mmds = harness.kv(guest.wait_for(r"VNK: mmds.*", 30).group(0))
        progress(5, f"downloading and uploading {args.megabytes} MiB over HTTP")
        down = harness.kv(guest.wait_for(r"VNK: download.*", 300).group(0))
        up = harness.kv(guest.wait_for(r"VNK: upload.*", 300).group(0))
        iperf_up = iperf_down = {}
        if iperf:
            progress(6, f"iperf3, {args.seconds} s each way")
            iperf_up = harness.kv(guest.wait_for(r"VNK: iperf[- ]up.*", 60 + args.seconds).group(0))
            iperf_down = harness.kv(guest.wait_for(r"VNK: iperf[- ]down.*", 60 + args.seconds).group(0))
        status = guest.status(60)
        progress(7, "guest finished; collecting counters")
        metrics = serve.metrics()
    except AssertionError as e:
        print(f"vnetkit demo: the guest did not get through: {e}", file=sys.stderr)
        if guest:
            print("\n".join(guest.lines[-40:]), file=sys.stderr)
        return 1
    finally:
        if guest:
            guest.kill()
        if args.keep_log:
            for p, name in ((guest, "guest"), (serve, "serve")):
                if p:
                    path = f"/tmp/vnetkit-demo-{name}.log"
                    with open(path, "w") as f:
                        f.write("\n".join(p.lines) + "\n")
                    print(f"log: {path}")
        if serve:
            serve.stop() if serve.alive() else None
            serve.cleanup()
        if iperf:
            iperf.kill()
        web.close()
        dns.close()
        shutil.rmtree(scratch, ignore_errors=True)

    def rate(d, size):
        try:
            secs = float(d["end"]) - float(d["start"])
            return f"{size / secs * 8 / 1e9:.2f} Gb/s ({secs:.2f} s of guest time)" if secs > 0 else "(too fast to time)"
        except (KeyError, ValueError):
            return "failed"

    size = args.megabytes << 20
    down_ok = down.get("sha256") == web.sha256 and down.get("bytes") == str(size)
    up_ok = up.get("sha256") == web.sha256 and up.get("bytes") == str(size)
    b = metrics.get("backend", {})
    print()
    print("vnetkit demo: User-Mode Linux guest on `vnetkit serve --net user`")
    print(f"  lease         {lease['ip']}/{lease['subnet']}, router {lease['router']}, DNS {lease['dns']}, "
          f"MTU {lease['mtu']}, {lease['lease']} s; took "
          f"{float(lease_time['end']) - float(lease_time['start']):.2f} s")
    if "rtt-avg" in ping:
        print(f"  gateway RTT   {ping['rtt-avg']} ms average (min {ping['rtt-min']}, max {ping['rtt-max']}; 5 pings)")
    else:
        print("  gateway RTT   ping failed (are ping sockets allowed? see net.ipv4.ping_group_range)")
    print(f"  DNS           demo.vnetkit -> {dns_line.get('address', 'no answer')} "
          f"(asked {lease['dns']}, answered by the demo's server on 127.0.0.1:{dns.port})")
    print(f"  download      {args.megabytes} MiB, {rate(down, size)}, sha256 {'matches' if down_ok else 'DIFFERS'}")
    print(f"  upload        {args.megabytes} MiB, {rate(up, size)}, sha256 {'matches' if up_ok else 'DIFFERS'}")
    if iperf:
        print(f"  iperf3        guest->host {iperf_up.get('mbps', '?')} Mb/s, host->guest {iperf_down.get('mbps', '?')} Mb/s")
    else:
        print("  iperf3        not installed (scripts/setup installs it)")
    print(f"  MMDS          instance-id = {mmds.get('instance-id', 'no answer')} (GET with an IMDSv2 token of "
          f"{mmds.get('token-length', '?')} characters from PUT /latest/api/token)")
    print(f"  counters      {b.get('frames_from_guest', 0)} frames from the guest, {b.get('frames_to_guest', 0)} to it; "
          f"{b.get('tcp_flows_opened', 0)} TCP flows, {b.get('tcp_retransmits', 0)} retransmits, "
          f"{sum(v for k, v in b.items() if k.startswith('drop_'))} drops")
    ok = status == 0 and mmds.get("instance-id") == "i-vnetkit-demo" and down_ok and up_ok and "rtt-avg" in ping and dns_line.get("address") == "192.0.2.80"
    print(f"  result        {'all checks passed' if ok else 'SOME CHECKS FAILED'} in {time.monotonic() - t_start:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
