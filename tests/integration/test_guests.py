"""The real Linux virtio_net driver against `vnetkit serve` (loopback backend),
in a User-Mode Linux guest and in a QEMU guest attached over vhost-user.

Each test boots a guest running one scenario of guest/init and checks what the
guest saw (MAC, MTU, carrier, byte-exact echoes of AF_PACKET frames) against
what the server counted (--metrics).
"""
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Qemu, Serve, Uml  # noqa: E402

MAC = "02:12:34:56:78:9a"
MTU = 9000
ECHO_COUNT = 400  # guest/init's default for vnk.test=echo


class GuestScenarios:
    """Scenarios shared by both guests; subclasses say how to boot and how to
    set the link from the host."""

    def setUp(self):
        self.cleanups = []

    def tearDown(self):
        for c in reversed(self.cleanups):
            c()

    def serve(self, *args, **kw):
        s = Serve(*args, **kw)
        self.cleanups.append(s.cleanup)
        return s

    def guest(self, serve, test, **kw):
        g = self.boot(serve, test, **kw)
        self.cleanups.append(g.kill)
        return g

    def assert_clean_counters(self, serve):
        m = serve.metrics()
        drops = {k: v for k, v in m["net"].items() if ("drop" in k or "poison" in k or "failure" in k) and v}
        self.assertEqual(drops, {}, "the real driver must not trip any drop or poison counter")
        self.assertEqual(m["vhost_user"]["rejected"], 0)
        self.assertEqual(m["vhost_user"]["unknown_requests"], 0, "every request the frontend sent is implemented")
        self.assertEqual(m["backend"].get("drops_ring_full", 0), 0)

    def test_probe_mac_mtu_and_byte_exact_echo(self):
        serve = self.serve("--mac", MAC, "--mtu", str(MTU))
        g = self.guest(serve, "echo", mtu=MTU)
        eth = g.eth0()
        self.assertEqual(eth["mac"], MAC)
        self.assertEqual(eth["mtu"], str(MTU))
        self.assertEqual(eth["carrier"], "1")
        r = g.result("echo")
        self.assertEqual((int(r["sent"]), int(r["matched"]), int(r["lost"]), int(r["mismatched"])),
                         (ECHO_COUNT, ECHO_COUNT, 0, 0), g.tail())
        self.assertEqual(g.status(), 0)
        serve.wait_metric("server", "connections", lambda v: v == 1)
        serve.wait_metric("net", "rx_packets", lambda v: v >= ECHO_COUNT)
        m = serve.metrics()["net"]
        # Every frame the guest sent was counted once each way, with its bytes.
        self.assertEqual(m["tx_packets"], ECHO_COUNT)
        self.assertEqual(m["rx_packets"], ECHO_COUNT)
        self.assertEqual(m["tx_bytes"], int(r["bytes"]))
        self.assertEqual(m["rx_bytes"], int(r["bytes"]))
        self.assert_clean_counters(serve)
        self.assertEqual(serve.stop(), 0)

    def test_link_down_and_up_from_the_host(self):
        serve = self.serve("--mac", MAC)
        g = self.guest(serve, "link")
        g.wait_for(r"VNK: ready-link", 60)
        self.set_link(serve, g, False)
        g.wait_for(r"VNK: carrier=0", 20)
        self.set_link(serve, g, True)
        g.wait_for(r"VNK: carrier=1", 20)
        r = g.result("echo")
        self.assertEqual(int(r["matched"]), int(r["sent"]))
        self.assertEqual(g.status(), 0)
        self.assert_clean_counters(serve)

    def test_driver_reload_restarts_the_rings(self):
        serve = self.serve("--mac", MAC)
        g = self.guest(serve, "reload")
        first = g.result("echo")
        g.wait_for(r"VNK: removed", 30)
        mark = len(g.lines)
        g.eth0(start=mark)
        second = kv_after(g, r"pktcheck: mode=echo .*", mark)
        for r in (first, second):
            self.assertEqual(int(r["matched"]), int(r["sent"]), g.tail())
        self.assertEqual(g.status(), 0)
        serve.wait_metric("vhost_user", "ring_starts", lambda v: v >= 2)
        self.assert_clean_counters(serve)

    def test_frontend_killed_mid_traffic_then_next_one_is_served(self):
        serve = self.serve("--mac", MAC)
        g = self.guest(serve, "flood")
        g.wait_for(r"VNK: flooding", 60)
        serve.wait_metric("net", "tx_packets", lambda v: v > 1000, timeout=30)
        g.kill()
        serve.wait_metric("server", "disconnects_clean", lambda v: v + serve.metrics()["server"]["disconnects_error"] >= 1)
        self.assertTrue(serve.alive())
        g2 = self.guest(serve, "echo")
        r = g2.result("echo")
        self.assertEqual(int(r["matched"]), ECHO_COUNT, g2.tail())
        self.assertEqual(g2.status(), 0)
        serve.wait_metric("server", "connections", lambda v: v == 2)
        self.assertEqual(serve.stop(), 0)


