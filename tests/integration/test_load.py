"""`vnetkit netns` under load from inside the namespace: 10,000 TCP
connections at once, each echoing its own bytes through a server on the
host's 127.0.0.1 (vnetkit's memory per flow and peak RSS measured); a SYN
flood to a closed port and to a silent one while an established connection
keeps echoing; a UDP flood across 8,000 destinations while a UDP port
forward keeps working. Traffic stays on 127.0.0.1 and in the namespace.
"""
import os
import resource
import select
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import kv  # noqa: E402
from servers import free_port  # noqa: E402
from test_netns import PYTHON, Netns  # noqa: E402

LOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load_client.py")
# Open files for vnetkit, the namespace's command and this test's servers
# (each its own process): the hard limit, which 10,000 flows need to be
# above by a margin.
NEEDED_NOFILE = 12000


def raise_nofile():
    """Raises the soft RLIMIT_NOFILE to the hard one; returns it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def proc_status(pid):
    """VmRSS and VmHWM of `pid`, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def tcp_kernel_pages():
    """Pages the kernel holds for TCP socket buffers in this network namespace."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                words = line.split()
                return int(words[words.index("mem") + 1])
    return 0


class EchoServer:
    """TCP echo on 127.0.0.1 for many connections at once (one epoll thread)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        poller = select.epoll()
        poller.register(self.sock.fileno(), select.EPOLLIN)
        conns = {}
        while not self.stop:
            for fd, _ in poller.poll(0.2):
                if fd == self.sock.fileno():
                    while True:
                        try:
                            c, _ = self.sock.accept()
                        except (BlockingIOError, OSError):
                            break
                        c.setblocking(False)
                        conns[c.fileno()] = c
                        poller.register(c.fileno(), select.EPOLLIN)
                    continue
                c = conns.get(fd)
                try:
                    data = c.recv(65536)
                except OSError:
                    data = b""
                if data:
                    try:
                        c.sendall(data)
                        continue
                    except OSError:
                        pass
                poller.unregister(fd)
                conns.pop(fd).close()
        for c in conns.values():
            c.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


