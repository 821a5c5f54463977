"""usernet (`vnetkit serve --net user`) with the real Linux guest in
User-Mode Linux: busybox udhcpc and arping against the DHCP server and the
gateway; then ping, nslookup, wget (100 MB down and up, sha256-checked) and
iperf3 through the gateway address, which reaches services this test runs on
the host's 127.0.0.1; and a TCP port forward from the host to a web server in
the guest. No traffic leaves the machine: the DNS server is the test's own.
"""
import ipaddress
import os
import sys
import json
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Qemu, Serve, Uml, kv  # noqa: E402
from servers import DnsServer, HttpServer, Iperf3Server, free_port  # noqa: E402

MAC = "02:00:00:00:0a:0f"


class UmlTest(unittest.TestCase):
    def test_dhcp_lease_mtu_and_gateway_arp(self):
        serve = Serve("--net", "user")
        self.addCleanup(serve.cleanup)
        g = Uml(serve.sock, "dhcp")
        self.addCleanup(g.kill)
        lease = kv(g.wait_for(r"VNK: lease event=bound .*", 60).group(0))
        self.assertEqual(lease["ip"], "10.0.2.15")
        self.assertEqual(lease["subnet"], "255.255.255.0")
        self.assertEqual(lease["router"], "10.0.2.2")
        self.assertEqual(lease["dns"], "10.0.2.3")
        self.assertEqual(lease["serverid"], "10.0.2.2")
        self.assertEqual(lease["mtu"], "65520")
        self.assertEqual(lease["lease"], "86400")
        self.assertEqual(kv(g.wait_for(r"VNK: lease-time .*", 10).group(0))["mtu-now"], "65520")
        self.assertIn("52:55:0a:00:02:02", g.wait_for(r"VNK: arp gateway=10.0.2.2 .*", 10).group(0))
        self.assertEqual(g.status(), 0)
        m = serve.wait_metric("backend", "arp_replies_sent", lambda v: v >= 1)
        b = serve.metrics()["backend"]
        self.assertEqual((b["dhcp_discovers"], b["dhcp_offers"], b["dhcp_requests"], b["dhcp_acks"]), (1, 1, 1, 1))
        self.assertEqual(b["drop_malformed"], 0)
        self.assertEqual(b["drop_queue_full"], 0)
        self.assertEqual(serve.stop(), 0)


    def test_ipv6_slaac_from_the_gateways_router_advertisement(self):
        """Linux 6.1's own SLAAC against usernet's Neighbor Discovery (--ipv6):
        a Router Solicitation answered with the fd00::/64 prefix, the guest's
        DAD left alone, its address from its MAC (EUI-64), the gateway's
        link-local address as default router, the RA's MTU taken. Then the
        host's ::1 through the gateway's IPv6 address: busybox ping -6, 32 MiB
        down (wget) and up (tcpput) byte-exact, iperf3 -6 both ways."""
        web = HttpServer(32 << 20, "::1")
        self.addCleanup(web.close)
        extra = ["vnk.ipv6=1", f"vnk.http={web.port}"]
        iperf = Iperf3Server.start("::1")
        if iperf:
            self.addCleanup(iperf.kill)
            extra.append(f"vnk.iperf={iperf.port}")
        serve = Serve("--net", "user", "--ipv6")
        self.addCleanup(serve.cleanup)
        g = Uml(serve.sock, "slaac", mem="256M", extra=extra)
        self.addCleanup(g.kill)
        mac = kv(g.wait_for(r"VNK: eth0-up .*", 60).group(0))["mac"]
        got = kv(g.wait_for(r"VNK: slaac.*", 30).group(0))

        def eui64(prefix, mac):
            o = [int(x, 16) for x in mac.split(":")]
            iid = bytes([o[0] ^ 2, o[1], o[2], 0xff, 0xfe, o[3], o[4], o[5]])
            return ipaddress.IPv6Address(ipaddress.IPv6Address(prefix).packed[:8] + iid)
        self.assertEqual(ipaddress.IPv6Address(bytes.fromhex(got["address"])), eui64("fd00::", mac))
        self.assertEqual(ipaddress.IPv6Address(bytes.fromhex(got["router"])), eui64("fe80::", "52:55:0a:00:02:02"))
        self.assertEqual(got["mtu6"], "65520")
        self.assertIn("rtt-avg", kv(g.wait_for(r"VNK: ping6.*", 30).group(0)), g.tail())
        down = kv(g.wait_for(r"VNK: download6.*", 120).group(0))
        self.assertEqual((down.get("bytes"), down.get("sha256")), (str(32 << 20), web.sha256), g.tail())
        up = kv(g.wait_for(r"VNK: upload6.*", 120).group(0))
        self.assertEqual((up.get("bytes"), up.get("sha256")), (str(32 << 20), web.sha256), g.tail())
        if iperf:
            for direction in ("up", "down"):
                r = kv(g.wait_for(rf"VNK: iperf6[- ]{direction}.*", 60).group(0))
                self.assertGreater(float(r.get("mbps", "0")), 0, g.tail())
        b = serve.metrics()["backend"]
        self.assertGreaterEqual(b["ndp_router_solicitations"], 1)
        self.assertGreaterEqual(b["ndp_advertisements_sent"], b["ndp_router_solicitations"])
        self.assertGreaterEqual(b["ndp_ignored"], 1, "the guest's DAD probes for its own addresses")
        for k in ("ndp_malformed", "ipv6_malformed", "drop_malformed", "ipv6_unsupported"):
            self.assertEqual(b[k], 0, k)
        self.assertGreaterEqual(b["ipv6_flows_opened"], 3)
        self.assertGreaterEqual(b["icmp_echo_replies"], 3)
        self.assertEqual(g.status(), 0, g.tail())
        self.assertEqual(serve.stop(), 0)

    def test_addressing_is_configurable(self):
        serve = Serve("--net", "user", "--network", "192.168.77.0/24", "--gateway", "192.168.77.1",
                      "--dns", "192.168.77.53", "--guest-ip", "192.168.77.100", "--user-mtu", "9000")
        self.addCleanup(serve.cleanup)
        g = Uml(serve.sock, "dhcp")
        self.addCleanup(g.kill)
        lease = kv(g.wait_for(r"VNK: lease event=bound .*", 60).group(0))
        self.assertEqual((lease["ip"], lease["router"], lease["dns"], lease["mtu"]),
                         ("192.168.77.100", "192.168.77.1", "192.168.77.53", "9000"))
        g.wait_for(r"VNK: arp gateway=192.168.77.1 ", 10)
        self.assertEqual(g.status(), 0)
        self.assertEqual(serve.stop(), 0)

    def test_guest_reaches_host_services(self):
        dns = DnsServer({"vnetkit.test": "192.0.2.7"})
        self.addCleanup(dns.close)
        web = HttpServer(100 << 20)
        self.addCleanup(web.close)
        iperf = Iperf3Server.start()
        extra = ["vnk.name=vnetkit.test", f"vnk.http={web.port}"]
        if iperf:
            self.addCleanup(iperf.kill)
            extra += [f"vnk.iperf={iperf.port}", "vnk.seconds=2"]
        fwd_port = free_port()
        mmds_doc = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"latest": {"meta-data": {"instance-id": "i-vnetkit-test"}}}, mmds_doc)
        mmds_doc.close()
        self.addCleanup(os.unlink, mmds_doc.name)
        serve = Serve("--net", "user", "--dns-upstream", f"127.0.0.1:{dns.port}", "--forward", f"tcp:{fwd_port}:8080",
                      "--mmds", mmds_doc.name, "--mmds-require-token")
        self.addCleanup(serve.cleanup)
        g = Uml(serve.sock, "net", mem="512M", extra=extra + ["vnk.fwd=8080", "vnk.mmds=1"])
        self.addCleanup(g.kill)
        g.wait_for(r"VNK: httpd ready", 60)
        # The host reaches the guest's web server through the forward.
        with urllib.request.urlopen(f"http://127.0.0.1:{fwd_port}/index.html", timeout=20) as r:
            self.assertEqual(r.read(), b"hello from the guest\n")
        ping = kv(g.wait_for(r"VNK: ping (ok|failed).*", 60).group(0))
        self.assertIn("rtt-avg", ping, g.tail())
        self.assertEqual(kv(g.wait_for(r"VNK: dns.*", 30).group(0)).get("address"), "192.0.2.7", g.tail())
        self.assertIn(("vnetkit.test", 1), dns.queries)
        mmds = kv(g.wait_for(r"VNK: mmds.*", 30).group(0))
        self.assertEqual((mmds.get("instance-id"), mmds.get("token-length")), ("i-vnetkit-test", "48"), g.tail())
        down = kv(g.wait_for(r"VNK: download.*", 120).group(0))
        self.assertEqual((down.get("bytes"), down.get("sha256")), (str(100 << 20), web.sha256), g.tail())
        up = kv(g.wait_for(r"VNK: upload.*", 120).group(0))
        self.assertEqual((up.get("bytes"), up.get("sha256")), (str(100 << 20), web.sha256), g.tail())
        if iperf:
            for direction in ("up", "down"):
                r = kv(g.wait_for(rf"VNK: iperf[- ]{direction}.*", 60).group(0))
                self.assertGreater(float(r.get("mbps", "0")), 0, g.tail())
        self.assertEqual(g.status(), 0, g.tail())
        b = serve.metrics()["backend"]
        # (tcp_host_resets is not checked: iperf3 may end its streams with a RST.)
        for k in ("drop_malformed", "drop_queue_full", "tcp_connect_refused", "tcp_timeouts"):
            self.assertEqual(b[k], 0, k)
        self.assertGreaterEqual(b["icmp_echo_replies"], 5)
        self.assertGreaterEqual(b["tcp_bytes_to_guest"], 100 << 20)
        self.assertGreaterEqual(b["tcp_bytes_to_host"], 100 << 20)
        m = serve.metrics()["mmds"]
        self.assertEqual((m["tokens_issued"], m["unauthorized"]), (1, 0))
        # Linux posts page-sized buffers with MRG_RXBUF: the download's GSO
        # frames span several, and none is cut short.
        n = serve.metrics()["net"]
        self.assertGreater(n["rx_merged_buffers"], 0)
        self.assertEqual(n["rx_truncated"], 0)
        self.assertEqual(serve.stop(), 0)


