"""vnetkit on Linux 6.1, the kernel Debian 12 ships: no TCP SO_PEEK_OFF
(6.9), ping sockets closed by default. Debian's user-mode-linux package is
that kernel; it boots on this machine's own root file system (hostfs), so
the real vnetkit binary serves a real namespace inside it, and real
programs (Python's HTTP client, busybox ping, iperf3, the glibc resolver)
use it: a 64 MiB download and upload (sha256), DNS, ping to the gateway,
iperf3 both ways; then 3000 connections at once under init's soft open-file
limit of 1024. A second guest degrades the namespace's link with netem
(loss, reordering, duplication, a shut window) while data moves. The unit suite runs there too, so each flow test's
"this kernel" variant meets 6.1's own answers to the probe. All traffic
stays inside the UML kernel.
"""
import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, Process, kv  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UML = shutil.which("linux.uml") or "/usr/bin/linux.uml"


def uml_release():
    d = "/usr/lib/uml/modules"
    return sorted(os.listdir(d))[-1] if os.path.isdir(d) and os.listdir(d) else None


class Linux61(Process):
    """linux.uml on hostfs with linux61_init.sh as init."""

    def __init__(self, scenario):
        argv = [UML, "mem=1G", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "rw", "quiet",
                f"init={os.path.join(HERE, 'linux61_init.sh')}", f"VNK_DIR={HERE}",
                f"VNK_BUILD={os.path.abspath(BUILD)}", f"VNK_SCENARIO={scenario}", "con=null", "con0=null,fd:1"]
        super().__init__(argv, f"Linux 6.1 UML ({scenario})")