def kv_after(g, pattern, start):
    from harness import kv

    return kv(g.wait_for(pattern, 60, start).group(0))


class UmlGuestTest(GuestScenarios, unittest.TestCase):
    def boot(self, serve, test, mtu=None):
        # UML's virtio_uml reads MAC and MTU from our config space (GET_CONFIG).
        return Uml(serve.sock, test)

    def set_link(self, serve, guest, up):
        serve.signal(signal.SIGUSR2 if up else signal.SIGUSR1)

    def test_link_changes_are_counted(self):
        serve = self.serve("--link-down")
        g = self.guest(serve, "probe", )
        # The driver comes up with carrier off; SIGUSR2 brings it up and the
        # guest's wait for carrier completes.
        time.sleep(0.5)
        serve.signal(signal.SIGUSR2)
        g.eth0()
        self.assertEqual(g.status(), 0)
        serve.wait_metric("server", "link_changes", lambda v: v == 1)
        serve.wait_metric("server", "link_up", lambda v: v == 1)

    def test_malformed_frontend_is_dropped_and_server_stays_healthy(self):
        serve = self.serve()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(serve.sock)
        # GET_FEATURES with version 0 in the flags: not a vhost-user message.
        s.sendall(struct.pack("<III", 1, 0, 0))
        s.settimeout(5)
        self.assertEqual(s.recv(64), b"", "the server must close a connection that breaks the protocol")
        s.close()
        serve.wait_metric("server", "disconnects_error", lambda v: v == 1)
        g = self.guest(serve, "echo")
        self.assertEqual(int(g.result("echo")["matched"]), ECHO_COUNT)
        self.assertEqual(g.status(), 0)


    def test_socketpair_backend_with_a_host_echo_peer(self):
        # The frames leave the server on a SOCK_DGRAM socketpair; this test is
        # the peer and sends each one straight back.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        echoed = []

        def echo():
            while True:
                try:
                    frame = ours.recv(65536)
                except OSError:
                    return
                if not frame:
                    return
                echoed.append(len(frame))
                ours.send(frame)

        t = threading.Thread(target=echo, daemon=True)
        t.start()
        serve = self.serve("--net", f"socketpair:{theirs.fileno()}", pass_fds=(theirs.fileno(),))
        theirs.close()
        self.cleanups.append(ours.close)
        g = self.guest(serve, "echo")
        r = g.result("echo")
        self.assertEqual((int(r["matched"]), int(r["lost"])), (ECHO_COUNT, 0), g.tail())
        self.assertEqual(g.status(), 0)
        self.assertEqual(len(echoed), ECHO_COUNT)
        self.assertEqual(sum(echoed), int(r["bytes"]))
        m = serve.metrics()
        self.assertEqual(m["backend"]["tx_would_block"] + m["backend"]["tx_errors"] + m["backend"]["rx_errors"], 0)


class QemuGuestTest(GuestScenarios, unittest.TestCase):
    def boot(self, serve, test, mtu=None):
        # QEMU 7.2 keeps the net config space itself (it does not use
        # VHOST_USER_PROTOCOL_F_CONFIG for net): MAC and MTU come from the
        # device properties, and the link from its monitor.
        self.monitor = os.path.join(serve.dir, "monitor.sock")
        return Qemu(serve.sock, test, MAC, mtu=mtu, monitor=self.monitor)

    def set_link(self, serve, guest, up):
        Qemu.hmp(self.monitor, f"set_link n0 {'on' if up else 'off'}")

    def test_client_mode(self):
        d = tempfile.mkdtemp(prefix="vnk-client-")
        sock = os.path.join(d, "qemu-vhost-user.sock")
        g = Qemu(sock, "echo", MAC, server=True)
        self.cleanups.append(g.kill)
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        # vnetkit connects (and reconnects) as its sandbox's user, nobody.
        os.chmod(d, 0o755)
        os.chmod(sock, 0o777)
        serve = self.serve("--mac", MAC, connect=sock, workdir=d)
        self.assertEqual(int(g.result("echo")["matched"]), ECHO_COUNT, g.tail())
        self.assertEqual(g.status(), 0)
        serve.wait_metric("net", "rx_packets", lambda v: v >= ECHO_COUNT)


if __name__ == "__main__":
    unittest.main()