class QemuTest(unittest.TestCase):
    """The smaller set in QEMU (TCG): the PCI virtio-net driver over vhost-user."""

    def test_lease_ping_dns_and_http_both_ways(self):
        dns = DnsServer({"vnetkit.test": "192.0.2.9"})
        self.addCleanup(dns.close)
        web = HttpServer(16 << 20)
        self.addCleanup(web.close)
        serve = Serve("--net", "user", "--mac", MAC, "--dns-upstream", f"127.0.0.1:{dns.port}")
        self.addCleanup(serve.cleanup)
        g = Qemu(serve.sock, "net", MAC, mtu=65520, cmdline=["vnk.name=vnetkit.test", f"vnk.http={web.port}"])
        self.addCleanup(g.kill)
        lease = kv(g.wait_for(r"VNK: lease event=bound .*", 120).group(0))
        self.assertEqual((lease["ip"], lease["mtu"]), ("10.0.2.15", "65520"))
        self.assertIn("rtt-avg", kv(g.wait_for(r"VNK: ping.*", 60).group(0)), g.tail())
        self.assertEqual(kv(g.wait_for(r"VNK: dns.*", 30).group(0)).get("address"), "192.0.2.9", g.tail())
        for step in ("download", "upload"):
            r = kv(g.wait_for(rf"VNK: {step}.*", 180).group(0))
            self.assertEqual((r.get("bytes"), r.get("sha256")), (str(16 << 20), web.sha256), g.tail())
        self.assertEqual(g.status(120), 0, g.tail())
        self.assertEqual(serve.metrics()["backend"]["drop_malformed"], 0)
        n = serve.metrics()["net"]
        self.assertGreater(n["rx_merged_buffers"], 0)
        self.assertEqual(n["rx_truncated"], 0)
        self.assertEqual(serve.stop(), 0)


if __name__ == "__main__":
    unittest.main()