@unittest.skipUnless(os.path.exists("/dev/net/tun"), "no /dev/net/tun on this machine")
class LoadTest(unittest.TestCase):
    def setUp(self):
        self.nofile = raise_nofile()
        if self.nofile < NEEDED_NOFILE:
            self.skipTest(f"the hard RLIMIT_NOFILE here is {self.nofile}, below {NEEDED_NOFILE}")

    def netns(self, *args):
        n = Netns("--dns-upstream", "127.0.0.1:1", *args,
                  prefix=("prlimit", f"--nofile={self.nofile}:{self.nofile}"))
        self.addCleanup(n.cleanup)
        return n

    def test_ten_thousand_connections_echo_and_memory_per_flow_is_measured(self):
        echo = EchoServer()
        self.addCleanup(echo.close)
        count = 10000
        n = self.netns("--", PYTHON, LOAD, "echo", "10.0.2.2", str(echo.port), str(count), "3")
        n.wait_for(r"VNK: load-start .*", 30)
        base, base_pages = proc_status(n.proc.pid), tcp_kernel_pages()
        got = kv(n.wait_for(r"VNK: echo .*", 200).group(0))
        live, live_pages = proc_status(n.proc.pid), tcp_kernel_pages()
        flows = n.metrics()["backend"]
        self.assertEqual(n.wait(60), 0, n.tail())
        per_flow = (live["VmRSS"] - base["VmRSS"]) * 1024 / count
        kernel_per_flow = (live_pages - base_pages) * 4096 / count
        print(f"{count} echoing connections: {got}; vnetkit RSS {base['VmRSS']} KiB idle, {live['VmRSS']} KiB with "
              f"them open ({per_flow:.0f} B per flow), peak {live['VmHWM']} KiB; kernel TCP buffers "
              f"{kernel_per_flow:.0f} B per flow (both ends of the host sockets)", flush=True)
        self.assertEqual((int(got["echoed"]), int(got["wrong"])), (count, 0), n.tail())
        self.assertEqual(flows["flows_refused_fd_limit"], 0)
        self.assertEqual(flows["tcp_timeouts"], 0)
        self.assertLess(per_flow, 16 << 10, "user-space memory per flow")
        self.assertLess(live["VmHWM"], 256 << 10, "peak RSS under 256 MiB")

    def test_a_syn_flood_to_closed_and_silent_ports_leaves_other_flows_alone(self):
        echo = EchoServer()
        self.addCleanup(echo.close)
        closed = free_port()
        # A listener that never accepts, its queue full: the kernel drops
        # further SYNs, so connects to it neither complete nor fail.
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        filler = socket.create_connection(silent.getsockname())
        self.addCleanup(filler.close)
        count = 20000
        script = (f"{PYTHON} -c \"import socket,time,sys; s=socket.create_connection(('10.0.2.2',{echo.port})); "
                  f"s.settimeout(5); print('VNK: bystander up', flush=True); time.sleep(1)\n"
                  f"import subprocess\n"
                  f"for port in ({closed}, {silent.getsockname()[1]}):\n"
                  f"  subprocess.run([sys.executable, '{LOAD}', 'synflood', '10.0.2.2', str(port), '{count}'])\n"
                  f"  t=time.monotonic(); s.sendall(b'still-there'); ok=s.recv(100)==b'still-there'\n"
                  f"  print('VNK: bystander port=%d ok=%d ms=%d' % (port, ok, (time.monotonic()-t)*1000), flush=True)\n"
                  f"c=socket.create_connection(('10.0.2.2',{echo.port}), timeout=5); c.sendall(b'new'); "
                  f"print('VNK: newcomer ok=%d' % (c.recv(10)==b'new'), flush=True); time.sleep(2)\"")
        n = self.netns("--", "sh", "-c", script)
        n.wait_for(r"VNK: bystander up", 30)
        base = proc_status(n.proc.pid)
        results = [kv(n.wait_for(rf"VNK: bystander port={p} .*", 120).group(0))
                   for p in (closed, silent.getsockname()[1])]
        during = proc_status(n.proc.pid)
        m = n.metrics()["backend"]
        newcomer = kv(n.wait_for(r"VNK: newcomer .*", 30).group(0))
        peak = proc_status(n.proc.pid)["VmHWM"]
        self.assertEqual(n.wait(60), 0, n.tail())
        floods = [kv(x.group(0)) for x in (n.wait_for(r"VNK: synflood port=%d .*" % p, 1)
                                           for p in (closed, silent.getsockname()[1]))]
        print(f"SYN floods {floods}; bystander {results}; newcomer {newcomer}; vnetkit RSS {base['VmRSS']} -> "
              f"{during['VmRSS']} KiB, peak {peak} KiB; segments seen {m['tcp_segments_from_guest']}, flows opened {m['tcp_flows_opened']}, refused "
              f"{m['tcp_connect_refused']}, still connecting at the end {m.get('tcp_flows_opened', 0) - m['tcp_flows_closed']}, "
              f"refused for open files {m['flows_refused_fd_limit']}, table full {m['tcp_table_full']}", flush=True)
        for r in results:
            self.assertEqual(r["ok"], "1", n.tail())
            self.assertLess(int(r["ms"]), 1000, "the established flow answers within a second")
        self.assertEqual(newcomer["ok"], "1", n.tail())
        # The TAP's queue drops part of a flood that fast; of what reached
        # vnetkit, the closed port's SYNs were refused at once.
        self.assertGreater(m["tcp_connect_refused"], 1000, m)
        self.assertLess(peak, 256 << 10, "peak RSS under 256 MiB")

    def test_a_udp_flood_evicts_old_flows_but_never_a_forward(self):
        host_port = free_port(socket.SOCK_DGRAM)
        count = 8000
        # A UDP echo server in the namespace (gone after 30 s idle, and
        # killed when the flood is over), the forward's target.
        script = (f"{PYTHON} -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                  f"s.bind(('0.0.0.0', 7000)); s.settimeout(30)\nwhile True:\n  d,a=s.recvfrom(2048); s.sendto(d,a)\" & "
                  f"server=$!; sleep 0.5; echo 'VNK: ready'; sleep 2; "
                  f"{PYTHON} {LOAD} udpflood 10.0.2.2 20000 {count}; sleep 4; kill $server")
        n = self.netns("--forward", f"udp:{host_port}:7000", "--", "sh", "-c", script)
        n.wait_for(r"VNK: ready", 30)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(client.close)
        client.connect(("127.0.0.1", host_port))
        client.settimeout(1)

        def echo_through_forward(word):
            for _ in range(5):
                client.send(word)
                try:
                    return client.recv(100) == word
                except socket.timeout:
                    continue
            return False

        self.assertTrue(echo_through_forward(b"before"), n.tail())
        flood = kv(n.wait_for(r"VNK: udpflood .*", 60).group(0))
        time.sleep(0.5)
        m = n.metrics()["backend"]
        self.assertTrue(echo_through_forward(b"after"), "the forward (and its peer flow) survived the flood")
        print(f"UDP flood {flood}: flows opened {m['udp_flows_opened']}, evicted {m['flows_evicted']}", flush=True)
        # Of the datagrams that reached vnetkit (a flood this fast loses some
        # at the TAP's queue), every new flow past the table's 4096 evicted
        # the least recently used one.
        self.assertGreater(m["udp_flows_opened"], 5000, "the flood filled the table")
        self.assertGreaterEqual(m["flows_evicted"], m["udp_flows_opened"] - 4096, m)
        self.assertEqual(n.wait(60), 0, n.tail())


if __name__ == "__main__":
    unittest.main()
