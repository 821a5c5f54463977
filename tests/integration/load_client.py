"""Load from inside the namespace `vnetkit netns` serves (see test_load.py):
many connections, floods. Prints "VNK: what key=value..." lines.

usage: load_client.py echo HOST PORT COUNT HOLD_SECONDS
         COUNT connections at once, each sends 100 bytes of its own and
         checks the echo; all are held HOLD_SECONDS, then reset.
       load_client.py synflood HOST PORT COUNT
         COUNT SYNs from random ports (a raw socket: no connection behind
         them, so this namespace's kernel resets each SYN-ACK).
       load_client.py udpflood HOST FIRST_PORT COUNT
         one datagram to each of COUNT ports from one socket, about
         40,000 a second.
"""
import errno
import os
import random
import resource
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inet_checksum import inet_checksum  # noqa: E402


def report(what, **kv):
    print("VNK:", what, " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)


def echo(host, port, count, hold):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    report("load-start", count=count)
    time.sleep(1)
    start = time.monotonic()
    poller = select.epoll()
    socks, want, got = {}, {}, {}
    failed = 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if s.connect_ex((host, port)) not in (0, errno.EINPROGRESS):
            failed += 1
            s.close()
            continue
        socks[s.fileno()] = s
        want[s.fileno()] = struct.pack("!I", i) * 25  # 100 bytes, its own
        got[s.fileno()] = b""
        poller.register(s.fileno(), select.EPOLLOUT)
    connected = echoed = wrong = 0
    deadline = time.monotonic() + 120
    pending = set(socks)
    while pending and time.monotonic() < deadline:
        for fd, ev in poller.poll(0.5):
            s = socks[fd]
            if ev & select.EPOLLOUT:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    failed += 1
                    pending.discard(fd)
                    poller.unregister(fd)
                    continue
                connected += 1
                s.send(want[fd])
                poller.modify(fd, select.EPOLLIN)
            elif ev & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                got[fd] += data
                if not data or len(got[fd]) >= 100:
                    if got[fd] == want[fd]:
                        echoed += 1
                    else:
                        wrong += 1
                    pending.discard(fd)
                    poller.unregister(fd)
    report("echo", connected=connected, echoed=echoed, wrong=wrong, failed=failed, unfinished=len(pending),
           seconds=f"{time.monotonic() - start:.2f}")
    time.sleep(hold)
    for s in socks.values():
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def synflood(host, port, count):
    """TCP SYNs with random source ports and sequence numbers, sent through
    a raw socket (the kernel writes the IP header)."""
    src = socket.inet_aton(_local_address(host))
    dst = socket.inet_aton(host)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    rng = random.Random(os.getpid())
    start = time.monotonic()
    sent = 0
    for _ in range(count):
        sport = rng.randrange(20000, 65000)
        header = struct.pack("!HHIIBBHHH", sport, port, rng.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
        pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
        header = header[:16] + struct.pack("!H", inet_checksum(pseudo + header)) + header[18:]
        try:
            raw.sendto(header, (host, 0))
            sent += 1
        except OSError as e:
            if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                raise
            time.sleep(0.001)
    report("synflood", port=port, sent=sent, seconds=f"{time.monotonic() - start:.2f}")


def _local_address(host):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect((host, 9))
    address = probe.getsockname()[0]
    probe.close()
    return address


def udpflood(host, first, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic()
    sent = 0
    for port in range(first, first + count):
        if sent % 200 == 199:
            time.sleep(0.005)  # about 40,000 a second: a flood the TAP's queue (1000 frames) can carry
        try:
            s.sendto(b"flood", (host, port))
            sent += 1
        except OSError as e:
            if e.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.ECONNREFUSED):
                raise
            time.sleep(0.001)
    report("udpflood", sent=sent, seconds=f"{time.monotonic() - start:.2f}")


def main():
    what, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if what == "echo":
        echo(host, port, count, float(sys.argv[5]))
    elif what == "synflood":
        synflood(host, port, count)
    elif what == "udpflood":
        udpflood(host, port, count)
    else:
        sys.exit(f"unknown load: {what}")


if __name__ == "__main__":
    main()
