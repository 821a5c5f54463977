"""Runs inside the namespace `vnetkit netns` creates, in the Linux 6.1 test
guest (linux61_guest.py faults): degrades the namespace's link with netem
and moves data through vnetkit across it, one phase after another. Prints
one "VNK: what key=value..." line per transfer.

The link is the namespace's TAP device, tap0. netem on its root qdisc acts
on the frames the namespace sends (toward vnetkit: an upload's data, a
download's ACKs); the frames vnetkit sends into the namespace are sent
through an ifb device first (ingress -> mirred -> ifb0) whose own netem acts
on them (a download's data, an upload's ACKs).

usage: fault_client.py HTTP_PORT SMALL_HTTP_PORT SIZE SMALL_SIZE RUNS
"""
import hashlib
import socket
import subprocess
import sys
import time

from netns_client import GATEWAY, download, report, upload


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)


def both_ways(netem):
    """`netem` (tc's words) on tap0's egress and, through ifb0, its ingress."""
    sh(f"tc qdisc replace dev tap0 root netem {netem}")
    sh(f"tc qdisc replace dev ifb0 root netem {netem}")


def clear():
    sh("tc qdisc del dev tap0 root 2>/dev/null || true; tc qdisc del dev ifb0 root 2>/dev/null || true")


def zero_window(port, size, pause):
    """A reader that stops reading: its 64 KiB receive buffer fills, its
    window shuts for `pause` seconds, then it reads everything."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    s.settimeout(60)
    s.connect((GATEWAY, port))
    s.sendall(b"GET /blob HTTP/1.0\r\n\r\n")
    time.sleep(pause)
    start = time.monotonic()
    data = bytearray()
    while chunk := s.recv(1 << 20):
        data += chunk
    s.close()
    body = bytes(data[data.index(b"\r\n\r\n") + 4:])
    report("zero-window", bytes=len(body), sha256=hashlib.sha256(body).hexdigest(), pause=pause,
           seconds=f"{time.monotonic() - start:.3f}")


def main():
    port, small_port, size, small_size, runs = (int(a) for a in sys.argv[1:6])
    sh("ip link add ifb0 type ifb && ip link set ifb0 up")
    sh("tc qdisc add dev tap0 handle ffff: ingress")
    sh("tc filter add dev tap0 parent ffff: matchall action mirred egress redirect dev ifb0")
    # 1 % loss and 10 % reordering both ways.
    both_ways("loss 1% reorder 10% delay 1ms")
    for run in range(runs):
        report("phase", name="loss-reorder", run=run)
        download(port)
        upload(port, size)
    # Duplicated frames both ways (and a little reordering, so duplicates
    # also arrive late).
    both_ways("duplicate 5% reorder 5% delay 1ms")
    report("phase", name="duplicate", run=0)
    download(port)
    upload(port, size)
    clear()
    report("phase", name="zero-window", run=0)
    zero_window(small_port, small_size, 3)
    report("fault-client", done=1)


if __name__ == "__main__":
    main()
