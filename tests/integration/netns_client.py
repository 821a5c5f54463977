"""Runs inside the namespace `vnetkit netns` creates (see test_netns.py) and
uses the network the way a program in a container would: the resolver from
/etc/resolv.conf, HTTP through the gateway to servers on the host's
127.0.0.1, ping, iperf3. Prints one "VNK: what key=value..." line per check.

With VNK_FAMILY=6 it does the same over IPv6 once the namespace has its
SLAAC address: the gateway fd00::2 (the host's ::1), `ping -6`, and a DNS
query sent by hand to the DNS address fd00::3.

usage: netns_client.py NAME HTTP_PORT IPERF_PORT|0 SECONDS [UPLOAD_BYTES]
"""
import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time

IPV6 = os.environ.get("VNK_FAMILY") == "6"
GATEWAY = "fd00::2" if IPV6 else "10.0.2.2"
DNS6 = "fd00::3"


def report(what, **kv):
    print("VNK:", what, " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)


def wait_for_slaac():
    for _ in range(100):
        out = subprocess.run(["ip", "-6", "-o", "addr", "show", "scope", "global", "-tentative"],
                             capture_output=True, text=True).stdout
        if "fd00:" in out:
            report("slaac", address=out.split()[3])
            return
        time.sleep(0.1)
    report("slaac", error="no_address")


def ping():
    family = ["-6"] if IPV6 else []
    out = subprocess.run(["busybox", "ping", *family, "-c", "3", "-W", "2", GATEWAY], capture_output=True,
                         text=True).stdout
    received = next((line.split(",")[1].split()[0] for line in out.splitlines() if "received" in line), "0")
    report("ping", received=received)


def dns6(name):
    """An A query over UDP to the DNS address's IPv6 counterpart."""
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        try:
            s.sendto(query, (DNS6, 53))
            answer, peer = s.recvfrom(512)
        except OSError as e:
            report("dns", name=name, error=str(e).replace(" ", "_"))
            return
    ok = answer[:2] == b"\x12\x34" and peer[0] == DNS6
    report("dns", name=name, address=socket.inet_ntoa(answer[-4:]) if ok else "bad_answer")


def dns(name):
    if IPV6:
        return dns6(name)
    try:
        report("dns", name=name, address=socket.gethostbyname(name))
    except OSError as e:
        report("dns", name=name, error=str(e).replace(" ", "_"))


def download(port):
    conn = http.client.HTTPConnection(GATEWAY, port, timeout=60)
    start = time.monotonic()
    conn.request("GET", "/blob")
    r = conn.getresponse()
    h, total = hashlib.sha256(), 0
    while chunk := r.read(1 << 20):
        h.update(chunk)
        total += len(chunk)
    report("download", status=r.status, bytes=total, sha256=h.hexdigest(), seconds=f"{time.monotonic() - start:.3f}")


def upload(port, size):
    body = os.urandom(size)
    conn = http.client.HTTPConnection(GATEWAY, port, timeout=60)
    start = time.monotonic()
    conn.request("POST", "/upload", body=body, headers={"Content-Length": str(size)})
    answer = dict(w.split("=", 1) for w in conn.getresponse().read().decode().split())
    report("upload", bytes=answer["bytes"], sha256=answer["sha256"], sent_sha256=hashlib.sha256(body).hexdigest(),
           seconds=f"{time.monotonic() - start:.3f}")


def iperf(port, seconds):
    for direction, flags in (("up", []), ("down", ["-R"])):
        # iperf3's server takes one test at a time and may still be closing
        # the last one ("the server is busy"): one more try after a pause.
        for attempt in range(2):
            out = subprocess.run(["iperf3", "-c", GATEWAY, "-p", str(port), "-t", str(seconds), "-J", *flags],
                                 capture_output=True, text=True)
            try:
                end = json.loads(out.stdout)["end"]
                report("iperf", direction=direction, mbps=int(end["sum_received"]["bits_per_second"] / 1e6),
                       retransmits=end["sum_sent"].get("retransmits", 0))
                break
            except (ValueError, KeyError):
                try:
                    why = json.loads(out.stdout).get("error", "")
                except ValueError:
                    why = ""
                if attempt == 1:
                    report("iperf", direction=direction,
                           error=(why or out.stderr.strip()).replace(" ", "_")[:200])
                time.sleep(1)


def main():
    name, http_port, iperf_port, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    upload_bytes = int(sys.argv[5]) if len(sys.argv) > 5 else 100 << 20
    if IPV6:
        wait_for_slaac()
    if name != "-":  # "-": transfers only
        ping()
        dns(name)
    download(http_port)
    upload(http_port, upload_bytes)
    if iperf_port:
        iperf(iperf_port, seconds)
    report("done")


if __name__ == "__main__":
    main()