@unittest.skipUnless(os.path.exists(UML) and uml_release(), "Debian's user-mode-linux is not installed")
class Linux61Test(unittest.TestCase):
    def test_netns_download_upload_ping_dns_iperf3(self):
        g = Linux61("netns")
        self.addCleanup(g.kill)
        boot = kv(g.wait_for(r"VNK: linux61 kernel=.*", 60).group(0))
        self.assertTrue(boot["kernel"].startswith("6.1."), boot)
        g.wait_for(r"VNK: linux61 finished status=\d+", 240)
        out = g.text()
        print(out[-3000:], flush=True)  # the figures, in the test log
        self.assertIn("no TCP SO_PEEK_OFF", out, "6.1 has no TCP SO_PEEK_OFF: the fallback must be in use")
        services = kv(g.wait_for(r"VNK: services .*", 1).group(0))
        down = kv(g.wait_for(r"VNK: download .*", 1).group(0))
        self.assertEqual((down["status"], down["bytes"], down["sha256"]), ("200", str(64 << 20), services["sha256"]))
        up = kv(g.wait_for(r"VNK: upload .*", 1).group(0))
        self.assertEqual(up["bytes"], str(64 << 20))
        self.assertEqual(up["sha256"], up["sent_sha256"])
        self.assertEqual(kv(g.wait_for(r"VNK: ping .*", 1).group(0))["received"], "3", out)
        self.assertEqual(kv(g.wait_for(r"VNK: dns .*", 1).group(0)).get("address"), "192.0.2.7", out)
        for direction in ("up", "down"):
            r = kv(g.wait_for(rf"VNK: iperf direction={direction} .*", 1).group(0))
            self.assertGreater(int(r.get("mbps", 0)), 10, out)
        counters = kv(g.wait_for(r"VNK: counters .*", 1).group(0))
        self.assertGreater(int(counters["tcp_bytes_repeeked"]), 0)
        self.assertEqual(counters["drop_icmp_not_permitted"], "0")
        # The same over IPv6, Linux 6.1's IPv6 and its TCP without SO_PEEK_OFF.
        v6 = out[out.index("VNK: ipv6-begin"):]
        begin = kv(re.search(r"VNK: ipv6-begin .*", v6).group(0))
        self.assertNotIn("error", begin, v6[:2000])
        self.assertRegex(v6, r"VNK: slaac address=fd00:")
        down6 = kv(re.search(r"VNK: download .*", v6).group(0))
        self.assertEqual((down6["status"], down6["sha256"]), ("200", begin["sha256"]), v6[:3000])
        up6 = kv(re.search(r"VNK: upload .*", v6).group(0))
        self.assertEqual(up6["sha256"], up6["sent_sha256"])
        self.assertEqual(kv(re.search(r"VNK: ping .*", v6).group(0))["received"], "3", v6[:3000])
        self.assertEqual(kv(re.search(r"VNK: dns .*", v6).group(0)).get("address"), "192.0.2.7", v6[:3000])
        for direction in ("up", "down"):
            r = kv(re.search(rf"VNK: iperf direction={direction} .*", v6).group(0))
            self.assertGreater(int(r.get("mbps", 0)), 10, v6[:3000])
        limits = kv(g.wait_for(r"VNK: limits .*", 1).group(0))
        many = kv(g.wait_for(r"VNK: connections .*", 1).group(0))
        if int(limits["hard"]) >= 4096:
            self.assertEqual(many["connected"], "3000", f"soft limit {limits['soft']}: {many}")
        self.assertEqual(kv(g.wait_for(r"VNK: linux61 finished .*", 1).group(0))["status"], "0", out)


    def test_netns_transfers_hold_up_under_loss_reordering_duplication_and_a_shut_window(self):
        # netem (Linux 6.1) on the namespace's link both ways -- on the TAP
        # device's egress and, through ifb, its ingress -- so downloads lose
        # data toward the namespace and uploads toward vnetkit. Three runs of
        # 64 MiB each way at 1 % loss and 10 % reordering, one with 5 %
        # duplication, then a reader whose window stays shut for 3 s. All
        # byte-exact, no upload far slower than its download, nothing near a
        # stall.
        g = Linux61("faults")
        self.addCleanup(g.kill)
        g.wait_for(r"VNK: linux61 kernel=6\.1\.", 60)
        status = kv(g.wait_for(r"VNK: linux61 finished .*", 560).group(0))["status"]
        out = g.text()
        print(out[-4000:], flush=True)
        self.assertEqual(status, "0", out[-3000:])
        services = kv(g.wait_for(r"VNK: services .*", 1).group(0))
        downs = [kv(m.group(0)) for m in re.finditer(r"VNK: download .*", out)]
        ups = [kv(m.group(0)) for m in re.finditer(r"VNK: upload .*", out)]
        self.assertEqual((len(downs), len(ups)), (4, 4), out[-3000:])
        for down, up in zip(downs, ups):
            self.assertEqual((down["bytes"], down["sha256"]), (str(64 << 20), services["sha256"]))
            self.assertEqual((up["bytes"], up["sha256"]), (str(64 << 20), up["sent_sha256"]))
            # Within twice the download's time (plus a second of slack for
            # the UML guest's own jitter on short runs); no transfer near a
            # stall (the old build's uploads took up to 75 s, or never ended).
            self.assertLess(float(up["seconds"]), 2 * float(down["seconds"]) + 1.0, (down, up))
            self.assertLess(max(float(up["seconds"]), float(down["seconds"])), 30, (down, up))
        shut = kv(g.wait_for(r"VNK: zero-window .*", 1).group(0))
        self.assertEqual((shut["bytes"], shut["sha256"]), (str(8 << 20), services["small_sha256"]))
        counters = kv(g.wait_for(r"VNK: counters .*", 1).group(0))
        self.assertGreater(int(counters["tcp_ooo_bytes_held"]), 0, counters)
        self.assertEqual(counters["tcp_ooo_bytes_dropped"], "0", counters)
        self.assertGreater(int(counters["tcp_fast_recoveries"]), 0, "downloads lost data: recovered from SACK")
        self.assertGreater(int(counters["tcp_window_probes"]), 0, "the shut window was probed")
        self.assertEqual(counters["tcp_timeouts"], "0", counters)
        self.assertEqual(counters["tcp_sack_blocks_ignored"], "0", "Linux's SACK blocks are all valid")
        self.assertGreater(int(counters["tcp_dsack_blocks"]), 0, "duplicated frames are reported as D-SACKs")

    def test_unit_tests_pass_on_linux_6_1(self):
        g = Linux61("unit")
        self.addCleanup(g.kill)
        g.wait_for(r"VNK: linux61 kernel=6\.1\.", 60)
        status = kv(g.wait_for(r"VNK: linux61 finished .*", 240).group(0))["status"]
        out = g.text()
        print(out[-2500:], flush=True)
        self.assertIn("[  PASSED  ]", out)
        self.assertEqual(status, "0", out[-3000:])


if __name__ == "__main__":
    unittest.main()
