"""DPDK's testpmd as a third real vhost-user frontend, next to Linux in UML and
QEMU: an independent virtio implementation (net_virtio_user) that runs without
a VM. Against `vnetkit serve --net loopback` in io-forward mode every frame it
sends comes back to it, so its own counters and vnetkit's must agree.
"""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Serve, Testpmd  # noqa: E402

SECONDS = 3


@unittest.skipUnless(shutil.which("dpdk-testpmd"), "dpdk-testpmd is not installed (scripts/setup installs dpdk-dev)")
class TestpmdTest(unittest.TestCase):
    def bounce(self, *serve_args):
        serve = Serve("--net", "loopback", *serve_args)
        self.addCleanup(serve.cleanup)
        pmd = Testpmd(serve.sock)
        self.addCleanup(pmd.kill)
        serve.wait_for(r"queue pair 0 started", 30)
        time.sleep(SECONDS)
        totals = pmd.stop()
        serve.wait_for(r"frontend disconnected", 20)
        serve.wait_metric("server", "disconnects_clean", lambda v: v == 1)
        m = serve.metrics()["net"]
        # Every frame testpmd sent reached vnetkit, with its bytes; every frame
        # it received came from vnetkit. The last burst vnetkit delivered may
        # still sit unread in testpmd's RX ring when it stops.
        self.assertGreater(totals["tx"], 10_000, pmd.tail())
        self.assertEqual(m["tx_packets"], totals["tx"])
        self.assertEqual(m["tx_bytes"], 64 * totals["tx"])
        self.assertEqual(m["rx_bytes"], 64 * m["rx_packets"])
        self.assertGreaterEqual(m["rx_packets"], totals["rx"])
        self.assertLessEqual(m["rx_packets"] - totals["rx"], 512)
        self.assertEqual((totals["rx_dropped"], totals["tx_dropped"]), (0, 0))
        for k, v in m.items():
            if "drop" in k or "poison" in k or "truncated" in k or "failures" in k:
                self.assertEqual(v, 0, k)
        self.assertEqual(serve.stop(), 0)
        return pmd

    def test_frames_bounce_with_exact_counters(self):
        self.bounce()

    def test_frames_bounce_with_exact_counters_while_busy_polling(self):
        self.bounce("--poll-us", "50")


if __name__ == "__main__":
    unittest.main()
