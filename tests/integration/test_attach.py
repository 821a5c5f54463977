"""usernet served over plain frame sockets instead of vhost-user (`vnetkit
serve --stream/--dgram/--fd`), with real peers: QEMU's own virtio-net
(TCG) on `-netdev stream` and `-netdev dgram` -- a lease, ping, DNS and
16 MiB over HTTP both ways, byte-exact -- and a socketpair handed to vnetkit
(`--fd`) on which the test plays a guest on raw Ethernet frames: ARP, DHCP,
UDP and TCP. `--net tap:IFNAME` puts a UML guest on a TAP in the test's
namespace.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Process, Qemu, Serve, Uml, kv  # noqa: E402
from inet_checksum import inet_checksum  # noqa: E402
from servers import DnsServer, HttpServer  # noqa: E402

MAC = "52:54:00:12:34:57"


class AttachTest(unittest.TestCase):
    def qemu_net_scenario(self, attach, netdev_for):
        dns = DnsServer({"vnetkit.test": "192.0.2.9"})
        self.addCleanup(dns.close)
        web = HttpServer(16 << 20)
        self.addCleanup(web.close)
        serve = Serve("--net", "user", "--dns-upstream", f"127.0.0.1:{dns.port}", "--user-mtu", "1500", attach=attach)
        self.addCleanup(serve.cleanup)
        g = Qemu(None, "net", MAC, netdev=netdev_for(serve), cmdline=["vnk.name=vnetkit.test", f"vnk.http={web.port}"])
        self.addCleanup(g.kill)
        lease = kv(g.wait_for(r"VNK: lease event=bound .*", 120).group(0))
        self.assertEqual((lease["ip"], lease["mtu"]), ("10.0.2.15", "1500"))
        self.assertIn("rtt-avg", kv(g.wait_for(r"VNK: ping.*", 60).group(0)), g.tail())
        self.assertEqual(kv(g.wait_for(r"VNK: dns.*", 30).group(0)).get("address"), "192.0.2.9", g.tail())
        for step in ("download", "upload"):
            r = kv(g.wait_for(rf"VNK: {step}.*", 180).group(0))
            self.assertEqual((r.get("bytes"), r.get("sha256")), (str(16 << 20), web.sha256), g.tail())
        self.assertEqual(g.status(120), 0, g.tail())
        m = serve.metrics()
        self.assertEqual(m["backend"]["drop_malformed"], 0)
        self.assertGreater(m["link"]["frames_from_peer"], 10000)
        self.assertGreater(m["link"]["bytes_to_peer"], 16 << 20)
        for k in ("bad_length", "write_errors", "drop_truncated"):
            self.assertEqual(m["link"][k], 0, k)
        self.assertEqual(serve.stop(), 0)
        return m

    def test_qemu_netdev_stream(self):
        """QEMU 7.2 `-netdev stream,server=off` to `vnetkit serve --stream`."""
        m = self.qemu_net_scenario(
            "--stream", lambda s: f"stream,id=n0,server=off,addr.type=unix,addr.path={s.sock}")
        self.assertEqual(m["server"]["connections"], 1)

    def test_qemu_netdev_stream_server_on_with_vnetkit_connecting(self):
        """QEMU listens (`-netdev stream,server=on`), `vnetkit serve
        --stream-connect` retries until it can connect."""
        def netdev(s):
            os.chmod(s.dir, 0o755)  # the sandbox's user (nobody) connects

            def open_up():
                for _ in range(400):
                    if os.path.exists(s.sock):
                        os.chmod(s.sock, 0o777)
                        return
                    time.sleep(0.05)
            threading.Thread(target=open_up, daemon=True).start()
            return f"stream,id=n0,server=on,addr.type=unix,addr.path={s.sock}"
        m = self.qemu_net_scenario("--stream-connect", netdev)
        self.assertEqual(m["server"]["connections"], 1)
        self.assertGreater(m["server"]["connect_retries"], 0, "vnetkit started first and waited for QEMU")

    def test_qemu_netdev_dgram(self):
        """QEMU 7.2 `-netdev dgram` between two unixgram paths; vnetkit
        answers the path each datagram came from."""
        def netdev(s):
            # QEMU's socket beside ours, writable by the sandbox's user
            # (nobody), who answers it.
            os.chmod(s.dir, 0o755)
            qemu_side = os.path.join(s.dir, "qemu.sock")

            def open_up():
                for _ in range(200):
                    if os.path.exists(qemu_side):
                        os.chmod(qemu_side, 0o777)
                        return
                    time.sleep(0.05)
            threading.Thread(target=open_up, daemon=True).start()
            return f"dgram,id=n0,local.type=unix,local.path={qemu_side},remote.type=unix,remote.path={s.sock}"
        self.qemu_net_scenario("--dgram", netdev)

    def test_a_socketpair_peer_gets_arp_dhcp_udp_and_tcp(self):
        """A VMM's socketpair end (`--fd`), one frame per datagram, on
        SOCK_DGRAM and SOCK_SEQPACKET: the test plays the guest on raw
        Ethernet frames -- ARP for the gateway, a DHCPDISCOVER answered with
        an offer, a UDP echo and a TCP exchange with host servers on
        127.0.0.1 -- and a seqpacket peer that hangs up ends the serve."""
        for kind in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
            ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
            self.addCleanup(ours.close)
            serve = Serve("--net", "user", "--no-ipv6", attach=("--fd", theirs.fileno()), pass_fds=(theirs.fileno(),))
            self.addCleanup(serve.cleanup)
            theirs.close()
            mac = bytes.fromhex(MAC.replace(":", ""))
            arp = (b"\xff" * 6 + mac + b"\x08\x06" +
                   struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, bytes(4), bytes(6), bytes([10, 0, 2, 2])))
            ours.send(arp)
            ours.settimeout(5)
            reply = ours.recv(2048)
            self.assertEqual(reply[12:14], b"\x08\x06")
            self.assertEqual(struct.unpack("!H", reply[20:22])[0], 2, "an ARP reply")
            self.assertEqual(reply[28:32], bytes([10, 0, 2, 2]))
            # DHCPDISCOVER, UDP checksum left 0 ("none", allowed over IPv4).
            bootp = (struct.pack("!BBBBIHH4s4s4s4s16s", 1, 1, 6, 0, 0x1234, 0, 0x8000, bytes(4), bytes(4), bytes(4),
                                 bytes(4), mac + bytes(10)) + bytes(192) + b"\x63\x82\x53\x63" + b"\x35\x01\x01\xff")
            udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), b"\xff" * 4)
            ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
            ours.send(b"\xff" * 6 + mac + b"\x08\x00" + ip + udp)
            offer = ours.recv(2048)
            self.assertEqual(offer[12:14], b"\x08\x00")
            self.assertEqual(offer[14 + 20 + 8 + 16:14 + 20 + 8 + 20], bytes([10, 0, 2, 15]), "yiaddr")
            self.assertIn(b"\x35\x01\x02", offer, "a DHCPOFFER")
            self.udp_and_tcp_through_the_gateway(ours, mac)
            m = serve.metrics()
            self.assertGreaterEqual(m["link"]["frames_from_peer"], 7)
            self.assertEqual(m["backend"]["dhcp_offers"], 1)
            self.assertEqual((m["backend"]["udp_datagrams_in"], m["backend"]["tcp_bytes_to_host"]), (1, 5))
            if kind == socket.SOCK_SEQPACKET:
                ours.close()  # a seqpacket peer that hangs up ends the serve
                self.assertEqual(serve.wait(10), 0)
            else:
                self.assertEqual(serve.stop(), 0)


    def udp_and_tcp_through_the_gateway(self, sock, mac):
        """As the guest 10.0.2.15 on raw frames: a UDP datagram to an echo
        server on the host's 127.0.0.1 (via 10.0.2.2) comes back; a TCP
        handshake, 5 bytes each way and a reset reach a host listener."""
        gw_mac = None
        guest, gw = bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2])

        def frame(proto, l4):
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, guest, gw)
            ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
            return gw_mac + mac + b"\x08\x00" + ip + l4

        def tcp(sport, dport, seq, ack, flags, payload=b""):
            seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
            pseudo = guest + gw + struct.pack("!BBH", 0, 6, len(seg))
            return frame(6, seg[:16] + struct.pack("!H", inet_checksum(pseudo + seg)) + seg[18:])

        def next_ipv4(proto):
            while True:
                f = sock.recv(70000)
                if f[12:14] == b"\x08\x00" and f[23] == proto:
                    return f
        # The gateway's MAC, from the ARP reply earlier: ask again.
        sock.send(b"\xff" * 6 + mac + b"\x08\x06" +
                  struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, guest, bytes(6), gw))
        while True:
            f = sock.recv(2048)
            if f[12:14] == b"\x08\x06":
                gw_mac = f[22:28]
                break
        echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        echo.bind(("127.0.0.1", 0))
        self.addCleanup(echo.close)
        sock.send(frame(17, struct.pack("!HHHH", 5000, echo.getsockname()[1], 8 + 4, 0) + b"ping"))
        echo.settimeout(5)
        data, peer = echo.recvfrom(100)
        self.assertEqual(data, b"ping")
        echo.sendto(b"pong", peer)
        udp = next_ipv4(17)
        self.assertEqual(udp[42:46], b"pong")
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        sock.send(tcp(40000, port, 1000, 0, 0x02))
        listener.settimeout(5)
        conn, _ = listener.accept()
        self.addCleanup(conn.close)
        synack = next_ipv4(6)
        self.assertEqual(synack[47] & 0x12, 0x12, "SYN-ACK")
        iss = struct.unpack("!I", synack[38:42])[0]
        sock.send(tcp(40000, port, 1001, iss + 1, 0x18, b"hello"))
        conn.settimeout(5)
        self.assertEqual(conn.recv(100), b"hello")
        conn.sendall(b"world")
        while True:
            seg = next_ipv4(6)
            payload = seg[14 + 20 + (seg[46] >> 4) * 4:]
            if payload:
                self.assertEqual(payload, b"world")
                break
        sock.send(tcp(40000, port, 1006, iss + 6, 0x14))  # RST+ACK


class SharedNetworkTest(unittest.TestCase):
    def two_guests(self, serve, guest_args):
        """Two UML guests (Linux 6.1) on `serve`, each running the pair
        scenario: its own lease, a ping to the other at L2, 4 MiB to the other
        over TCP while taking the other's 4 MiB, byte-exact, and 8 MiB each
        way with the host through the gateway. Returns the metrics."""
        web = HttpServer(8 << 20)
        self.addCleanup(web.close)
        guests = []
        for i in (1, 2):
            sock, nic = guest_args(i)
            g = Uml(sock, "pair", extra=nic, extra_args=["vnk.peers=10.0.2.15,10.0.2.16", f"vnk.http={web.port}"])
            self.addCleanup(g.kill)
            guests.append(g)
        leases, blobs = [], []
        for g in guests:
            lease = kv(g.wait_for(r"VNK: pair-lease .*", 90).group(0))
            leases.append(lease["address"])
            blobs.append(kv(g.wait_for(r"VNK: pair-blob .*", 60).group(0)))
        self.assertEqual(sorted(leases), ["10.0.2.15", "10.0.2.16"], [g.tail() for g in guests])
        for g, other in zip(guests, reversed(blobs)):
            g.wait_for(r"VNK: pair-ping ok", 60)
            got = kv(g.wait_for(r"VNK: pair-got .*", 120).group(0))
            self.assertEqual((got["bytes"], got["sha256"]), (other["bytes"], other["sha256"]), g.tail())
            for step in ("download", "upload"):
                r = kv(g.wait_for(rf"VNK: {step}.*", 120).group(0))
                self.assertEqual((r.get("bytes"), r.get("sha256")), (str(8 << 20), web.sha256), g.tail())
        for g in guests:
            self.assertEqual(g.status(60), 0, g.tail())
        m = serve.metrics()
        sw = m["switch"]
        self.assertGreater(sw["frames_between_guests"], 2 * (4 << 20) // 65536)
        self.assertGreater(sw["frames_flooded"], 0)  # ARP requests, DHCP
        # The queues hold a guest's whole window: nothing is lost between ports.
        for k in ("drop_queue_full", "drop_mac_taken", "drop_too_many_macs", "drop_malformed", "drop_isolated",
                  "drop_oversize", "drop_offload"):
            self.assertEqual(sw[k], 0, k)
        self.assertEqual(m["backend"]["dhcp_acks"], 2)
        self.assertEqual(m["server"]["connections"], 2)
        self.assertEqual(serve.stop(), 0)
        return serve.metrics()

    def test_two_uml_guests_over_seqpacket_share_one_usernet(self):
        """`serve --seqpacket PATH --guests 2`: UML's vector driver on its bess
        transport (one frame per SOCK_SEQPACKET packet), each guest a port of
        one switch in front of one usernet."""
        serve = Serve("--net", "user", "--user-mtu", "1500", "--guests", "2", attach="--seqpacket")
        self.addCleanup(serve.cleanup)
        self.two_guests(serve, lambda i: (None, [
            f"vec0:transport=bess,dst={serve.sock},src={serve.dir}/uml{i}.sock,mac=52:54:00:00:00:0{i}"]))

    def test_dgram_senders_are_guests_of_their_own(self):
        """`serve --dgram PATH --guests 2`: two unixgram peers (the test on raw
        frames, as QEMU -netdev dgram or vfkit would send) on the one socket
        are two guests: each gets its own DHCP offer, an ARP request from one
        for the other's address reaches the other, and its unicast answer
        comes back. A third sender while both are attached is not answered."""
        serve = Serve("--net", "user", "--no-ipv6", "--guests", "2", attach="--dgram")
        self.addCleanup(serve.cleanup)
        os.chmod(serve.dir, 0o755)  # the sandbox's user (nobody) answers our sockets there

        def peer(i):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            path = os.path.join(serve.dir, f"peer{i}.sock")
            s.bind(path)
            os.chmod(path, 0o777)
            s.settimeout(5)
            self.addCleanup(s.close)
            return s, bytes([0x52, 0x54, 0, 0, 0, i])

        def discover(sock, mac, xid):
            bootp = (struct.pack("!BBBBIHH4s4s4s4s16s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4), bytes(4),
                                 bytes(4), mac + bytes(10)) + bytes(192) + b"\x63\x82\x53\x63" + b"\x35\x01\x01\xff")
            udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), b"\xff" * 4)
            ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
            sock.sendto(b"\xff" * 6 + mac + b"\x08\x00" + ip + udp, serve.sock)

        def offer_for(sock, xid):
            while True:
                f = sock.recv(70000)
                if f[12:14] == b"\x08\x00" and f[23] == 17 and struct.unpack("!I", f[14 + 28 + 4:14 + 28 + 8])[0] == xid:
                    return bytes(f[14 + 28 + 16:14 + 28 + 20])

        def arp(sock, op, src_mac, src_ip, dst_mac, dst_ip, eth_dst):
            sock.sendto(eth_dst + src_mac + b"\x08\x06" +
                        struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, src_mac, src_ip, dst_mac, dst_ip), serve.sock)

        def next_arp(sock):
            while True:
                f = sock.recv(70000)
                if f[12:14] == b"\x08\x06":
                    return f

        (a, mac_a), (b, mac_b) = peer(1), peer(2)
        discover(a, mac_a, 0xa)
        discover(b, mac_b, 0xb)
        ip_a, ip_b = offer_for(a, 0xa), offer_for(b, 0xb)
        self.assertEqual(sorted([ip_a, ip_b]), [bytes([10, 0, 2, 15]), bytes([10, 0, 2, 16])])
        # A asks who has B's address: the broadcast reaches B, B's answer A.
        arp(a, 1, mac_a, ip_a, bytes(6), ip_b, b"\xff" * 6)
        req = next_arp(b)
        self.assertEqual((req[6:12], req[38:42]), (mac_a, ip_b))
        arp(b, 2, mac_b, ip_b, mac_a, ip_a, mac_a)
        reply = next_arp(a)
        self.assertEqual((reply[6:12], struct.unpack("!H", reply[20:22])[0], reply[28:32]), (mac_b, 2, ip_b))
        # A third sender finds both places taken.
        c, mac_c = peer(3)
        discover(c, mac_c, 0xc)
        c.settimeout(1)
        with self.assertRaises(socket.timeout):
            offer_for(c, 0xc)
        m = serve.metrics()
        self.assertEqual(m["server"]["connections"], 2)
        self.assertGreaterEqual(m["server"]["refused_full"], 1)
        self.assertEqual(m["switch"]["frames_between_guests"], 1)
        self.assertGreaterEqual(m["switch"]["frames_flooded"], 1)
        self.assertEqual(m["backend"]["dhcp_offers"], 2)
        self.assertEqual(serve.stop(), 0)

    def test_two_uml_guests_over_vhost_user_share_one_usernet(self):
        """`serve --vhost-user PATH --guests 2`: two virtio_uml frontends on one
        socket, each its own device (MAC+0, MAC+1) and port, with their
        checksum and segmentation offloads passing through the switch."""
        serve = Serve("--net", "user", "--user-mtu", "1500", "--guests", "2")
        self.addCleanup(serve.cleanup)
        m = self.two_guests(serve, lambda i: (serve.sock, []))
        self.assertEqual(m["net"]["rx_truncated"], 0)
        # Both guests negotiated TSO: the 4 MiB between them crossed the
        # switch in frames of up to 64 KiB, not 1514 bytes.
        self.assertLess(m["switch"]["frames_between_guests"], 2 * (4 << 20) // 1514)


class TapBackendTest(unittest.TestCase):
    def test_a_guest_on_a_host_tap_reaches_the_far_side(self):
        """`serve --net tap:vnktap0`: the UML guest (Linux's virtio_net, with
        its offloads passed through the TAP's vnet header) is bridged onto a
        TAP in the test's own network namespace. The namespace's kernel is
        the far side: busybox udhcpd on the TAP gives the lease, and the
        guest pings 10.77.0.1 and moves 32 MiB each way over HTTP to a server
        there, byte-exact."""
        if not os.path.exists("/dev/net/tun"):
            self.skipTest("no /dev/net/tun")
        work = tempfile.mkdtemp(prefix="vnk-tap-")
        self.addCleanup(shutil.rmtree, work, True)
        serve = Serve("--net", "tap:vnktap0", "--mac", MAC)
        self.addCleanup(serve.cleanup)
        for cmd in (["ip", "addr", "add", "10.77.0.1/24", "dev", "vnktap0"], ["ip", "link", "set", "vnktap0", "up"]):
            subprocess.run(cmd, check=True)
        conf = os.path.join(work, "udhcpd.conf")
        with open(conf, "w") as f:
            f.write(f"start 10.77.0.15\nend 10.77.0.15\ninterface vnktap0\noption subnet 255.255.255.0\n"
                    f"option router 10.77.0.1\noption lease 3600\nlease_file {work}/leases\npidfile {work}/pid\n")
        open(os.path.join(work, "leases"), "w").close()
        dhcpd = Process(["busybox", "udhcpd", "-f", conf], "udhcpd")
        self.addCleanup(dhcpd.kill)
        web = HttpServer(32 << 20, "10.77.0.1")
        self.addCleanup(web.close)
        g = Uml(serve.sock, "net", mem="512M", extra=[f"vnk.http={web.port}"])
        self.addCleanup(g.kill)
        lease = kv(g.wait_for(r"VNK: lease event=bound .*", 60).group(0))
        self.assertEqual((lease["ip"], lease["router"]), ("10.77.0.15", "10.77.0.1"), g.tail())
        self.assertIn("rtt-avg", kv(g.wait_for(r"VNK: ping.*", 60).group(0)), g.tail())
        for step in ("download", "upload"):
            r = kv(g.wait_for(rf"VNK: {step}.*", 120).group(0))
            self.assertEqual((r.get("bytes"), r.get("sha256")), (str(32 << 20), web.sha256), g.tail())
        g.status(60)
        b = serve.metrics()["backend"]
        self.assertGreater(b["bytes_to_tap"], 32 << 20)
        self.assertGreater(b["bytes_from_tap"], 32 << 20)
        self.assertEqual((b["write_errors"], b["read_errors"], b["rx_truncated"]), (0, 0, 0))
        self.assertEqual(serve.stop(), 0)


if __name__ == "__main__":
    unittest.main()
