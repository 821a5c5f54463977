"""usernet (`vnetkit serve --net user`) with the real Linux guest: what is
built so far — DHCP and the gateway's ARP — exercised by busybox udhcpc and
arping in User-Mode Linux. All traffic stays between the guest and the server.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Serve, Uml, kv  # noqa: E402


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


if __name__ == "__main__":
    unittest.main()
